#!/bin/bash
# First start of ccmon-agent over a corpus: launch -> the "caught up" log line, with a fresh
# state dir and a closed target port (sending is not part of the catch-up). Prints wall time,
# CPU time of all threads (/proc/PID/stat) and peak RSS (VmHWM).
#   bench/agent_first_start.sh AGENT CONFIG_DIR [RUNS]
set -euo pipefail
agent=$1 corpus=$2 runs=${3:-3}
. "$(dirname "$0")/agent_start_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((i = 0; i < runs; i++)); do
  rm -rf "$work/state"  # before the clock starts, as the helper's own removal then finds none
  start=$(date +%s.%N)
  start_agent_until_caught_up "$agent" "$corpus" "$work"
  end=$(date +%s.%N)
  read -r ut st < <(awk '{print $14, $15}' "/proc/$pid/stat")
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || true
  awk -v s="$start" -v e="$end" -v u="$ut" -v t="$st" -v h="$hwm" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "wall %.3f s  cpu %.2f s  peak RSS %.1f MiB\n", e - s, (u + t) / hz, h / 1024 }'
done
