# Sourced by the agent bench scripts: one way to start an agent for a first start.
#
# start_agent_until_caught_up AGENT CORPUS WORKDIR
#   Starts AGENT in the foreground on CORPUS (--config-dir) with a fresh WORKDIR/state, pushing
#   to a closed port, its log in WORKDIR/log; returns once the log says "caught up", with the
#   agent's pid in $pid (still running: the caller reads /proc and stops it). Exits 1, printing
#   the log, if the agent ends before.
start_agent_until_caught_up() {
  rm -rf "$3/state"
  : >"$3/log"
  "$1" start --foreground --url http://127.0.0.1:9/api/v1/write --config-dir "$2" \
    --state-dir "$3/state" --device bench >"$3/log" 2>&1 &
  pid=$!
  until grep -q "caught up" "$3/log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$3/log"; exit 1; }
    sleep 0.01
  done
}
