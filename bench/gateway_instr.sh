#!/usr/bin/env bash
# gateway_instr.sh: the gateway's user-space instructions per accepted sample under the issue-8
# load, counted by valgrind's callgrind (BENCHMARKS.md "Session 21"). For a machine without
# hardware counters (perf stat answers "not supported" for instructions and cycles): callgrind
# counts every instruction the process executes in user space (all threads; not the kernel's),
# the same on an idle or a loaded machine, so a 1-2 % change is visible where timed rounds see
# +-10 %. Per window: Ir over the window / (requests answered in it x series per request), the
# requests counted as callgrind's calls of WriteHandler::Stored (one per answered write, every
# one a 204 of SERIES_PER_REQ accepted samples at this load), so both counts cover the same
# instructions' window exactly, whatever callgrind's slowdown (~50x) does to the rate.
#
# Per binary and round: a fresh data dir and device key, the gateway under callgrind
# (instrumented from its start), rwload at 4 connections, 10 000 series, 1000 series x 1
# sample per request; after WARMUP s (the 10 000 series created, the cache filled) a dump ends
# the warm-up, and WINDOW s later a second dump holds the window. Alternates the binaries.
#
# usage: RWLOAD=/path/to/rwload bench/gateway_instr.sh WORKDIR ROUNDS WINDOW GATEWAY...
#        (WARMUP=20 by default; WORKDIR must not exist or be one this script made: it is wiped)
# prints per binary and round: Ir per sample, and without RocksDB's background threads (a flush
# more or less in a window moves the total by a few %), its parts (the io threads: HTTP, decoding,
# the series cache; the store thread: planning, the L record; its RocksStore::Write: the WAL and
# memtable), requests in the window, requests per synced group (RocksStore::Write calls).
set -uo pipefail
[ $# -ge 4 ] || { sed -n '2,20p' "$0"; exit 2; }
W=$1 ROUNDS=$2 WINDOW=$3
shift 3
WARMUP=${WARMUP:-20}
. "$(dirname "$0")/gateway_lib.sh"
find_rwload
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
  { echo "valgrind (callgrind) not found" >&2; exit 2; }
fresh_workdir "$W" gateway-instr
srv= load=
trap '[ -n "$load" ] && kill "$load" 2>/dev/null; [ -n "$srv" ] && kill "$srv" 2>/dev/null' EXIT

# "Ir requests groups background_Ir" of one callgrind dump (background: RocksDB's own threads,
# its flushes and compactions: whole events, one more or less in a window moves the total by a
# few %, so the figure without them is printed too)
window_counts() {
  python3 - "$1" <<'EOF'
import re, sys
ir = 0; names = {}; calls = {}; inclusive = {}; callee = None; in_call = False
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(3): names[m.group(2)] = m.group(3).strip()
        if m.group(1): callee = names[m.group(2)]
        continue
    if line.startswith("calls="):
        calls[callee] = calls.get(callee, 0) + int(line.split()[0][6:])
        in_call = True
        continue
    if line[:1].isdigit() or line[:1] in "+-*":
        parts = line.split()
        if len(parts) < 2: continue
        if in_call:
            inclusive[callee] = inclusive.get(callee, 0) + int(parts[1])
            in_call = False
        else:
            ir += int(parts[1])
def total(table, pat):
    return sum(v for k, v in table.items() if re.search(pat, k))
requests = total(calls, r"^ccmon::gateway::WriteHandler::Stored\(")
groups = total(calls, r"^ccmon::\(anonymous namespace\)::RocksStore::Write\(")
rocks_write = total(inclusive, r"^ccmon::\(anonymous namespace\)::RocksStore::Write\(")
background = total(inclusive, r"^rocksdb::ThreadPoolImpl::Impl::BGThreadWrapper\(")
io = total(inclusive, r"HttpServer::StartLocked\(\)::\{lambda\(\)#1\}> > >::_M_run\(")
store = total(inclusive, r"^ccmon::gateway::GatewayStore::CommitterLoop\(")
print(ir, requests, groups, background, io, store - rocks_write, rocks_write)
EOF
}

for round in $(seq "$ROUNDS"); do
  i=0
  for gw in "$@"; do
    i=$((i + 1))
    dir=$W/r$round-$i
    prepare_gateway "$gw" "$dir"
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
      "$gw" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
    srv=$!
    wait_gateway_ready "$gw" "$dir" 600
    "$RWLOAD" --port "$port" "${ISSUE8_LOAD[@]}" --warmup "$WARMUP" --duration $((WINDOW + 30)) \
      --rate 50000 --bearer-token-file "$dir/key" >"$dir/rwload.out" 2>&1 &
    load=$!
    sleep "$WARMUP"
    callgrind_control -d warmup "$srv" >/dev/null
    sleep "$WINDOW"
    callgrind_control -d window "$srv" >/dev/null
    kill "$load"; wait "$load" 2>/dev/null; load=
    kill "$srv"; wait "$srv" 2>/dev/null; srv=
    out=$dir/cg.out.2
    python3 -c "
import sys
ir, r, g, bg, io, store, rocks = map(int, sys.argv[1:8])
n = r * 1000
print(f'round $round binary $i ($gw): Ir/sample {ir/n:.1f} without RocksDB background {(ir-bg)/n:.1f}'
      f' (io threads {io/n:.1f}, store thread {store/n:.1f} + RocksStore::Write {rocks/n:.1f},'
      f' background {bg/n:.1f}) requests {r} requests/group {r/g if g else float(\"nan\"):.2f}'
      f' load: $(cut -d' ' -f1 /proc/loadavg)')" $(window_counts "$out")
    rm -rf "$dir/data"
  done
done
