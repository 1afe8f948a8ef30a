#!/usr/bin/env bash
# Quick start, step 1: install, build, and run ccmon on this machine — a gateway (its RocksDB
# under build/demo/) and an agent counting this machine's Claude Code history (or a generated
# demo history when there is none) and pushing it to the gateway. Prints the gateway's /metrics
# URL and a ccmon-replay summary of the same history, then runs until Ctrl-C, which stops both
# cleanly. Arguments are passed on to `ccmon-replay summary` (e.g. --by month).
#
# Environment:
#   CCMON_DEMO_PREBUILT=DIR  use the build tree DIR as it is (no install, no build); the test suite
#                            runs the script that way (ctest quick_start_demo)
#   CCMON_DEMO_LISTEN        the gateway's address (default 127.0.0.1:9469; when that port is
#                            taken, a free one is picked and printed)
#   CCMON_DEMO_DIR           where the gateway's and the agent's state live (default
#                            <build>/demo); kept between runs, so a second run counts nothing twice
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
if [ -n "${CCMON_DEMO_PREBUILT:-}" ]; then
  build=$CCMON_DEMO_PREBUILT
else
  "$root/scripts/install-deps.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCCMON_BUILD_TESTS=OFF > /dev/null
  cmake --build "$build" -j"$(nproc)" --target ccmon-replay ccmon-pricing ccmon-gateway ccmon-agent
fi
replay="$build/src/tools/replay/ccmon-replay"
gateway="$build/src/gateway/ccmon-gateway"
agent="$build/src/agent/ccmon-agent"
work="${CCMON_DEMO_DIR:-$build/demo}"
mkdir -p "$work"

# This machine's history, if it has any requests (CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude).
requests=$("$replay" summary --json --progress never 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["requests"])' 2>/dev/null || echo 0)
config_args=()
if [ "${requests:-0}" -gt 0 ]; then
  echo "Counting this machine's Claude Code history."
else
  demo="$build/demo-history"
  echo "No Claude Code history with requests on this machine (CLAUDE_CONFIG_DIR, ~/.config/claude,"
  echo "~/.claude): showing a generated demo history ($demo)."
  if [ ! -d "$demo/projects" ]; then
    rm -rf "$demo"
    python3 "$root/tests/fixtures/gen_fixture.py" "$demo" --seed 1 --sessions 120 > /dev/null
  fi
  config_args=(--config-dir "$demo")
fi

# The device key: registered once on the stopped gateway's store, kept for later runs.
device=$(hostname -s 2>/dev/null || echo demo)
device=$(tr -c 'A-Za-z0-9._\n-' '-' <<<"${device:-demo}" | cut -c1-64)
mkdir -p "$work/gateway-data"
if [ ! -s "$work/device.key" ]; then
  (umask 077 && "$gateway" device add "$device" --data-dir "$work/gateway-data" | tail -1 \
    > "$work/device.key.tmp")
  mv "$work/device.key.tmp" "$work/device.key"
fi

gateway_pid='' agent_pid=''
stop_all() {
  trap - INT TERM
  echo
  echo "Stopping the agent and the gateway..."
  if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null || true; fi
  if [ -n "$agent_pid" ]; then wait "$agent_pid" 2>/dev/null || true; fi
  if [ -n "$gateway_pid" ]; then kill -TERM "$gateway_pid" 2>/dev/null || true; fi
  if [ -n "$gateway_pid" ]; then wait "$gateway_pid" 2>/dev/null || true; fi
  echo "Stopped. State kept in $work (logs: gateway.log, agent.log)."
  exit 0
}
trap stop_all INT TERM

# Waits up to $1 seconds for the command "${@:2}" to succeed (a condition, not a fixed sleep).
wait_for() {
  local deadline=$((SECONDS + $1))
  until "${@:2}"; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

gateway_up() {  # listening, or gone (then the log says why)
  grep -q 'msg="listening"' "$work/gateway.log" || ! kill -0 "$gateway_pid" 2>/dev/null
}
start_gateway() {  # $1: listen address; sets gateway_pid and port
  : > "$work/gateway.log"
  "$gateway" serve --listen "$1" --data-dir "$work/gateway-data" >> "$work/gateway.log" 2>&1 &
  gateway_pid=$!
  if ! wait_for 30 gateway_up; then
    echo "demo.sh: the gateway did not start listening within 30 s ($work/gateway.log)" >&2
    return 1
  fi
  port=$(grep -o 'msg="listening".*port=[0-9]*' "$work/gateway.log" | grep -o '[0-9]*$' | head -1)
  [ -n "$port" ]
}
listen="${CCMON_DEMO_LISTEN:-127.0.0.1:9469}"
if ! start_gateway "$listen"; then
  wait "$gateway_pid" 2>/dev/null || true
  echo "The gateway could not listen on $listen; trying a free port."
  start_gateway "${listen%:*}:0" || { cat "$work/gateway.log" >&2; exit 1; }
fi
base="http://${listen%:*}:$port"

# The agent: its own config file (empty: only these flags), state dir, and this gateway.
: > "$work/agent.conf"
"$agent" start --foreground --config "$work/agent.conf" --state-dir "$work/agent-state" \
  --url "$base/api/v1/write" --key "$(cat "$work/device.key")" --device "$device" \
  "${config_args[@]}" >> "$work/agent.log" 2>&1 &
agent_pid=$!

# Caught up and pushed: the agent's status file says so, or it stopped (then its log says why).
status_ok() {
  python3 - "$work/agent-state/status.json" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(1)
# Caught up with the history and nothing waiting: the gateway holds everything read so far
# (on a later run with nothing new to send, there is no push at all).
sys.exit(0 if s.get("caught_up") == 1 and s.get("outbox_requests", 1) == 0
         and s.get("last_push_status") in ("ok", "") else 1)
EOF
}
agent_done() { status_ok || ! kill -0 "$agent_pid" 2>/dev/null; }
if ! wait_for 120 agent_done || ! kill -0 "$agent_pid" 2>/dev/null; then
  echo "demo.sh: the agent did not push the history to the gateway:" >&2
  tail -5 "$work/agent.log" >&2
  stop_all
fi

echo
"$replay" summary "${config_args[@]}" "$@"
echo
echo "The gateway serves what the agent pushed:  $base/metrics"
echo "  e.g.  curl -s $base/metrics | grep '^claude_cost_usd_total'"
echo "The agent keeps counting new Claude Code activity. Ctrl-C stops the gateway and the agent."
wait "$agent_pid" "$gateway_pid" || true
stop_all
