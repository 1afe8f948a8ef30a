#!/bin/bash
# The agent's fixed start-up cost: launch -> "caught up" over an empty history (a config dir
# whose projects/ holds no transcript), fresh state dir each run, binaries alternating per round
# (BENCHMARKS.md "Session 19"). Prints each binary's times in ms.
#   bench/agent_empty_start.sh ROUNDS AGENT...
set -euo pipefail
rounds=$1
shift
. "$(dirname "$0")/agent_start_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/claude/projects"
for ((r = 0; r < rounds; r++)); do
  for a in "$@"; do
    rm -rf "$work/state"  # before the clock starts, as agent_first_start.sh does
    s=$(date +%s%N)
    start_agent_until_caught_up "$a" "$work/claude" "$work"
    e=$(date +%s%N)
    kill -INT "$pid"
    wait "$pid" || true
    echo "$a $(((e - s) / 1000000))"
  done
done | awk '{ v[$1] = v[$1] " " $2 } END { for (k in v) print k ":" v[k] " ms" }'
