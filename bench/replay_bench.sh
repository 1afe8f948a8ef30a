#!/usr/bin/env bash
# Reproducible ccmon-replay benchmark: wall time, CPU time and peak RSS against `wc -l` and
# ccusage 20.0.24 on ccgen corpora, plus exactness checks (ground truth, ccusage agreement).
#
# usage: bench/replay_bench.sh WORKDIR [--runs N] [--wait-idle S] [--no-timing] [--no-exactness]
#
#   WORKDIR     scratch directory (corpora ~2 GB, ccusage install, results/); reused between
#               runs: corpora and the ccusage install are only created when absent.
#   --runs N    timed runs per command (default 10; hyperfine adds 1 warm-up run)
#   --wait-idle S  before each case, wait up to S seconds for the CPUs to be >= 90% idle
#               (shared machines: other builds inflate wall times; default 0 = don't wait)
#
# Needs: python3, hyperfine, GNU time (/usr/bin/time), npm+node (ccusage is skipped if the
# install fails), ../shared/corpus/ccgen.py next to the repository. The ccmon-replay binary is
# $CCMON_REPLAY, else build-bench/src/tools/replay/ccmon-replay, (re)built (Release) at each run.
# Output: markdown on stdout, also saved to WORKDIR/results/report.md; raw hyperfine JSON and
# RSS samples in WORKDIR/results/<case>/.
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 ]] || usage
WORK=$1; shift
RUNS=10; TIMING=1; EXACT=1; WAIT_IDLE=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --no-timing) TIMING=0; shift ;;
    --no-exactness) EXACT=0; shift ;;
    *) usage ;;
  esac
done

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
CCGEN=$(cd "$BENCH/../../shared/corpus" 2>/dev/null && pwd)/ccgen.py
[[ -f $CCGEN ]] || { echo "ccgen.py not found next to the repository ($BENCH/../../shared/corpus)" >&2; exit 1; }
mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
RES=$WORK/results; mkdir -p "$RES"
exec > >(tee "$RES/report.md") 2>&1

# Without $CCMON_REPLAY, build-bench is (re)built from the working tree so that the binary
# matches the commit printed below.
if [[ -n ${CCMON_REPLAY:-} ]]; then
  BIN=$CCMON_REPLAY
else
  BIN=$ROOT/build-bench/src/tools/replay/ccmon-replay
  echo "building $BIN (Release) ..." >&2
  [[ -f $ROOT/build-bench/CMakeCache.txt ]] ||
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DCCMON_BUILD_TESTS=OFF >/dev/null
  cmake --build "$ROOT/build-bench" -j2 --target ccmon-replay >/dev/null
fi

log() { echo; echo "$@"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
corpus_stats() {  # DIR -> "N files, X MiB, L lines"
  local n b l
  n=$(find "$1/projects" -name '*.jsonl' | wc -l)
  b=$(find "$1/projects" -name '*.jsonl' -printf '%s\n' | awk '{ s += $1 } END { print s }')
  l=$(find "$1/projects" -name '*.jsonl' -print0 | xargs -0 cat | wc -l)
  echo "$n files, $(mib "$b") ($b bytes), $l lines"
}
gen() {  # DIR ccgen-args...
  local dir=$1; shift
  if [[ -f $dir/ground_truth.json ]]; then return; fi
  rm -rf "$dir"
  echo "generating $dir: ccgen.py $*"
  python3 "$CCGEN" "$dir" "$@"
}

echo "# ccmon-replay benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); ccmon git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')"
echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc); RAM: $(free -m | awk '/^Mem:/ { print $2 " MiB" }')"
echo "- binary: $BIN ($(stat -c %y "$BIN" | cut -d. -f1))"
echo "- hyperfine $(hyperfine --version | cut -d' ' -f2), runs per command: $RUNS (+1 warm-up)"

# ---------------------------------------------------------------- corpora
log "## Corpora"
C2000=$WORK/corpus-2000-s1
S600=$WORK/single-600-s1
CAT3=$WORK/concat3-2000-s1
gen "$C2000" --files 2000 --target-mb 200 --seed 1
gen "$S600" --files 1 --target-mb 600 --seed 1
nfiles=$(find "$S600/projects" -name '*.jsonl' | wc -l)
sbytes=$(find "$S600/projects" -name '*.jsonl' -printf '%s\n' | awk '{ s += $1 } END { print s }')
if [[ $nfiles -ne 1 || $sbytes -lt $((500 * 1048576)) ]]; then
  echo "ccgen did not produce one file of >= 500 MiB ($nfiles files, $sbytes bytes): single-600 skipped, concat3 covers it"
  S600=
fi
# The 2000 files concatenated three times into one file (~630 MB): same distinct requests as
# corpus-2000, so its totals equal corpus-2000's ground truth (files/lines/bytes aside). A
# newline is added after a file's incomplete last line so it cannot merge with the next one.
if [[ ! -f $CAT3/ground_truth.json ]]; then
  echo "generating $CAT3 (corpus-2000-s1 x 3 in projects/big/all.jsonl)"
  rm -rf "$CAT3"; mkdir -p "$CAT3/projects/big"
  python3 - "$C2000/projects" "$CAT3/projects/big/all.jsonl" <<'EOF'
