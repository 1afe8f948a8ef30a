#!/usr/bin/env python3
"""Markdown table from one replay_bench.sh case: a hyperfine --export-json file and, per
command, a file of peak-RSS samples (KiB, one per line, from /usr/bin/time -f %M).

usage: bench_table.py HYPERFINE_JSON RSS_DIR

Commands are matched to RSS files by hyperfine's --command-name (RSS_DIR/<name>.rss).
Ratios use medians: `÷ wc -l` = median / median of the command named `wc -l`,
`÷ ccusage` = median / median of the command named `ccusage` (both measured in the
same hyperfine run). Lower is faster.
"""
import json
import os
import statistics
import sys


def fmt_s(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def main():
    doc = json.load(open(sys.argv[1]))
    rss_dir = sys.argv[2]
    results = doc["results"]
    med = {r["command"]: r["median"] for r in results}
    base_wc = med.get("wc -l")
    base_cc = med.get("ccusage")
    print("| command | runs | wall median s | min s | max s | CPU user+sys s (mean) "
          "| peak RSS MiB (max; min) | ÷ wc -l | ÷ ccusage |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        name = r["command"]
        rss = []
        path = os.path.join(rss_dir, name.replace(" ", "_").replace("/", "_") + ".rss")
        if os.path.exists(path):
            rss = [int(x) for x in open(path).read().split() if x.strip().isdigit()]
        rss_s = f"{max(rss) / 1024:.1f}; {min(rss) / 1024:.1f}" if rss else "n/a"
        wc = f"{r['median'] / base_wc:.2f}" if base_wc else "n/a"
        cc = f"{r['median'] / base_cc:.3f}" if base_cc else "n/a"
        print(f"| {name} | {len(r['times'])} | {fmt_s(r['median'])} | {fmt_s(r['min'])} "
              f"| {fmt_s(r['max'])} | {fmt_s(r['user'] + r['system'])} | {rss_s} | {wc} | {cc} |")
    if base_cc:
        ccm = [r for r in results if r["command"].startswith("ccmon-replay")]
        if ccm:
            best = min(ccm, key=lambda r: r["median"])
            print(f"\nccusage median / fastest ccmon-replay median ({best['command']}): "
                  f"{base_cc / best['median']:.1f}x; stdev of runs: " +
                  ", ".join(f"{r['command']} {statistics.pstdev(r['times']):.3f}s"
                            for r in results))


if __name__ == "__main__":
    main()
