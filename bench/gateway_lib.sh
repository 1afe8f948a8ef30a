# Sourced by the gateway bench scripts (gateway_alone.sh, gateway_instr.sh, gateway_kcounts.sh):
# one way to set up and start a gateway for a round.
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