import os, sys
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs if f.endswith(".jsonl"))
with open(sys.argv[2], "wb") as out:
    for _ in range(3):
        for p in files:
            data = open(p, "rb").read()
            out.write(data)
            if data and not data.endswith(b"\n"):
                out.write(b"\n")
EOF
  cp "$C2000/ground_truth.json" "$CAT3/ground_truth.json"
fi
echo
echo "| corpus | content |"
echo "|---|---|"
echo "| corpus-2000-s1 | \`ccgen.py --files 2000 --target-mb 200 --seed 1\` (realistic): $(corpus_stats "$C2000"), $(python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['totals']; print(t['requests'], 'requests,', t['sessions'], 'sessions')" "$C2000/ground_truth.json") |"
[[ -n $S600 ]] && echo "| single-600-s1 | \`ccgen.py --files 1 --target-mb 600 --seed 1\`: $(corpus_stats "$S600"), $(python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['totals']; print(t['requests'], 'requests,', t['sessions'], 'session(s)')" "$S600/ground_truth.json") |"
echo "| concat3-2000-s1 | corpus-2000-s1's files concatenated 3x into one file: $(corpus_stats "$CAT3"), same requests as corpus-2000-s1 |"

# ---------------------------------------------------------------- ccusage
CCDIR=$WORK/ccusage
EMPTYHOME=$WORK/emptyhome; mkdir -p "$EMPTYHOME"
CCUSAGE_JS=$CCDIR/node_modules/.bin/ccusage
CCUSAGE_NATIVE=$CCDIR/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage
if [[ ! -x $CCUSAGE_NATIVE ]]; then
  log "installing ccusage 20.0.24 into $CCDIR (npm)"
  mkdir -p "$CCDIR"
  echo '{"name":"x","private":true}' > "$CCDIR/package.json"
  (cd "$CCDIR" && timeout 600 npm install --no-audit --no-fund ccusage@20.0.24) || true
  # npm (offline, from its cache) can leave the platform package's binary without its execute bit.
  [[ -f $CCUSAGE_NATIVE ]] && chmod +x "$CCUSAGE_NATIVE"
fi
HAVE_CC=0
if [[ -x $CCUSAGE_NATIVE ]] && "$CCUSAGE_NATIVE" --version 2>/dev/null | grep -q '20.0.24'; then
  HAVE_CC=1
  echo "- ccusage: $("$CCUSAGE_NATIVE" --version), node $(node --version) ($CCDIR)"
else
  echo "- ccusage 20.0.24 not available (npm install failed?): ccusage rows and the ccusage comparison are skipped"
fi

