#!/usr/bin/env bash
# gateway_bench.sh: ccmon-gateway's write path against Prometheus 2.42 and vmagent, the same load
# (shared/tools/rwload) the same way, plus the gateway's RSS per million series and its /metrics
# time over 1000 devices x 150 series. Builds nothing and fetches nothing.
#
# usage: bench/gateway_bench.sh WORKDIR [options]
#   --gateway PATH           ccmon-gateway            [build/src/gateway/ccmon-gateway]
#   --fill PATH              gateway_fill             [build/bench/gateway_fill]
#   --rwload PATH            rwload (build it as ../shared/tools/rwload/README.md says)
#                                                     [$RWLOAD, else rwload on PATH]
#   --prometheus PATH        [prometheus on PATH]   --victoria-metrics PATH  [on PATH]
#   --vmagent PATH           [vmagent on PATH]
#   --runs N                 rounds of the throughput comparison [3]; each round runs every
#                            target once, back to back, so ratios within a round compare like
#                            with like on a noisy machine
#   --duration S             measured seconds per throughput run [20] (after rwload's 3 s warm-up)
#   --targets LIST           of gateway,prom,vmagent [all three]
#   --rss-series N           series for the RSS measurement [1000000]; 0 skips it
#   --metrics-devices N      [1000]   --metrics-series N  per device [150]; devices 0 skips it
#   --metrics-scrapes N      timed GET /metrics [7]
# WORKDIR must not exist, or be one this script made (it is wiped). Results: WORKDIR/results.jsonl
# (one JSON line per measurement) and WORKDIR/report.md (medians and ratios, from
# bench/gateway_bench_report.py).
#
# Throughput load (issue 8): 4 connections, 10 000 series, requests of 1000 series x 1 sample.
# Each target starts on a free port with a fresh data dir. The gateway is authenticated with a
# device key (`ccmon-gateway device add bench --data-dir DIR` before it starts) and durable as its
# contract says (a 204 only after the RocksDB batch is synced); rwload's per-device label is
# `host` for every target, since the gateway sets `device` from the key. Prometheus:
# --web.enable-remote-write-receiver. vmagent: forwarding to a VictoriaMetrics on another port,
# as shared/tools/rwload/bench.sh does; its CPU is vmagent's alone.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,30p' "$0"; exit 2; }
W=$1
shift
GATEWAY=$ROOT/build/src/gateway/ccmon-gateway
FILL=$ROOT/build/bench/gateway_fill
RWLOAD=${RWLOAD:-$(command -v rwload || true)}
PROMETHEUS=$(command -v prometheus || true)
VICTORIA=$(command -v victoria-metrics || true)
VMAGENT=$(command -v vmagent || true)
RUNS=3 DURATION=20 TARGETS=gateway,prom,vmagent RSS_SERIES=1000000
METRICS_DEVICES=1000 METRICS_SERIES=150 METRICS_SCRAPES=7
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "$1 wants a value" >&2; exit 2; }
  case $1 in
    --gateway) GATEWAY=$2 ;;
    --fill) FILL=$2 ;;
    --rwload) RWLOAD=$2 ;;
    --prometheus) PROMETHEUS=$2 ;;
    --victoria-metrics) VICTORIA=$2 ;;
    --vmagent) VMAGENT=$2 ;;
    --runs) RUNS=$2 ;;
    --duration) DURATION=$2 ;;
    --targets) TARGETS=$2 ;;
    --rss-series) RSS_SERIES=$2 ;;
    --metrics-devices) METRICS_DEVICES=$2 ;;
    --metrics-series) METRICS_SERIES=$2 ;;
    --metrics-scrapes) METRICS_SCRAPES=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
need() { [ -n "$2" ] && [ -x "$2" ] || { echo "$1 not found (${2:-unset}); see --help" >&2; exit 2; }; }
need rwload "$RWLOAD"
need ccmon-gateway "$GATEWAY"
case ,$TARGETS, in *,prom,*) need prometheus "$PROMETHEUS" ;; esac
case ,$TARGETS, in *,vmagent,*) need vmagent "$VMAGENT"; need victoria-metrics "$VICTORIA" ;; esac
[ "$METRICS_DEVICES" = 0 ] || need gateway_fill "$FILL"

# Only ever delete a directory this script made (marker file).
if [ -e "$W" ]; then
  if [ -f "$W/.gateway-bench" ]; then rm -rf -- "$W"; else echo "$W exists and was not made by gateway_bench.sh" >&2; exit 2; fi
fi
mkdir -p "$W" && touch "$W/.gateway-bench" || exit 2
RESULTS=$W/results.jsonl
: >"$RESULTS"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=(); }
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_ready() {  # URL PID; up to 30 s, giving up early if the process died
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "server for $1 exited; see $W" >&2; return 1; }
    sleep 0.1
  done
  echo "server at $1 did not become ready; see $W" >&2
  return 1
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
# record KIND TARGET RUN JSON: one line of results.jsonl
record() {
  python3 - "$@" >>"$RESULTS" <<'PY'
import json, sys
kind, target, run, payload = sys.argv[1:5]
row = {"kind": kind, "target": target, "run": int(run)}
row.update(json.loads(payload))
print(json.dumps(row))
PY
}
last_json() { grep '^{' "$1" | tail -1; }

