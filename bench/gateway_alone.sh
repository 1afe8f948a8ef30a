#!/usr/bin/env bash
# gateway_alone.sh: the gateway alone under the issue-8 load, for comparing builds step by step
# (BENCHMARKS.md "Gateway (issue 8)", "What changed"). Alternates the given binaries, ROUNDS
# rounds, each run on a fresh data dir with a device key, rwload at 4 connections, 10 000 series,
# 1000 series x 1 sample per request, DURATION measured seconds; prints samples/s per gateway
# core (rwload's --server-pid figure: accepted samples / CPU seconds from /proc/PID/stat).
#
# usage: RWLOAD=/path/to/rwload bench/gateway_alone.sh WORKDIR ROUNDS DURATION GATEWAY...
# WORKDIR must not exist or be one this script made (it is wiped).
set -uo pipefail
[ $# -ge 4 ] || { sed -n '2,10p' "$0"; exit 2; }
W=$1 ROUNDS=$2 DURATION=$3
shift 3
. "$(dirname "$0")/gateway_lib.sh"
find_rwload
fresh_workdir "$W" gateway-alone
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null' EXIT
for round in $(seq "$ROUNDS"); do
  i=0
  for gw in "$@"; do
    i=$((i + 1))
    dir=$W/r$round-$i
    prepare_gateway "$gw" "$dir"
    start_gateway "$gw" "$dir"
    "$RWLOAD" --port "$port" --server-pid "$srv" "${ISSUE8_LOAD[@]}" --duration "$DURATION" \
      --rate 2000000 --bearer-token-file "$dir/key" --json >"$dir/rwload.out" 2>&1
    rc=$?
    kill "$srv"; wait "$srv" 2>/dev/null; srv=
    per_core=$(grep '^{' "$dir/rwload.out" | tail -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["samples_per_server_core_s"]), int(d["samples_per_s"]), "p99", d["p99_ms"], "cores", d["server_cores"])' 2>/dev/null)
    echo "round $round binary $i ($gw): rc=$rc per-core/per-s: $per_core load: $(cut -d' ' -f1 /proc/loadavg)"
    rm -rf "$dir/data"
  done
done
