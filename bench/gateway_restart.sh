#!/usr/bin/env bash
# gateway_restart.sh: how long a gateway takes to serve again after a crash under load (the L
# records since the last checkpoint are replayed at start; BENCHMARKS.md "Session 23"). Per
# binary and round: a fresh data dir and device key, rwload at the issue-8 load (4 connections,
# 10 000 series, 1000 series x 1 sample per request) for LOAD_SECONDS, then SIGKILL, then the
# same data dir started again and timed until /readyz answers (polled every 10 ms).
#
# usage: RWLOAD=/path/to/rwload bench/gateway_restart.sh WORKDIR ROUNDS LOAD_SECONDS GATEWAY...
# WORKDIR must not exist or be one this script made (it is wiped).
set -uo pipefail
[ $# -ge 4 ] || { sed -n '2,9p' "$0"; exit 2; }
W=$1 ROUNDS=$2 LOAD=$3
shift 3
. "$(dirname "$0")/gateway_lib.sh"
find_rwload
fresh_workdir "$W" gateway-restart
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null' EXIT
for round in $(seq "$ROUNDS"); do
  i=0
  for gw in "$@"; do
    i=$((i + 1))
    dir=$W/r$round-$i
    prepare_gateway "$gw" "$dir"
    start_gateway "$gw" "$dir"
    "$RWLOAD" --port "$port" --server-pid "$srv" "${ISSUE8_LOAD[@]}" --duration "$LOAD" \
      --rate 2000000 --bearer-token-file "$dir/key" --json >"$dir/rwload.out" 2>&1
    kill -9 "$srv"; wait "$srv" 2>/dev/null
    size=$(du -sm "$dir/data" | cut -f1)
    t0=$(date +%s%N)
    "$gw" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" >"$dir/server2.log" 2>&1 &
    srv=$!
    ok=
    for _ in $(seq 6000); do
      curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && { ok=1; break; }
      kill -0 "$srv" 2>/dev/null || break
      sleep 0.01
    done
    t1=$(date +%s%N)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$srv/status" 2>/dev/null)
    kill "$srv"; wait "$srv" 2>/dev/null; srv=
    if [ -n "$ok" ]; then
      echo "round $round binary $i ($gw): data dir ${size} MB; ready after $(( (t1 - t0) / 1000000 )) ms; RSS ${rss} kB"
    else
      echo "round $round binary $i ($gw): did not become ready; see $dir/server2.log"
    fi
    rm -rf "$dir/data"
  done
done
