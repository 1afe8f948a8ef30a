#!/usr/bin/env bash
# Remote-write backfill benchmark: `ccmon-replay remote-write` into a local VictoriaMetrics,
# against the reference of the same history written by `ccmon-replay openmetrics` and imported
# with VictoriaMetrics' own text importer (curl --data-binary @FILE /api/v1/import/prometheus).
#
# usage: bench/remote_write_bench.sh CORPUS_DIR [--runs N]
#
# Needs: victoria-metrics, hyperfine, curl, GNU time. Binary: $CCMON_REPLAY or
# build/src/tools/replay/ccmon-replay. Prints a markdown table (wall median, peak RSS of ccmon-replay).
# Both commands send the same samples; VictoriaMetrics stores repeated runs as duplicates, which
# costs both sides alike. Note: VictoriaMetrics drops samples more than 2 days in the future and
# older than its retention (set to 100y here); choose a corpus whose history ends before today.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
CORPUS=$(cd "$1" && pwd); shift
RUNS=5
while [[ $# -gt 0 ]]; do
  case $1 in --runs) RUNS=$2; shift 2 ;; *) echo "unknown option $1" >&2; exit 2 ;; esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CCMON_REPLAY:-$ROOT/build/src/tools/replay/ccmon-replay}
WORK=$(mktemp -d /tmp/ccmon-rwbench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
victoria-metrics -httpListenAddr=127.0.0.1:$PORT -storageDataPath="$WORK/vm" -retentionPeriod=100y \
  -search.latencyOffset=0s >"$WORK/vm.log" 2>&1 &
VM=$!
trap 'kill $VM 2>/dev/null; wait $VM 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

COMMON=(--config-dir "$CORPUS" --device bench -z UTC --progress never)
RW="$BIN remote-write --url http://127.0.0.1:$PORT/api/v1/write ${COMMON[*]}"
OM="$BIN openmetrics -o $WORK/h.om ${COMMON[*]} && curl -sf --data-binary @$WORK/h.om http://127.0.0.1:$PORT/api/v1/import/prometheus"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/h.json" \
  -n "ccmon-replay remote-write" "$RW" -n "openmetrics + VictoriaMetrics import" "$OM" >&2
/usr/bin/time -o "$WORK/rss" -f %M $RW >/dev/null 2>"$WORK/rw.err"
RSS=$(tail -1 "$WORK/rss")
SAMPLES=$(sed -n 's/.*series, \([0-9]*\) samples.*/\1/p' "$WORK/rw.err")
python3 - "$WORK/h.json" "$RSS" "$SAMPLES" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
ref = statistics.median(res[1]["times"])
print("| command | wall median s | min s | max s | ÷ reference |")
print("|---|---|---|---|---|")
for r in res:
    m = statistics.median(r["times"])
    print("| %s | %.3f | %.3f | %.3f | %.2f |" % (r["command"], m, min(r["times"]), max(r["times"]), m / ref))
print()
print("samples: %s; ccmon-replay remote-write peak RSS: %.1f MiB" % (sys.argv[3], int(sys.argv[2]) / 1024))
PY
