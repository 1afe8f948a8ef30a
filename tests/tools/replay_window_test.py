#!/usr/bin/env python3
"""Windowed reports add up (docs/accounting.md A36): for fixtures of tests/fixtures/gen_fixture.py,
the sum of `--since D --until D` over consecutive days D equals the whole history exactly, and so
does `--until D` plus `--since D+1`, for every figure of the report (tokens, requests, cost in
pico-dollars, sessions, tool calls, prompts, API errors, web searches, unpriced tokens) and the
per-day rows. Each request, session, tool call, prompt and error belongs to exactly one window:
the one of the time it is attributed to, whichever file its copies are in. Copies of requests,
tool calls, prompts and API errors on either side of every day edge are added to the fixture.

The days run from two days before the first row to two after the last: anything counted outside
them would make the sums differ. The fixture is shortened to a few days so that sessions, streamed
copies and resumed sessions cross midnight often; a second time zone moves every day edge.

usage: replay_window_test.py --replay BIN --fixture-gen GEN [--seeds 1,2]
Exit 1 with the differences on failure.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter

SUMMED = ["input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read", "total_tokens",
          "requests", "prompts", "subagent_requests", "web_search_requests", "sessions",
          "api_errors"]


def assistant(ts, msg_id, session, output, tools=(), model="claude-sonnet-4-5-20250929",
              error=False):
    content = [{"type": "tool_use", "id": t, "name": n, "input": {}} for t, n in tools]
    line = {"type": "assistant", "sessionId": session, "cwd": "/w/edge", "timestamp": ts,
            "requestId": "req_" + msg_id, "isSidechain": False,
            "message": {"id": msg_id, "model": model, "role": "assistant",
                        "content": content or [{"type": "text", "text": "ok"}],
                        "usage": {"input_tokens": 10, "output_tokens": output,
                                  "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 0}}}
    if error:
        line["isApiErrorMessage"] = True
    return json.dumps(line) + "\n"


def prompt(ts, uuid, session):
    return json.dumps({"type": "user", "sessionId": session, "cwd": "/w/edge", "timestamp": ts,
                       "uuid": uuid, "isSidechain": False,
                       "message": {"role": "user", "content": "go on"}}) + "\n"


def add_copies_across_day_edges(corpus, edges):
    """Copies of one request, tool call, prompt and API error on either side of each day edge
    (instants "YYYY-MM-DDTHH:MM"), in one file and across two (a resumed session's file)."""
    one, resumed = [], []
    for i, edge in enumerate(edges):
        after = edge + ":00.500Z"
        edge_dt = datetime.datetime.fromisoformat(edge)
        before = (edge_dt - datetime.timedelta(milliseconds=100)).strftime(
            "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        tool = [(f"toolu_edge_{i}", "EdgeTool")]
        one.append(assistant(before, f"msg_edge_a{i}", "edge-1", 5, tool))
        one.append(assistant(after, f"msg_edge_a{i}", "edge-1", 100, tool))
        one.append(assistant(before, f"msg_edge_b{i}", "edge-1", 7))
        resumed.append(assistant(after, f"msg_edge_b{i}", "edge-2", 70))
        one.append(prompt(before, f"00000000-0000-4000-8000-{i:012d}", "edge-1"))
        resumed.append(prompt(after, f"00000000-0000-4000-8000-{i:012d}", "edge-2"))
        one.append(assistant(before, f"msg_edge_e{i}", "edge-1", 0, model="<synthetic>",
                             error=True))
        resumed.append(assistant(after, f"msg_edge_e{i}", "edge-2", 0, model="<synthetic>",
                                 error=True))
    os.makedirs(f"{corpus}/projects/-w-edge")
    with open(f"{corpus}/projects/-w-edge/edge-1.jsonl", "w") as f:
        f.writelines(one)
    with open(f"{corpus}/projects/-w-edge/edge-2.jsonl", "w") as f:
        f.writelines(resumed)


def replay(binary, corpus, zone, *extra):
    cmd = [binary, "summary", "--config-dir", corpus, "--json", "-z", zone, "--device", "test",
           "--progress", "never", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
    return json.loads(res.stdout)


def figures(report):
    """The additive figures of a report, as one Counter."""
    t = report["totals"]
    out = Counter({f: t[f] for f in SUMMED})
    out["cost_pusd"] = int(t["cost_pusd"])
    for tool, n in report["tool_calls"].items():
        out[f"tool_calls[{tool}]"] = n
    for model, n in report["unpriced_tokens"].items():
        out[f"unpriced_tokens[{model}]"] = n
    for row in report["rows"]:
        for f in ("requests", "prompts", "output"):
            out[f"row[{row['key']}].{f}"] = row[f]
        out[f"row[{row['key']}].cost_pusd"] = int(row["cost_pusd"])
    return out


def differences(name, got, want):
    keys = sorted(set(got) | set(want))
    return [f"{name}: {k}: windows sum to {got.get(k, 0)}, whole history {want.get(k, 0)}"
            for k in keys if got.get(k, 0) != want.get(k, 0)]


def day(d):
    return d.strftime("%Y-%m-%d")


def check(binary, corpus, zone):
    whole = replay(binary, corpus, zone)
    want = figures(whole)
    if want["requests"] == 0 or want["sessions"] == 0:
        return [f"{zone}: the fixture has no requests"]
    keys = [r["key"] for r in whole["rows"]]
    first = datetime.date.fromisoformat(min(keys)) - datetime.timedelta(days=2)
    last = datetime.date.fromisoformat(max(keys)) + datetime.timedelta(days=2)
    diffs = []
    daily = Counter()
    d = first
    while d <= last:
        one = replay(binary, corpus, zone, "--since", day(d), "--until", day(d))
        for row in one["rows"]:
            if row["key"] != day(d):
                diffs.append(f"{zone}: the window of {day(d)} has a row for {row['key']}")
        daily.update(figures(one))
        d += datetime.timedelta(days=1)
    diffs += differences(f"{zone}: each day", daily, want)
    # Open-ended windows either side of every day edge.
    d = first
    while d <= last:
        halves = figures(replay(binary, corpus, zone, "--until", day(d)))
        halves.update(figures(replay(binary, corpus, zone, "--since",
                                     day(d + datetime.timedelta(days=1)))))
        diffs += differences(f"{zone}: until {day(d)} + the rest", halves, want)
        d += datetime.timedelta(days=3)
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", required=True)
    ap.add_argument("--fixture-gen", required=True)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--days", type=int, default=4)
    a = ap.parse_args()
    failed = 0
    for seed in [int(s) for s in a.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = f"{tmp}/fixture"
            subprocess.run([sys.executable, a.fixture_gen, corpus, "--seed", str(seed),
                            "--sessions", str(a.sessions), "--days", str(a.days)],
                           check=True, capture_output=True)
            start = datetime.date(2026, 8, 20)  # gen_fixture.py's default first day
            edges = []
            for n in range(1, a.days):
                d = day(start + datetime.timedelta(days=n))
                edges += [d + "T00:00", d + "T02:30"]  # midnight in UTC and in St. John's (NDT)
            add_copies_across_day_edges(corpus, edges)
            diffs = []
            for zone in ("UTC", "America/St_Johns"):
                diffs += check(a.replay, corpus, zone)
        if diffs:
            failed += 1
            print(f"seed {seed}: {len(diffs)} differences")
            for line in diffs[:40]:
                print("  " + line)
        else:
            print(f"seed {seed}: every window adds up")
    print(f"{len(a.seeds.split(',')) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
