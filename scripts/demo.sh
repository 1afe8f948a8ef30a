#!/usr/bin/env bash
# Quick start, step 1: install, build, and run ccmon-replay on this machine's Claude Code history
# (or on a generated demo history when there is none).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DCCMON_BUILD_TESTS=OFF > /dev/null
cmake --build "$root/build" -j"$(nproc)" --target ccmon-replay ccmon-pricing
replay="$root/build/src/tools/ccmon-replay"
if "$replay" summary --progress never > /dev/null 2>&1; then
  exec "$replay" summary "$@"
fi
demo="$root/build/demo-history"
if [ ! -d "$demo/projects" ]; then
  echo "No Claude Code history found here (CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude);"
  echo "generating a demo history in $demo ..."
  rm -rf "$demo"
  python3 "$root/tests/fixtures/gen_fixture.py" "$demo" --seed 1 --sessions 120 > /dev/null
fi
exec "$replay" summary --config-dir "$demo" "$@"
