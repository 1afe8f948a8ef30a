#!/usr/bin/env bash
# Quick start, step 2, and CI (.ci/run): installs what is missing, builds from scratch with
# warnings as errors, and runs every check. The jobs, in order:
#   format  scripts/check-format.sh (every tracked C++ file as clang-format 14 formats it)
#   build   the whole tree: GCC, RelWithDebInfo, -Werror                          tree <dir>
#   fuzz    tests/fuzz/run_fuzz.sh: both libFuzzer targets (clang, ASan+UBSan)    tree <dir>-fuzz
#           In the background, alongside the jobs after it up to ctest (the fuzzer runs on one
#           core for a fixed time, so the builds use the other); its output is printed when done.
#   asan    every unit test under ASan+UBSan (clang, -Werror)                     tree <dir>-asan
#   tsan    the unit tests of code that runs threads (ccmon_unit_test THREADS)
#           under TSan (clang, -Werror)                                           tree <dir>-tsan
#   ctest   every unit and integration test of the main tree (last, so that its summary closes
#           the output; needs `build`)
# Each tree is configured and built from scratch; the sanitizer trees build only the test
# binaries they run. A sanitizer report fails the test that triggered it.
#   scripts/test.sh [JOB...]     (default: all jobs)
# Environment: CCMON_TEST_BUILD_DIR (<dir>, default <repo>/build-test), CCMON_TEST_JOBS (parallel
# build and test jobs, default nproc), CCMON_FUZZ_SECONDS (default 30).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${CCMON_TEST_BUILD_DIR:-$root/build-test}"
jobs="${CCMON_TEST_JOBS:-$(nproc)}"
all_jobs=(format build fuzz asan tsan ctest)
if [ $# -eq 0 ]; then set -- "${all_jobs[@]}"; fi
for j in "$@"; do
  if [[ " ${all_jobs[*]} " != *" $j "* ]]; then
    echo "test.sh: unknown job '$j' (jobs: ${all_jobs[*]})" >&2
    exit 2
  fi
done

# Prints how long each job took: wall clock, and the CPU time (user + system) of the processes
# that ended during it, which says more when the machine is shared (the background fuzz job's
# CPU time counts in the job during which it ends).
started=$SECONDS
clk_tck=$(getconf CLK_TCK)
children_cpu() {  # whole seconds of CPU used by this shell's finished children so far
  # /proc/PID/stat fields 16 and 17: cutime and cstime, in clock ticks ($$: this shell, even
  # from a subshell). The name in field 2 is "(bash)", without spaces.
  awk -v tck="$clk_tck" '{ printf "%d\n", ($16 + $17) / tck }' "/proc/$$/stat"
}
timed() {
  local name=$1 t0=$SECONDS c0
  c0=$(children_cpu)
  shift
  echo "== test.sh: $name (at $((SECONDS - started)) s)"
  "$@"
  # ctest prints nothing after its own output: its summary closes the output (and says how long).
  if [ "$name" != ctest ]; then
    echo "== test.sh: $name done in $((SECONDS - t0)) s, CPU $(($(children_cpu) - c0)) s" \
         "(at $((SECONDS - started)) s)"
  fi
}

# Halt on the first report, with a symbolized stack (llvm-symbolizer), so the test fails.
asan_options="abort_on_error=1:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1"
asan_options+=":check_initialization_order=1:strict_init_order=1:strict_string_checks=1"
ubsan_options="halt_on_error=1:print_stacktrace=1"
tsan_options="halt_on_error=1:second_deadlock_stack=1"

format() {
  "$root/scripts/check-format.sh"
}

main_build() {
  rm -rf "$build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCCMON_BUILD_TESTS=ON \
    -DCCMON_WERROR=ON
  cmake --build "$build" -j"$jobs"
}

# The libFuzzer targets (line parser, then remote-write decoder), briefly; a longer run:
# tests/fuzz/run_fuzz.sh 600. Started in a session of its own, so that it can be stopped whole.
fuzz_pid=
fuzz_log="$build-fuzz/fuzz.log"
fuzz_start() {
  rm -rf "$build-fuzz"
  mkdir -p "$build-fuzz"
  CCMON_FUZZ_BUILD_DIR="$build-fuzz" CCMON_FUZZ_JOBS="$jobs" CCMON_WERROR=ON \
    setsid bash -c 't0=$SECONDS; "$0" "$1" && rc=0 || rc=$?
                    echo "== test.sh: fuzz ran for $((SECONDS - t0)) s, exit $rc"; exit $rc' \
    "$root/tests/fuzz/run_fuzz.sh" "${CCMON_FUZZ_SECONDS:-30}" >"$fuzz_log" 2>&1 </dev/null &
  fuzz_pid=$!
  echo "test.sh: fuzz runs in the background (output: $fuzz_log)"
}
fuzz_wait() {
  [ -n "$fuzz_pid" ] || return 0
  local rc=0
  wait "$fuzz_pid" || rc=$?
  fuzz_pid=
  cat "$fuzz_log"
  if [ $rc != 0 ]; then
    echo "test.sh: fuzz failed (exit $rc)" >&2
    exit $rc
  fi
}
trap '[ -z "$fuzz_pid" ] || kill -- -"$fuzz_pid" 2>/dev/null || true' EXIT

# sanitizer_tree DIR SANITIZERS TARGET: configures DIR from scratch with clang and
# CCMON_SANITIZE=SANITIZERS, and builds TARGET (a group of test binaries, tests/CMakeLists.txt).
sanitizer_tree() {
  local dir=$1 sanitizers=$2 target=$3
  rm -rf "$dir"
  # -O1: the usual sanitizer trade-off for the libraries (everything at -O0 builds faster but
  # runs the heavy tests 3 to 20 times slower); the test sources, whose build time dominates and
  # whose code is not hot, at -O0 (a third less CPU for the tree, a few seconds more for the
  # tests). -g1: line tables for the stack traces, cheaper than full debug info.
  cmake -S "$root" -B "$dir" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
    -DCCMON_TEST_COMPILE_OPTIONS=-O0 \
    -DCCMON_BUILD_TESTS=ON -DCCMON_WERROR=ON -DCCMON_SANITIZE="$sanitizers" >/dev/null
  cmake --build "$dir" -j"$jobs" --target "$target"
}

asan() {
  sanitizer_tree "$build-asan" address,undefined ccmon_unit_tests
  ASAN_OPTIONS="$asan_options" UBSAN_OPTIONS="$ubsan_options" \
    ctest --test-dir "$build-asan" -L '^unit$' --output-on-failure -j"$jobs"
}

tsan() {
  sanitizer_tree "$build-tsan" thread ccmon_threads_tests
  TSAN_OPTIONS="$tsan_options" \
    ctest --test-dir "$build-tsan" -L '^unit$' -L '^threads$' --output-on-failure -j"$jobs"
}

main_ctest() {
  # Unit and integration tests last, so that their summary closes the output.
  ctest --test-dir "$build" --output-on-failure -j"$jobs"
}

timed install "$root/scripts/install-deps.sh" --test
for j in "$@"; do
  case $j in
    format) timed format format ;;
    build) timed build main_build ;;
    fuzz) fuzz_start ;;
    asan) timed asan asan ;;
    tsan) timed tsan tsan ;;
    ctest)
      if [ -n "$fuzz_pid" ]; then timed "fuzz (wait)" fuzz_wait; fi
      timed ctest main_ctest
      ;;
  esac
done
if [ -n "$fuzz_pid" ]; then
  timed "fuzz (wait)" fuzz_wait
fi
