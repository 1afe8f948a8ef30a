#!/usr/bin/env bash
# GET /metrics over keep-alive connections: ccmon's HttpServer + MetricsHandler serving a body of
# --body-bytes (default 100 KB), against Prometheus's own /metrics loaded the same way (same
# load loop, same connections, no compression asked for). Prints both lines and the ratio of
# requests/s and of MB/s (Prometheus's body has another size: MB/s is the fairer comparison).
#
# usage: bench/server_bench.sh [--connections 4] [--seconds 5] [--body-bytes 102400]
#
# Needs: prometheus (Debian package). Binary: $CCMON_SERVER_BENCH or build/bench/server_bench.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CCMON_SERVER_BENCH:-$ROOT/build/bench/server_bench}
ARGS=("$@")
WORK=$(mktemp -d /tmp/ccmon-serverbench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address=127.0.0.1:$PORT --log.level=warn >"$WORK/prom.log" 2>&1 &
PROM=$!
trap 'kill $PROM 2>/dev/null; wait $PROM 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/-/ready')" \
    2>/dev/null && break
  sleep 0.1
done
ours=$("$BIN" "${ARGS[@]}")
theirs=$("$BIN" --url "http://127.0.0.1:$PORT/metrics" "${ARGS[@]}")
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import re, sys
def parse(line):
    m = re.search(r": ([0-9.]+) requests/s, ([0-9.]+) MB/s", line)
    return float(m.group(1)), float(m.group(2))
(rq, mb), (prq, pmb) = parse(sys.argv[1]), parse(sys.argv[2])
print("ratio ccmon/prometheus: %.2fx requests/s, %.2fx MB/s" % (rq / prq, mb / pmb))
PY
