#!/usr/bin/env bash
# Checks that two ccmon-replay binaries produce byte-identical outputs on the same corpora:
# `summary --json` (and every --by grouping), `metrics` (text and OpenMetrics) and the
# `openmetrics` history file. Used to show that a refactoring changed no behaviour.
#
# usage: bench/compare_outputs.sh OLD_REPLAY NEW_REPLAY CONFIG_DIR... [-- EXTRA REPLAY FLAGS]
#   CONFIG_DIR  a Claude config dir (holding projects/), e.g. a ccgen corpus
# Environment: CCMON_COMPARE_IGNORE — an extended regex; lines matching it are dropped from both
# sides before comparing (for a change that adds, say, a new metric family on purpose).
# Exit status: 0 identical, 1 differences (listed), 2 usage.
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
old=$1 new=$2; shift 2
dirs=()
while [[ $# -gt 0 && $1 != -- ]]; do dirs+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
extra=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_all() {  # BIN OUT
  local bin=$1 out=$2 i=0
  mkdir -p "$out"
  for d in "${dirs[@]}"; do
    i=$((i + 1))
    local c=(--config-dir "$d" --device cmp -z UTC --progress never "${extra[@]}")
    "$bin" summary --json "${c[@]}" > "$out/$i.summary.json"
    for by in day month session project model device; do
      "$bin" summary --by $by --json "${c[@]}" > "$out/$i.by-$by.json"
    done
    "$bin" metrics "${c[@]}" > "$out/$i.metrics.txt"
    "$bin" metrics --format openmetrics "${c[@]}" > "$out/$i.metrics.om"
    "$bin" openmetrics -o "$out/$i.history.om" "${c[@]}" 2> /dev/null
  done
}

run_all "$old" "$work/old"
run_all "$new" "$work/new"
status=0
for f in "$work"/old/*; do
  b=$(basename "$f")
  if [[ -n ${CCMON_COMPARE_IGNORE:-} ]]; then
    if ! cmp -s <(grep -Ev "$CCMON_COMPARE_IGNORE" "$f") <(grep -Ev "$CCMON_COMPARE_IGNORE" "$work/new/$b"); then
      echo "DIFFERENT: $b"; status=1
    fi
  elif ! cmp -s "$f" "$work/new/$b"; then
    echo "DIFFERENT: $b"; status=1
  fi
done
[[ $status == 0 ]] && echo "identical: $(ls "$work/old" | wc -l) outputs on ${#dirs[@]} corpora"
exit $status
