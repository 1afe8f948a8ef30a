#!/usr/bin/env bash
# The README's screenshot of the gateway's status page (docs/status-page.png), taken by headless
# chromium from a gateway fed by agents over a ccgen corpus (tests/fixtures/gen_fixture.py).
#
#   scripts/screenshot-status.sh [BUILD_DIR] [OUT.png]     (defaults: build, docs/status-page.png)
#
# Needs the built ccmon-gateway and ccmon-agent, python3 and chromium (scripts/install-deps.sh
# --test); uses VictoriaMetrics as a forward destination when /usr/bin/victoria-metrics exists.
# What it shows: four registered devices — two whose agents backfill 4 weeks of history (so
# today, this month and all reported differ), one whose agent sends its history as of now, one
# never used — one revoked device, and two forward destinations: VictoriaMetrics (all sent) and a
# port where nothing listens (its queue, lag and last error). Everything runs on 127.0.0.1 on free
# ports in a temporary directory, removed at the end; every wait has a deadline.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/docs/status-page.png}
gateway=$build/src/gateway/ccmon-gateway
agent=$build/src/agent/ccmon-agent
for f in "$gateway" "$agent"; do
  [ -x "$f" ] || { echo "screenshot-status.sh: $f not built" >&2; exit 1; }
done
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "screenshot-status.sh: chromium not found (scripts/install-deps.sh --test)" >&2; exit 1; }

work=$(mktemp -d /tmp/ccmon-status-shot-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for WHAT SECONDS COMMAND...: runs COMMAND until it succeeds, at most SECONDS.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "screenshot-status.sh: $what: not within ${seconds}s" >&2
      tail -n 20 "$work"/*.log >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

# A history over the last four weeks, one config dir per device.
start_day=$(date -u -d '-27 days' +%F)
python3 "$root/tests/fixtures/gen_fixture.py" "$work/corpus" --seed 31 --sessions 30 \
  --device-count 3 --start "$start_day" --days 28 >/dev/null

port=$(free_port)
dead_port=$(free_port)
umask 077
openssl rand -hex 32 >"$work/admin-token"
forward=()
if [ -x /usr/bin/victoria-metrics ]; then
  vm_port=$(free_port)
  /usr/bin/victoria-metrics -httpListenAddr="127.0.0.1:$vm_port" -storageDataPath="$work/vm" \
    -retentionPeriod=100y >"$work/victoria-metrics.log" 2>&1 &
  pids+=($!)
  wait_for "VictoriaMetrics ready" 60 curl -sf "http://127.0.0.1:$vm_port/health"
  forward+=(--forward "http://127.0.0.1:$vm_port/api/v1/write")
fi
forward+=(--forward "http://127.0.0.1:$dead_port/api/v1/write")
"$gateway" serve --listen "127.0.0.1:$port" --data-dir "$work/gateway" \
  --admin-token-file "$work/admin-token" --forward-batch-send-deadline 1s "${forward[@]}" \
  >"$work/gateway.log" 2>&1 &
pids+=($!)
server=http://127.0.0.1:$port
wait_for "gateway ready" 60 curl -sf "$server/readyz"

declare -A keys
for name in alice-laptop bob-workstation ci-runner old-macbook intern-laptop; do
  keys[$name]=$("$gateway" device add "$name" --server "$server" \
    --admin-token-file "$work/admin-token" | tail -n 1)
done
"$gateway" device revoke intern-laptop --server "$server" --admin-token-file "$work/admin-token" \
  >/dev/null

# start_agent NAME CONFIG_DIR [--backfill]
start_agent() {
  local name=$1 config=$2
  shift 2
  mkdir -p "$work/home-$name"
  HOME="$work/home-$name" XDG_CONFIG_HOME="$work/home-$name/.config" \
    XDG_STATE_HOME="$work/home-$name/.state" \
    "$agent" start --foreground --url "$server/api/v1/write" --key "${keys[$name]}" \
    --config-dir "$config" --state-dir "$work/state-$name" --settle-after 2s \
    --batch-send-deadline 100ms "$@" >"$work/agent-$name.log" 2>&1 &
  pids+=($!)
}
start_agent alice-laptop "$work/corpus/device-1" --backfill
start_agent bob-workstation "$work/corpus/device-2" --backfill
start_agent ci-runner "$work/corpus/device-3"

# Every device's corpus is in (its cost on the page equals its ground truth) and its state
# copied, and the dead destination has failed at least once.
all_in() {
  curl -sf "$server/api/v1/status" | python3 -c '
import json, sys
status = json.load(sys.stdin)
corpus = sys.argv[1]
want = {}
for i, name in enumerate(["alice-laptop", "bob-workstation", "ci-runner"]):
    with open("%s/device-%d/expected.json" % (corpus, i + 1)) as fh:
        want[name] = str(json.load(fh)["totals"]["cost_pusd"])
got = {d["name"]: d["cost_total_pusd"] for d in status["devices"]}
dead = status["destinations"][-1]
ok = all(got.get(n) == v for n, v in want.items()) and dead["last_error"] != ""
ok = ok and all(d["queued_samples"] == 0 for d in status["destinations"][:-1])
copies = {d["name"]: d["state_copy"] for d in status["devices"]}
ok = ok and all(copies.get(n) for n in want)
sys.exit(0 if ok else 1)
' "$work/corpus"
}
wait_for "the agents' corpora on the status page" 180 all_in

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$work/chromium" \
  --window-size=1600,760 --virtual-time-budget=3000 --screenshot="$work/status.png" \
  "$server/" >"$work/chromium.log" 2>&1
mkdir -p "$(dirname "$out")"
install -m 0644 "$work/status.png" "$out"
echo "wrote $out"
