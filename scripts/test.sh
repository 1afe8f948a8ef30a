#!/usr/bin/env bash
# Quick start, step 2: install, build from scratch, and run every test (unit, integration, fuzz).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${CCMON_TEST_BUILD_DIR:-$root/build-test}"
"$root/scripts/install-deps.sh" --test
rm -rf "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCCMON_BUILD_TESTS=ON
cmake --build "$build" -j"$(nproc)"
# The libFuzzer targets (line parser, then remote-write decoder), briefly; a longer run:
# tests/fuzz/run_fuzz.sh 600.
"$root/tests/fuzz/run_fuzz.sh" "${CCMON_FUZZ_SECONDS:-30}"
# Unit and integration tests last, so that their summary closes the output.
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
