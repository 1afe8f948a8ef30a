#!/usr/bin/env bash
# Keep-alive against one connection per request: samples/s of QueueManager into a local
# Prometheus 2.42 (remote-write receiver), via bench/queue_bench.cc.
#
# usage: bench/queue_bench.sh [--runs N] [--shards N] [--configs "2000/100/1000 100/10/1000 10/10/1000"]
#
# Binary: $QUEUE_BENCH or build/bench/queue_bench. A config is
# max_samples_per_send/series_per_shard/samples_per_series (an entry holds one sample of each of
# its shard's series and is never split, so 10/10/1000 is one entry per request, like an agent
# sending single new lines). For each config, runs both transports N times (alternating which goes first) (a fresh
# `run` label each time, so every run writes new series) and prints a markdown table: median
# samples/s of each, and their ratio.
set -euo pipefail
RUNS=5 SHARDS=3 CONFIGS="2000/100/1000 100/10/1000 10/10/1000"
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${QUEUE_BENCH:-$ROOT/build/bench/queue_bench}
WORK=$(mktemp -d /tmp/ccmon-queuebench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address=127.0.0.1:$PORT --web.enable-remote-write-receiver >"$WORK/prom.log" 2>&1 &
PROM=$!
trap 'kill $PROM 2>/dev/null; wait $PROM 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null && break; sleep 0.1; done

python3 - "$BIN" "$PORT" "$RUNS" "$SHARDS" $CONFIGS <<'PY'
import json, statistics, subprocess, sys, time
binary, port, runs, shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
configs = [tuple(int(x) for x in c.split("/")) for c in sys.argv[5:]]
print("%d shards, %d runs of each transport per config, Prometheus 2.42 on 127.0.0.1"
      % (shards, runs))
print()
print("| max_samples_per_send | series/shard x samples | samples | requests | "
      "keep-alive samples/s median (min-max) | per-request samples/s median (min-max) | ratio |")
print("|---|---|---|---|---|---|---|")
n = 0
for size, series, samples in configs:
    start_ms = (int(time.time()) - samples - 600) * 1000
    res = {"keepalive": [], "per-request": []}
    reqs = total = None
    for r in range(runs):
        for t in (("keepalive", "per-request") if r % 2 == 0 else ("per-request", "keepalive")):
            n += 1
            out = subprocess.run([binary, "--url", "http://127.0.0.1:%s/api/v1/write" % port,
                                  "--transport", t, "--run", "b%d" % n, "--shards", str(shards),
                                  "--series-per-shard", str(series), "--samples-per-series",
                                  str(samples), "--max-samples-per-send", str(size),
                                  "--start-ms", str(start_ms)],
                                 capture_output=True, check=True).stdout
            rep = json.loads(out)
            res[t].append(rep["samples_per_s"])
            reqs, total = rep["batches_sent"], rep["samples_sent"]
    k, p = res["keepalive"], res["per-request"]
    print("| %d | %d x %d | %d | %d | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2f |" % (
        size, series, samples, total, reqs, statistics.median(k), min(k), max(k),
        statistics.median(p), min(p), max(p), statistics.median(k) / statistics.median(p)))
PY
