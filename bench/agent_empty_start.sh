#!/bin/bash
# The agent's fixed start-up cost: launch -> "caught up" over an empty history (a config dir
# whose projects/ holds no transcript), fresh state dir each run, binaries alternating per round
# (BENCHMARKS.md "Session 19"). Prints each binary's times in ms.
#   bench/agent_empty_start.sh ROUNDS AGENT...
set -euo pipefail
rounds=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/claude/projects"
for ((r = 0; r < rounds; r++)); do
  for a in "$@"; do
    rm -rf "$work/state"
    : >"$work/log"
    s=$(date +%s%N)
    "$a" start --foreground --url http://127.0.0.1:9/api/v1/write --config-dir "$work/claude" \
      --state-dir "$work/state" --device bench >"$work/log" 2>&1 &
    pid=$!
    until grep -q "caught up" "$work/log"; do
      kill -0 "$pid" 2>/dev/null || { cat "$work/log"; exit 1; }
      sleep 0.002
    done
    e=$(date +%s%N)
    kill -INT "$pid"
    wait "$pid" || true
    echo "$a $(((e - s) / 1000000))"
  done
done | awk '{ v[$1] = v[$1] " " $2 } END { for (k in v) print k ":" v[k] " ms" }'
