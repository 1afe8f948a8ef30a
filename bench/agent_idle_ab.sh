#!/bin/bash
# Idle CPU (and first start, append -> visible) of several agent binaries, alternating, so that
# the machine's state hits all alike: bench/agent_bench.py --runs 1 per binary per round.
# usage: bench/agent_idle_ab.sh OUT ROUNDS REPLAY CORPUS AGENT...
#   OUT     file the results are appended to (one block per run)
#   REPLAY  a ccmon-replay binary; CORPUS a config dir (e.g. a ccgen corpus of 2000 files)
# Environment: IDLE_SECONDS (60), APPENDS (50).
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,7p' "$0" >&2
  exit 2
fi
out=$1 rounds=$2 replay=$3 corpus=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
for r in $(seq 1 "$rounds"); do
  for agent in "$@"; do
    echo "== round $r $agent $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >> "$out"
    python3 "$here/agent_bench.py" --agent "$agent" --replay "$replay" --corpus "$corpus" \
      --runs 1 --idle-seconds "${IDLE_SECONDS:-60}" --appends "${APPENDS:-50}" 2>&1 |
      grep -E "idle|append|first" >> "$out"
  done
done