# ---------------------------------------------------------------- timing
q() { printf '%q' "$1"; }
idle_pct() {  # CPU idle % over 2 s, from /proc/stat
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  awk -v i=$(( b[4] + b[5] - a[4] - a[5] )) \
      -v t=$(( (b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]+a[8]) )) \
      'BEGIN { printf "%d", t ? 100 * i / t : 0 }'
}
wait_idle() {
  local start=$SECONDS idle
  while :; do
    idle=$(idle_pct)
    if (( idle >= 90 || SECONDS - start >= WAIT_IDLE )); then break; fi
  done
  echo "CPU idle before the case: ${idle}% (waited $((SECONDS - start)) s)"
}
psi_total() { sed -n 's/^some .*total=\([0-9]*\)/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0; }
bench_case() {  # NAME CORPUS
  local name=$1 corpus=$2 dir=$RES/$1
  rm -rf "$dir"; mkdir -p "$dir"
  log "## $name: $(corpus_stats "$corpus")"
  echo "warming the page cache ..." >&2
  find "$corpus/projects" -name '*.jsonl' -print0 | xargs -0 cat > /dev/null
  local T="/usr/bin/time -a -f %M -o"
  local rb="$(q "$BIN") summary --config-dir $(q "$corpus") -z UTC --progress never --device bench"
  local cc_env="env HOME=$(q "$EMPTYHOME") CLAUDE_CONFIG_DIR=$(q "$corpus") LOG_LEVEL=0"
  local cc_args="claude daily --json --offline -z UTC"
  local -a cmds=(
    "ccmon-replay" "$T $dir/ccmon-replay.rss $rb"
    "ccmon-replay --json" "$T $dir/ccmon-replay_--json.rss $rb --json"
    "ccmon-replay --threads 1" "$T $dir/ccmon-replay_--threads_1.rss $rb --threads 1"
    "wc -l" "$T $dir/wc_-l.rss sh -c \"find $(q "$corpus") -name '*.jsonl' -print0 | xargs -0 wc -l\""
  )
  if [[ $HAVE_CC = 1 ]]; then
    cmds+=(
      "ccusage" "$T $dir/ccusage.rss $cc_env node $(q "$CCUSAGE_JS") $cc_args"
      "ccusage native binary" "$T $dir/ccusage_native_binary.rss $cc_env $(q "$CCUSAGE_NATIVE") $cc_args"
    )
  fi
  local -a hf=()
  local i
  for ((i = 0; i < ${#cmds[@]}; i += 2)); do hf+=(-n "${cmds[i]}" "${cmds[i+1]}"); done
  [[ $WAIT_IDLE -gt 0 ]] && wait_idle
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local psi0 t0
  psi0=$(psi_total); t0=$(date +%s%N)
  echo
  echo "commands (each wrapped in \`/usr/bin/time -a -f %M -o FILE\` for peak RSS):"
  echo '```'
  echo "$rb  [--json | --threads 1]"
  echo "find $corpus -name '*.jsonl' -print0 | xargs -0 wc -l"
  [[ $HAVE_CC = 1 ]] && echo "$cc_env node $CCUSAGE_JS $cc_args   # and the native binary directly"
  echo '```'
  hyperfine --style none --warmup 1 --runs "$RUNS" --export-json "$dir/hyperfine.json" "${hf[@]}" > "$dir/hyperfine.txt" 2>&1 \
    || { cat "$dir/hyperfine.txt"; return 1; }
  local psi1 t1
  psi1=$(psi_total); t1=$(date +%s%N)
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); CPU pressure during the case" \
    "(share of time some runnable task waited for a CPU, /proc/pressure/cpu): $(awk -v p=$((psi1 - psi0)) -v t=$(( (t1 - t0) / 1000 )) 'BEGIN { printf "%.0f%%", 100 * p / t }')"
  echo
  python3 "$BENCH/bench_table.py" "$dir/hyperfine.json" "$dir"
}

if [[ $TIMING = 1 ]]; then
  bench_case corpus-2000-s1 "$C2000"
  [[ -n $S600 ]] && bench_case single-600-s1 "$S600"
  bench_case concat3-2000-s1 "$CAT3"

  # Peak RSS against size for single generated files: does it follow bytes or requests?
  log "## Peak RSS of one ccmon-replay run (--threads 1) against corpus size"
  echo
  echo "| corpus | files | MiB | lines | distinct requests | tool_use ids | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|"
  mkdir -p "$WORK/empty/projects"
  for c in "$WORK/empty" "$WORK/single-75-s1" "$WORK/single-150-s1" "$WORK/single-300-s1" \
           ${S600:+"$S600"} "$C2000" "$CAT3"; do
    case $c in
      */single-75-s1) gen "$c" --files 1 --target-mb 75 --seed 1 > /dev/null 2>&1 ;;
      */single-150-s1) gen "$c" --files 1 --target-mb 150 --seed 1 > /dev/null 2>&1 ;;
      */single-300-s1) gen "$c" --files 1 --target-mb 300 --seed 1 > /dev/null 2>&1 ;;
    esac
    rss=$( { /usr/bin/time -f %M "$BIN" summary --config-dir "$c" -z UTC --progress never \
             --device bench --threads 1 --json > "$RES/rss-scan.json"; } 2>&1 | tail -1)
    python3 - "$c" "$RES/rss-scan.json" "$rss" <<'PY'
import json, os, sys
c, out, rss = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
t = out["totals"]
print(f"| {os.path.basename(c)} | {out['files']} | {out['bytes'] / 2**20:.0f} | {out['lines']} "
      f"| {t['requests']} | {sum(out['tool_calls'].values())} | {rss / 1024:.1f} |")
PY
  done
fi

# ---------------------------------------------------------------- exactness
if [[ $EXACT = 1 ]]; then
  log "## Exactness against ccgen's ground truth (scripts/verify-ccgen.py)"
  echo '```'
  status=0
  for c in "$C2000" ${S600:+"$S600"} "$CAT3"; do
    python3 "$ROOT/scripts/verify-ccgen.py" "$BIN" "$c" || status=1
  done
  echo '```'
  [[ $status = 0 ]] || echo "**verify-ccgen.py reported differences**"

  if [[ $HAVE_CC = 1 ]]; then
    log "## Agreement with ccusage 20.0.24 on ccusage-compat corpora (bench/compare_ccusage.py)"
    echo "per UTC day x model and per month x model: tokens equal, cost within 1e-9 relative, '-fast' folded"
    echo '```'
    status=0
    for seed in 7 8 9; do
      c=$WORK/compat-300-s$seed
      gen "$c" --files 300 --target-mb 30 --seed $seed --profile ccusage-compat > /dev/null 2>&1
      python3 "$ROOT/scripts/verify-ccgen.py" "$BIN" "$c" || status=1
      python3 "$BENCH/compare_ccusage.py" "$BIN" "$c" node "$CCUSAGE_JS" || status=1
    done
    echo '```'
    [[ $status = 0 ]] || echo "**MISMATCHES (see above)**"

    log "## ccusage on the realistic corpus (informational: ccusage is known to differ there)"
    echo '```'
    python3 "$BENCH/compare_ccusage.py" --totals "$BIN" "$C2000" node "$CCUSAGE_JS"
    echo '```'
  fi
fi
