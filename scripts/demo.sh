#!/usr/bin/env bash
# Quick start, step 1: install, build, and run ccmon-replay on this machine's Claude Code history
# (or on a generated demo history when there is none).
set -euo pipefail
# CCMON_DEMO_PREBUILT=DIR: use the build tree DIR as it is (no install, no build); the test suite
# runs the script that way (ctest quick_start_demo) so that the quick start cannot silently break.
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
if [ -n "${CCMON_DEMO_PREBUILT:-}" ]; then
  build=$CCMON_DEMO_PREBUILT
else
  "$root/scripts/install-deps.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCCMON_BUILD_TESTS=OFF > /dev/null
  cmake --build "$build" -j"$(nproc)" --target ccmon-replay ccmon-pricing
fi
replay="$build/src/tools/replay/ccmon-replay"
# This machine's history, if it has any requests (CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude).
requests=$("$replay" summary --json --progress never 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["requests"])' 2>/dev/null || echo 0)
if [ "${requests:-0}" -gt 0 ]; then
  echo "Claude Code usage on this machine:"
  exec "$replay" summary "$@"
fi
demo="$build/demo-history"
echo "No Claude Code history with requests on this machine (CLAUDE_CONFIG_DIR, ~/.config/claude,"
echo "~/.claude): showing a generated demo history ($demo)."
if [ ! -d "$demo/projects" ]; then
  rm -rf "$demo"
  python3 "$root/tests/fixtures/gen_fixture.py" "$demo" --seed 1 --sessions 120 > /dev/null
fi
exec "$replay" summary --config-dir "$demo" "$@"
