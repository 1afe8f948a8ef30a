#!/usr/bin/env python3
"""Compare ccmon-replay with a ccgen corpus's ground_truth.json (../shared/corpus/ccgen.py).

usage: verify-ccgen.py REPLAY_BINARY CORPUS_DIR
Checks totals, per model, per UTC day, per project (cwd, with --project-label path) and tool
calls; tokens and requests exactly, cost exactly in nano-dollars (ccgen's unit). Exit 1 on any
difference. Not part of the test suite (it needs ../shared); the suite uses tests/fixtures.
"""
import json
import subprocess
import sys

TOKENS = ["input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read"]


def replay(binary, corpus, by, *extra):
    out = subprocess.run([binary, "summary", "--config-dir", corpus, "--json", "-z", "UTC",
                          "--by", by, "--device", "verify", "--progress", "never", *extra],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def compare(name, got, want, fields, diffs):
    for f in fields:
        g, w = got.get(f), want.get(f)
        if g != w:
            diffs.append(f"{name}.{f}: replay {g} != ground truth {w}")
    g, w = int(got["cost_pusd"]), want["cost_nusd"] * 1000
    if g != w:
        diffs.append(f"{name}.cost: replay {g / 1e12:.12f} != ground truth {w / 1e12:.12f}")


def main():
    binary, corpus = sys.argv[1], sys.argv[2]
    gt = json.load(open(f"{corpus}/ground_truth.json"))
    diffs = []
    by_model = replay(binary, corpus, "model")
    totals = by_model["totals"]
    compare("totals", totals, gt["totals"],
            TOKENS + ["requests", "web_search_requests", "api_errors", "sessions"], diffs)
    rows = {r["key"]: r for r in by_model["rows"]}
    if set(rows) != set(gt["per_model"]):
        diffs.append(f"models: replay {sorted(rows)} != ground truth {sorted(gt['per_model'])}")
    for m, want in gt["per_model"].items():
        if m in rows:
            compare(f"model[{m}]", rows[m], want, TOKENS + ["requests", "web_search_requests"], diffs)
    days = {r["key"]: r for r in replay(binary, corpus, "day")["rows"]}
    if set(days) != set(gt["per_day_utc"]):
        diffs.append("day keys differ")
    for d, want in gt["per_day_utc"].items():
        if d in days:
            compare(f"day[{d}]", days[d], want, TOKENS + ["requests"], diffs)
    projects = {r["key"]: r for r in replay(binary, corpus, "project", "--project-label", "path",
                                            "--max-projects", "100000")["rows"]}
    for p, want in gt["per_project"].items():
        if p not in projects:
            diffs.append(f"project {p} missing")
        else:
            compare(f"project[{p}]", projects[p], want, TOKENS + ["requests"], diffs)
    if by_model["tool_calls"] != gt["tool_calls"]:
        diffs.append(f"tool_calls differ: {by_model['tool_calls']} vs {gt['tool_calls']}")
    for d in diffs[:50]:
        print(d)
    print(f"{corpus}: {'OK' if not diffs else f'{len(diffs)} differences'} "
          f"({totals['requests']} requests, {len(gt['per_day_utc'])} days, "
          f"{len(gt['per_project'])} projects)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
