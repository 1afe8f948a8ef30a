#!/usr/bin/env python3
"""Compare ccmon-replay with ccusage on one corpus, per UTC day x model and per month x model.

usage: compare_ccusage.py [--quiet|--totals] CCMON_BINARY CORPUS CCUSAGE_CMD...

CCUSAGE_CMD is how to start ccusage, e.g. `node WORK/ccusage/node_modules/.bin/ccusage`.
It is run as `CCUSAGE_CMD claude {daily|monthly} --json --offline -z UTC --breakdown` with
HOME set to a fresh empty directory, CLAUDE_CONFIG_DIR=CORPUS and LOG_LEVEL=0.

Meant for `ccgen.py --profile ccusage-compat` corpora, on which ccusage 20.0.24 agrees with
the ground truth. Rules:
  * ccusage lists fast-mode requests as `<model>-fast`; they are folded into `<model>`.
  * tokens must be equal: input, output, cache_read, and cacheCreationTokens against ccmon's
    cache_creation_5m + cache_creation_1h (ccusage does not split the TTLs);
  * cost within 1e-9 relative (ccmon's exact pico-dollars against ccusage's float).
ccusage entries with zero tokens and zero cost (e.g. `<synthetic>` API-error lines, which
ccusage keeps with no model) are listed but not counted as mismatches.

ccmon has no day x model grouping, so the day x model table is built from one
`--since D --until D --by model` run per day; the per-day rows of `--by day` are checked
against it as well. Exit status 1 on any mismatch.

--totals only compares grand totals per token field and cost (for `realistic` corpora, where
ccusage is known to differ; see ../shared/corpus/README.md) and always exits 0.
"""
import json
import os
import subprocess
import sys
import tempfile
from decimal import Decimal

REL_TOL = 1e-9
TOKENS = ["input", "output", "cache_creation", "cache_read"]
CC_FIELDS = {"input": "inputTokens", "output": "outputTokens",
             "cache_creation": "cacheCreationTokens", "cache_read": "cacheReadTokens"}


def run_ccusage(cmd, corpus, report):
    with tempfile.TemporaryDirectory(prefix="ccusage-home-") as home:
        env = dict(os.environ, HOME=home, CLAUDE_CONFIG_DIR=os.path.abspath(corpus), LOG_LEVEL="0")
        out = subprocess.run([*cmd, "claude", report, "--json", "--offline", "-z", "UTC",
                              "--breakdown"], env=env, check=True, capture_output=True,
                             text=True).stdout
    return json.loads(out)


def ccusage_table(doc, key_field):
    """{(period, model): {tokens..., cost: float}}, fast-mode folded; plus ignored entries."""
    table, ignored = {}, []
    for period in doc[key_field]:
        key = period["date" if key_field == "daily" else "month"]
        for m in period["modelBreakdowns"]:
            name = m["modelName"]
            row = {t: m[f] for t, f in CC_FIELDS.items()}
            row["cost"] = m["cost"]
            if not any(row[t] for t in TOKENS) and not row["cost"]:
                ignored.append(f"{key}/{name}")
                continue
            if name.endswith("-fast"):
                name = name[:-len("-fast")]
            acc = table.setdefault((key, name), {t: 0 for t in TOKENS} | {"cost": 0.0})
            for t in TOKENS:
                acc[t] += row[t]
            acc["cost"] += row["cost"]
    return table, ignored


