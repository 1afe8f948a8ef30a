# Sourced by the gateway bench scripts (gateway_alone.sh, gateway_instr.sh, gateway_kcounts.sh,
# gateway_restart.sh): one way to find rwload, make a work dir, set up and start a gateway for a
# round, and one definition of the issue-8 load.
#
# prepare_gateway GW DIR
#   A fresh DIR/data with a device "bench" registered by GW, its key in DIR/key, and a free
#   port on 127.0.0.1 in $port. Exits 1, printing GW's output, if the registration fails.
prepare_gateway() {
  mkdir -p "$2/data"
  "$1" device add bench --data-dir "$2/data" >"$2/device-add.out" 2>&1 || { cat "$2/device-add.out"; exit 1; }
  tail -1 "$2/device-add.out" >"$2/key"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
}

# wait_gateway_ready GW DIR TRIES
#   Waits until the gateway started as $srv on $port answers /readyz, polling every 0.1 s at most
#   TRIES times. Exits 1 (naming GW and DIR) if it ends or does not answer in time.
wait_gateway_ready() {
  local ok=
  for _ in $(seq "$3"); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && { ok=1; break; }
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "gateway $1 did not start; see $2" >&2; exit 1; }
}

# find_rwload
#   $RWLOAD, or rwload from PATH; exits 2 if neither is an executable.
find_rwload() {
  RWLOAD=${RWLOAD:-$(command -v rwload || true)}
  [ -x "$RWLOAD" ] || { echo "rwload not found: set RWLOAD" >&2; exit 2; }
}

# fresh_workdir W NAME
#   An empty W, marked as made by this script (W/.NAME). An existing W is wiped only if it holds
#   that mark; otherwise exits 2, so that a mistyped path is never deleted.
fresh_workdir() {
  if [ -e "$1" ]; then
    [ -f "$1/.$2" ] && rm -rf -- "$1" || { echo "$1 exists, not made here" >&2; exit 2; }
  fi
  mkdir -p "$1" && touch "$1/.$2" || exit 2
}

# The issue-8 load, the same for every script: 4 connections, 10 000 series, requests of 1000
# series x 1 sample, the device label rwload writes named `host` (the gateway sets `device` from
# the key). Callers add --port, the key, the duration, the rate and what they read back.
ISSUE8_LOAD=(--conns 4 --series 10000 --series-per-req 1000 --samples-per-series 1
  --device-label-name host)

# start_gateway GW DIR [SERVE_FLAGS...]
#   GW serving DIR/data on $port (prepare_gateway's), its output in DIR/server.log, its pid in
#   $srv; returns once it answers /readyz (wait_gateway_ready, 300 tries).
start_gateway() {
  local gw=$1 dir=$2
  shift 2
  "$gw" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" "$@" >"$dir/server.log" 2>&1 &
  srv=$!
  wait_gateway_ready "$gw" "$dir" 300
}
