#!/usr/bin/env python3
"""Markdown summary of bench/gateway_bench.sh's results.jsonl: medians per target, and the
gateway's ratios to Prometheus and vmagent within each round (same machine state)."""
import json
import statistics
import sys

GOAL_VS_VMAGENT = 1.5  # issue 8: >= 1.5x vmagent's samples/s per core
GOAL_METRICS_S = 0.25  # issue 8: /metrics for 1000 devices x 150 series in <= 250 ms


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    tp = [r for r in rows if r["kind"] == "throughput"]
    targets = [t for t in ("gateway", "prom", "vmagent") if any(r["target"] == t for r in tp)]
    print("| target | runs | samples/s | receiver cores | samples/s per core | p50 ms | p99 ms | RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for t in targets:
        rs = [r for r in tp if r["target"] == t]
        print("| %s | %d | %s | %.2f | **%s** | %.1f | %.1f | %.0f |" % (
            t, len(rs),
            "{:,.0f}".format(med([r["samples_per_s"] for r in rs])),
            med([r["server_cores"] for r in rs]),
            "{:,.0f}".format(med([r["samples_per_server_core_s"] for r in rs])),
            med([r["p50_ms"] for r in rs]), med([r["p99_ms"] for r in rs]),
            med([r["server_rss_kb"] for r in rs]) / 1024))
    print()
    by_run = {}
    for r in tp:
        by_run.setdefault(r["run"], {})[r["target"]] = r
    for other in ("vmagent", "prom"):
        ratios = []
        for run, rs in sorted(by_run.items()):
            if "gateway" in rs and other in rs:
                ratios.append(rs["gateway"]["samples_per_server_core_s"] /
                              rs[other]["samples_per_server_core_s"])
        if ratios:
            line = "gateway / %s, samples/s per core, per round: %s; median %.2fx" % (
                other, ", ".join("%.2fx" % x for x in ratios), med(ratios))
            if other == "vmagent":
                line += " (goal >= %.1fx: %.0f%% of it)" % (
                    GOAL_VS_VMAGENT, 100 * med(ratios) / GOAL_VS_VMAGENT)
            print(line)
            print()
    for r in rows:
        if r["kind"] == "rss" and r["series"]:
            per_m = (r["rss_kb"] - r["rss_idle_kb"]) / r["series"] * 1e6 / 1024
            print("gateway RSS: %d kB idle, %d kB with %s series: %.0f MiB per million series "
                  "(above idle)" % (r["rss_idle_kb"], r["rss_kb"], "{:,}".format(r["series"]), per_m))
            print()
        if r["kind"] == "metrics":
            s = r["seconds"]
            print("GET /metrics, %d devices x %d series (%d claude_ lines, %.1f MB): median %.0f ms, "
                  "min %.0f, max %.0f over %d scrapes (goal <= %.0f ms)" % (
                      r["devices"], r["series_per_device"], r["claude_lines"], r["bytes"] / 1e6,
                      1000 * med(s), 1000 * min(s), 1000 * max(s), len(s), 1000 * GOAL_METRICS_S))
            print()


if __name__ == "__main__":
    main(sys.argv[1])