def ccmon(binary, corpus, by, *extra):
    out = subprocess.run([binary, "summary", "--config-dir", corpus, "--json", "-z", "UTC",
                          "--by", by, "--device", "compare", "--progress", "never", *extra],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def ccmon_row(r):
    row = {"input": r["input"], "output": r["output"], "cache_read": r["cache_read"],
           "cache_creation": r["cache_creation_5m"] + r["cache_creation_1h"],
           "cost_pusd": int(r["cost_pusd"])}
    return row


def ccmon_cross(binary, corpus, periods, first_last):
    table = {}
    for p in periods:
        since, until = first_last(p)
        for r in ccmon(binary, corpus, "model", "--since", since, "--until", until)["rows"]:
            table[(p, r["key"])] = ccmon_row(r)
    return table


def compare(label, mine, theirs, diffs, stats):
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        name = f"{label}[{key[0]} {key[1]}]"
        if a is None:
            diffs.append(f"{name}: only in ccusage: {b}")
            continue
        if b is None:
            diffs.append(f"{name}: only in ccmon: {a}")
            continue
        for t in TOKENS:
            if a[t] != b[t]:
                diffs.append(f"{name}.{t}: ccmon {a[t]} != ccusage {b[t]} (diff {b[t] - a[t]:+d})")
        exact = Decimal(a["cost_pusd"]) / Decimal(10**12)
        err = abs(Decimal(repr(b["cost"])) - exact)
        rel = float(err / exact) if exact else float(err)
        stats["max_rel"] = max(stats["max_rel"], rel)
        stats["cells"] += 1
        if rel > REL_TOL:
            diffs.append(f"{name}.cost: ccmon {exact} != ccusage {b['cost']!r} (rel {rel:.3e})")


def month_bounds(month):
    y, m = map(int, month.split("-"))
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    import datetime
    last = datetime.date(ny, nm, 1) - datetime.timedelta(days=1)
    return f"{month}-01", last.isoformat()


def totals(binary, corpus, cmd):
    t = run_ccusage(cmd, corpus, "daily")["totals"]
    m = ccmon(binary, corpus, "model")["totals"]
    mine = {"input": m["input"], "output": m["output"], "cache_read": m["cache_read"],
            "cache_creation": m["cache_creation_5m"] + m["cache_creation_1h"]}
    theirs = {k: t[f] for k, f in CC_FIELDS.items()}
    mine["total_tokens"] = sum(mine.values())
    theirs["total_tokens"] = sum(theirs.values())
    mine["cost_usd"], theirs["cost_usd"] = m["cost_usd"], t["totalCost"]
    print(f"{corpus}: totals, ccusage - ccmon")
    for k in mine:
        d = theirs[k] - mine[k]
        rel = d / mine[k] if mine[k] else 0.0
        v = f"{d:+.6f}" if k == "cost_usd" else f"{d:+d}"
        print(f"  {k:15} ccmon {mine[k]:>16} ccusage {theirs[k]:>20} diff {v} ({rel:+.3%})")
    return 0


def main():
    args = sys.argv[1:]
    quiet = totals_only = False
    if args and args[0] == "--quiet":
        quiet, args = True, args[1:]
    if args and args[0] == "--totals":
        totals_only, args = True, args[1:]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, corpus, cmd = args[0], args[1], args[2:]
    diffs, stats = [], {"max_rel": 0.0, "cells": 0}
    if totals_only:
        return totals(binary, corpus, cmd)

    daily, ign_d = ccusage_table(run_ccusage(cmd, corpus, "daily"), "daily")
    monthly, ign_m = ccusage_table(run_ccusage(cmd, corpus, "monthly"), "monthly")

    by_day = {r["key"]: ccmon_row(r) for r in ccmon(binary, corpus, "day")["rows"]}
    cross_day = ccmon_cross(binary, corpus, sorted(by_day), lambda d: (d, d))
    compare("day x model", cross_day, daily, diffs, stats)

    # ccmon's own consistency: --by day rows == sum of the per-day --by model rows.
    for d, row in by_day.items():
        cells = [v for (k, _), v in cross_day.items() if k == d]
        for f in TOKENS + ["cost_pusd"]:
            s = sum(c[f] for c in cells)
            if s != row[f]:
                diffs.append(f"ccmon day[{d}].{f}: --by day {row[f]} != sum of --by model {s}")

    months = sorted({r["key"] for r in ccmon(binary, corpus, "month")["rows"]})
    cross_month = ccmon_cross(binary, corpus, months, month_bounds)
    compare("month x model", cross_month, monthly, diffs, stats)

    # Totals, for the summary line.
    tot = ccmon(binary, corpus, "model")["totals"]
    tot_tokens = tot["input"] + tot["output"] + tot["cache_read"] + \
        tot["cache_creation_5m"] + tot["cache_creation_1h"]
    for d in diffs[:100]:
        print("  " + d)
    if len(diffs) > 100:
        print(f"  ... {len(diffs) - 100} more")
    if ign_d and not quiet:
        print(f"  ignored all-zero ccusage entries: {len(ign_d)} daily, {len(ign_m)} monthly "
              f"(e.g. {ign_d[0]})")
    print(f"{corpus}: {'OK' if not diffs else f'{len(diffs)} MISMATCHES'}: "
          f"{len(by_day)} days, {len(months)} months, {stats['cells']} period x model cells, "
          f"{tot['requests']} requests, {tot_tokens} tokens, ${tot['cost_usd']}; "
          f"max cost rel. error {stats['max_rel']:.2e}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
