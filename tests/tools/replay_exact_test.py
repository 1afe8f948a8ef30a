#!/usr/bin/env python3
"""ccmon-replay against the project's own fixture generator (tests/fixtures/gen_fixture.py).

For several seeds: totals, per model, per UTC day, per project (cwd), per session, tool calls,
unpriced tokens, skipped lines and prompts (docs/accounting.md A38) must equal expected.json
exactly (cost in pico-dollars), and the result must not depend on the thread count. Exit 1 with the differences on failure.

usage: replay_exact_test.py --replay BIN --fixture-gen GEN [--seeds 1,2,3]
"""
import argparse
import json
import subprocess
import sys
import tempfile

TOKENS = ["input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read"]


def replay(binary, corpus, by, *extra):
    cmd = [binary, "summary", "--config-dir", corpus, "--json", "-z", "UTC", "--by", by,
           "--device", "test", "--progress", "never", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
    return json.loads(res.stdout), res.stderr


def compare(name, got, want, fields, diffs):
    for f in fields:
        if got.get(f) != want.get(f):
            diffs.append(f"{name}.{f}: replay {got.get(f)} != expected {want.get(f)}")
    if "cost_pusd" in want and int(got["cost_pusd"]) != want["cost_pusd"]:
        diffs.append(f"{name}.cost_pusd: replay {got['cost_pusd']} != expected {want['cost_pusd']}")


def check_seed(binary, gen, seed, sessions):
    diffs = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = f"{tmp}/fixture"
        subprocess.run([sys.executable, gen, corpus, "--seed", str(seed), "--sessions", str(sessions)],
                       check=True, capture_output=True)
        exp = json.load(open(f"{corpus}/expected.json"))
        by_model, stderr = replay(binary, corpus, "model")
        t = by_model["totals"]
        compare("totals", t, exp["totals"], TOKENS + ["requests", "web_search_requests",
                                                      "api_errors", "sessions", "prompts"], diffs)
        rows = {r["key"]: r for r in by_model["rows"]}
        if set(rows) != set(exp["per_model"]):
            diffs.append(f"models: {sorted(rows)} != {sorted(exp['per_model'])}")
        for m, want in exp["per_model"].items():
            if m in rows:
                compare(f"model[{m}]", rows[m], want, TOKENS + ["requests", "web_search_requests"], diffs)
                if "prompts" in rows[m]:
                    diffs.append(f"model[{m}] has prompts: a prompt has no model")
        if by_model["tool_calls"] != exp["tool_calls"]:
            diffs.append(f"tool_calls: {by_model['tool_calls']} != {exp['tool_calls']}")
        if by_model["unpriced_tokens"] != exp["unpriced_tokens"]:
            diffs.append(f"unpriced_tokens: {by_model['unpriced_tokens']} != {exp['unpriced_tokens']}")
        for model in exp["unpriced_tokens"]:
            if f"no price for model '{model}'" not in stderr:
                diffs.append(f"no warning for unpriced model {model}: {stderr!r}")
        skipped = by_model["skipped_lines"]
        for reason, n in exp["skipped"].items():
            if skipped.get(reason) != n:
                diffs.append(f"skipped[{reason}]: {skipped.get(reason)} != {n}")
        if by_model["lines"] != exp["lines_complete"]:
            diffs.append(f"lines: {by_model['lines']} != {exp['lines_complete']}")
        if by_model["files"] != exp["files"]:
            diffs.append(f"files: {by_model['files']} != {exp['files']}")
        days = {r["key"]: r for r in replay(binary, corpus, "day")[0]["rows"]}
        if set(days) != set(exp["per_day_utc"]):
            diffs.append(f"days: {sorted(days)} != {sorted(exp['per_day_utc'])}")
        for d, want in exp["per_day_utc"].items():
            if d in days:
                compare(f"day[{d}]", days[d], want, TOKENS + ["requests", "prompts"], diffs)
        projects = {r["key"]: r for r in replay(binary, corpus, "project", "--project-label", "path")[0]["rows"]}
        for p, want in exp["per_project"].items():
            if p not in projects:
                diffs.append(f"project {p} missing from {sorted(projects)}")
            else:
                compare(f"project[{p}]", projects[p], want, TOKENS + ["requests", "prompts"], diffs)
        sessions_rep = {r["key"]: r for r in replay(binary, corpus, "session")[0]["rows"]}
        for s, want in exp["per_session"].items():
            if s not in sessions_rep:
                # A resumed session whose lines are all copies owns no request and no prompt: no
                # report row.
                if want["requests"] != 0 or want["prompts"] != 0:
                    diffs.append(f"session {s} missing")
            else:
                compare(f"session[{s}]", sessions_rep[s], want, ["requests", "prompts"], diffs)
        # --progress always draws the bar (files, bytes, rate, ETA) on stderr; never keeps quiet.
        bar = subprocess.run([binary, "--config-dir", corpus, "-z", "UTC", "--progress", "always"],
                             capture_output=True, text=True)
        if f"/{exp['files']} files" not in bar.stderr or "ETA" not in bar.stderr:
            diffs.append(f"no progress bar with --progress always: {bar.stderr[:200]!r}")
        if "ETA" in stderr:
            diffs.append(f"--progress never drew a bar: {stderr[:200]!r}")
        single, _ = replay(binary, corpus, "model", "--threads", "1")
        many, _ = replay(binary, corpus, "model", "--threads", "7")
        if single["rows"] != many["rows"] or single["totals"] != many["totals"]:
            diffs.append("results differ between --threads 1 and --threads 7")
    return diffs, exp["totals"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", required=True)
    ap.add_argument("--fixture-gen", required=True)
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--sessions", type=int, default=40)
    a = ap.parse_args()
    failed = 0
    for seed in [int(s) for s in a.seeds.split(",")]:
        diffs, totals = check_seed(a.replay, a.fixture_gen, seed, a.sessions)
        if diffs:
            failed += 1
            print(f"seed {seed}: {len(diffs)} differences")
            for d in diffs[:40]:
                print("  " + d)
        else:
            print(f"seed {seed}: exact ({totals['requests']} requests, "
                  f"${totals['cost_pusd'] / 1e12:.6f}, {totals['sessions']} sessions)")
    print(f"{len(a.seeds.split(',')) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
