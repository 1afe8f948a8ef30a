#!/usr/bin/env bash
# The README's quick start (scripts/demo.sh) on a built tree, without install or build steps:
# with no Claude Code history in $HOME it must generate the demo history and print its report.
# usage: quick_start_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
out=$(env -u CLAUDE_CONFIG_DIR -u XDG_CONFIG_HOME HOME="$home" CCMON_DEMO_PREBUILT="$build" \
  "$src/scripts/demo.sh" 2>&1)
echo "$out" | tail -4
grep -q "showing a generated demo history" <<<"$out" || { echo "FAIL: no demo history"; exit 1; }
grep -Eq '^total +[0-9,]+ ' <<<"$out" || { echo "FAIL: no totals row"; exit 1; }
grep -q "120 sessions" <<<"$out" || { echo "FAIL: the demo history has 120 sessions"; exit 1; }
