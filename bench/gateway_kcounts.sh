#!/usr/bin/env bash
# gateway_kcounts.sh: the gateway's kernel-side work per answered write, counted (not timed), so
# that the machine's load does not move the figures: context switches, CPU migrations, syscalls
# by kind and task-clock over a window of the issue-8 load (4 connections, 10 000 series, 1000
# series x 1 sample per request), divided by the writes answered in that same window (the
# gateway's own ccmon_gateway_samples_accepted_total / 1000, read before and after it).
# BENCHMARKS.md "Session 22 (branch gwk22)". Needs perf with the syscalls tracepoints (root).
#
# usage: RWLOAD=/path/to/rwload bench/gateway_kcounts.sh WORKDIR ROUNDS WINDOW GATEWAY...
# Extra `serve` flags for every binary: GATEWAY_FLAGS="--io-threads 2". WORKDIR must not exist
# or be one this script made (it is wiped).
set -uo pipefail
[ $# -ge 4 ] || { sed -n '2,11p' "$0"; exit 2; }
W=$1 ROUNDS=$2 WINDOW=$3
shift 3
. "$(dirname "$0")/gateway_lib.sh"
find_rwload
fresh_workdir "$W" gateway-kcounts
EVENTS=task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter
for s in futex recvmsg recvfrom sendmsg sendto epoll_wait epoll_pwait timerfd_settime fdatasync \
  write writev pwrite64 read; do
  EVENTS+=",syscalls:sys_enter_$s"
done
accepted() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '/^ccmon_gateway_samples_accepted_total/ {print $2}'
}
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null' EXIT
for round in $(seq "$ROUNDS"); do
  i=0
  for gw in "$@"; do
    i=$((i + 1))
    dir=$W/r$round-$i
    prepare_gateway "$gw" "$dir"
    # shellcheck disable=SC2086
    start_gateway "$gw" "$dir" ${GATEWAY_FLAGS:-}
    "$RWLOAD" --port "$port" --server-pid "$srv" "${ISSUE8_LOAD[@]}" --duration "$((WINDOW + 4))" \
      --rate 2000000 --bearer-token-file "$dir/key" --json >"$dir/rwload.out" 2>&1 &
    load=$!
    sleep 5  # rwload's 3 s warm-up (series created) and 2 s more
    a0=$(accepted "$port")
    perf stat -x, -e "$EVENTS" -e syscalls:sys_exit_recvmsg --filter 'ret < 0' -p "$srv" \
      -o "$dir/perf.csv" -- sleep "$WINDOW" 2>/dev/null
    a1=$(accepted "$port")
    wait "$load"
    kill "$srv"; wait "$srv" 2>/dev/null; srv=
    python3 - "$dir/perf.csv" "$a0" "$a1" "$round" "$i" "$gw" <<'EOF'
import sys
path, a0, a1, rnd, i, gw = sys.argv[1:]
writes = (float(a1) - float(a0)) / 1000.0
vals = {}
for line in open(path):
    f = line.strip().split(',')
    if len(f) < 3 or line.startswith('#'):
        continue
    try:
        vals[f[2].replace('syscalls:sys_exit_recvmsg', 'recvmsg-EAGAIN').replace('syscalls:sys_enter_', '').replace('raw_syscalls:sys_enter', 'syscalls')] = float(f[0])
    except ValueError:
        pass
out = [f"round {rnd} binary {i} ({gw}): writes {writes:.0f}"]
tc = vals.pop('task-clock', 0.0)  # ms
out.append(f"task-clock/write {tc * 1000 / writes:.0f} us ({tc * 1e6 / writes / 1000:.0f} ns/sample)")
for k, v in vals.items():
    if v:
        out.append(f"{k} {v / writes:.2f}")
print('; '.join(out))
EOF
    rm -rf "$dir/data"
  done
done
