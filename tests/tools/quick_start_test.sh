#!/usr/bin/env bash
# The README's quick start (scripts/demo.sh) on a built tree, without install or build steps:
# with no Claude Code history in $HOME it must generate the demo history, start a gateway and an
# agent pushing that history to it, print the /metrics URL and the report, serve on /metrics
# exactly the report's cost and requests, and stop both cleanly on Ctrl-C (SIGINT to its process
# group, as a terminal sends it). A second run counts nothing twice.
# usage: quick_start_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
home=$(mktemp -d)
pid=''
cleanup() {
  if [ -n "$pid" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  rm -rf "$home"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; echo "--- output"; cat "$home/out.txt"; exit 1; }

# Waits (deadline $1 s) until "${@:2}" succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  until "${@:2}"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

run_demo() {
  : > "$home/out.txt"
  env -u CLAUDE_CONFIG_DIR -u XDG_CONFIG_HOME HOME="$home" CCMON_DEMO_PREBUILT="$build" \
    CCMON_DEMO_LISTEN=127.0.0.1:0 CCMON_DEMO_DIR="$home/demo" \
    setsid "$src/scripts/demo.sh" > "$home/out.txt" 2>&1 &
  pid=$!
  ready() { grep -q "Ctrl-C stops" "$home/out.txt" || ! kill -0 "$pid" 2>/dev/null; }
  wait_for 120 ready || fail "no 'Ctrl-C stops' line within 120 s"
  kill -0 "$pid" 2>/dev/null || fail "demo.sh ended before Ctrl-C"
}

# What /metrics says: total cost (USD) and requests over every series.
metrics_totals() {
  python3 -c '
import sys, urllib.request
cost = req = 0.0
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    if line.startswith("claude_cost_usd_total{"):
        cost += float(line.rsplit(" ", 1)[1])
    elif line.startswith("claude_requests_total{"):
        req += float(line.rsplit(" ", 1)[1])
print("%.2f %d" % (cost, req))' "$1"
}

stop_demo() {
  kill -INT -- "-$pid"
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "demo.sh still running 15 s after Ctrl-C"
    sleep 0.1
  done
  wait "$pid" || fail "demo.sh exited with $? after Ctrl-C"
  pid=''
  grep -q "^Stopped\." "$home/out.txt" || fail "no 'Stopped.' line"
  if grep -lsa "$home/demo" /proc/[0-9]*/cmdline > /dev/null; then
    fail "a gateway or agent outlived the demo"
  fi
}

run_demo
out=$(cat "$home/out.txt")
grep -q "showing a generated demo history" <<<"$out" || fail "no demo history"
grep -q "120 sessions" <<<"$out" || fail "the demo history has 120 sessions"
total_row=$(grep -E '^total +[0-9,]+ ' <<<"$out") || fail "no totals row"
want_cost=$(awk '{print $NF}' <<<"$total_row" | tr -d '$,')
want_req=$(awk '{print $(NF-2)}' <<<"$total_row" | tr -d ',')
url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/metrics' <<<"$out" | head -1) || fail "no /metrics URL"
got=$(metrics_totals "$url")
[ "$got" = "$want_cost $want_req" ] ||
  fail "/metrics has cost and requests '$got', the report '$want_cost $want_req'"
echo "ok  first run: $url serves the report's totals ($got)"
stop_demo
echo "ok  Ctrl-C stopped the gateway and the agent"

# Again on the same state: nothing new, nothing counted twice.
run_demo
url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/metrics' "$home/out.txt" | head -1) || fail "no URL"
got=$(metrics_totals "$url")
[ "$got" = "$want_cost $want_req" ] || fail "second run: /metrics has '$got'"
echo "ok  second run: the same totals ($got)"
stop_demo