# start_gateway DIR [serve flags...]: sets srv, port, keyfile
start_gateway() {
  local dir=$1
  shift
  mkdir -p "$dir/data"
  "$GATEWAY" device add bench --data-dir "$dir/data" >"$dir/device-add.out" 2>&1 ||
    { cat "$dir/device-add.out" >&2; return 1; }
  tail -1 "$dir/device-add.out" >"$dir/key"
  port=$(free_port)
  "$GATEWAY" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" "$@" >"$dir/server.log" 2>&1 &
  srv=$!
  pids+=("$srv")
  keyfile=$dir/key
  wait_ready "http://127.0.0.1:$port/readyz" "$srv"
}

# throughput TARGET RUN
throughput() {
  local target=$1 run=$2 dir=$W/$1-$2 auth=()
  mkdir -p "$dir"
  case $target in
    gateway)
      start_gateway "$dir" || return 1
      auth=(--bearer-token-file "$keyfile") ;;
    prom)
      printf 'global: {scrape_interval: 1h}\nscrape_configs: []\n' >"$dir/prometheus.yml"
      port=$(free_port)
      "$PROMETHEUS" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
        >"$dir/server.log" 2>&1 &
      srv=$!
      pids+=("$srv")
      wait_ready "http://127.0.0.1:$port/-/ready" "$srv" || return 1 ;;
    vmagent)
      local vm_port
      vm_port=$(free_port)
      "$VICTORIA" -httpListenAddr="127.0.0.1:$vm_port" -storageDataPath="$dir/vm-data" \
        -retentionPeriod=1y -search.latencyOffset=0s >"$dir/vm.log" 2>&1 &
      pids+=("$!")
      wait_ready "http://127.0.0.1:$vm_port/health" "$!" || return 1
      port=$(free_port)
      "$VMAGENT" -httpListenAddr="127.0.0.1:$port" \
        -remoteWrite.url="http://127.0.0.1:$vm_port/api/v1/write" \
        -remoteWrite.tmpDataPath="$dir/agent-queue" >"$dir/server.log" 2>&1 &
      srv=$!
      pids+=("$srv")
      wait_ready "http://127.0.0.1:$port/health" "$srv" || return 1 ;;
  esac
  echo "== run $run $target (pid $srv, port $port)"
  "$RWLOAD" --port "$port" --server-pid "$srv" --conns 4 --series 10000 --series-per-req 1000 \
    --samples-per-series 1 --duration "$DURATION" --rate 2000000 --device-label-name host \
    --json "${auth[@]}" >"$dir/rwload.out" 2>&1
  local rc=$?
  grep -E '^(requests|codes|first error|throughput|latency|server cpu)' "$dir/rwload.out"
  [ $rc -eq 0 ] && record throughput "$target" "$run" "$(last_json "$dir/rwload.out")"
  cleanup
  rm -rf "$dir/data" "$dir/vm-data" "$dir/agent-queue"
  return $rc
}

IFS=, read -ra target_list <<<"$TARGETS"
for run in $(seq "$RUNS"); do
  for t in "${target_list[@]}"; do throughput "$t" "$run" || echo "run $run $t FAILED (see $W/$t-$run)"; done
done

# RSS per million series: the gateway's RSS before any series and after RSS_SERIES of them (each
# sent at least once: rwload's rounds cover every series before repeating).
if [ "$RSS_SERIES" != 0 ] && [[ ,$TARGETS, == *,gateway,* ]]; then
  dir=$W/rss
  start_gateway "$dir" && {
    rss0=$(rss_kb "$srv")
    # Enough measured time for two rounds over every series at ~300k samples/s.
    secs=$(( RSS_SERIES * 2 / 300000 + 5 ))
    echo "== RSS: $RSS_SERIES series, ${secs}s"
    "$RWLOAD" --port "$port" --server-pid "$srv" --conns 4 --series "$RSS_SERIES" \
      --series-per-req 1000 --duration "$secs" --rate 400000 --device-label-name host --json \
      --bearer-token-file "$keyfile" >"$dir/rwload.out" 2>&1
    series=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1=="ccmon_gateway_series"{print $2}')
    rss1=$(rss_kb "$srv")
    echo "series held $series, RSS $rss0 kB -> $rss1 kB"
    record rss gateway 1 "{\"series\": ${series:-0}, \"rss_idle_kb\": $rss0, \"rss_kb\": $rss1}"
    cleanup
    rm -rf "$dir/data"
  }
fi

# /metrics over METRICS_DEVICES x METRICS_SERIES series, written by gateway_fill into a stopped
# gateway's data dir; each scrape timed by curl (the whole body read, keep-alive off).
if [ "$METRICS_DEVICES" != 0 ]; then
  dir=$W/metrics
  mkdir -p "$dir"
  "$FILL" "$dir/data" "$METRICS_DEVICES" "$METRICS_SERIES" || exit 1
  start_gateway "$dir" && {
    echo "== /metrics: $METRICS_DEVICES devices x $METRICS_SERIES series"
    times=()
    for _ in $(seq "$METRICS_SCRAPES"); do
      times+=("$(curl -s -o "$dir/body" -w '%{time_total}' "http://127.0.0.1:$port/metrics")")
    done
    bytes=$(stat -c %s "$dir/body")
    lines=$(grep -c '^claude_' "$dir/body")
    echo "scrape seconds: ${times[*]}; $bytes bytes, $lines claude_ series lines"
    record metrics gateway 1 "{\"devices\": $METRICS_DEVICES, \"series_per_device\": $METRICS_SERIES, \"claude_lines\": $lines, \"bytes\": $bytes, \"seconds\": [$(IFS=,; echo "${times[*]}")], \"rss_kb\": $(rss_kb "$srv")}"
    cleanup
  }
fi

python3 "$ROOT/bench/gateway_bench_report.py" "$RESULTS" | tee "$W/report.md"
