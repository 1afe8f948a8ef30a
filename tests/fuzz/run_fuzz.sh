#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan/UBSan in build-fuzz/ and fuzzes the transcript
# line parser for SECONDS (default 60) on a copy of tests/fuzz/corpus, then the remote-write
# request decoder for a third of that (at least 5 s) on a copy of tests/fuzz/corpus_rw, then the
# gateway's write handler as long on another copy.
#   tests/fuzz/run_fuzz.sh [SECONDS]
# Environment: CCMON_FUZZ_BUILD_DIR (default <repo>/build-fuzz), CCMON_FUZZ_JOBS (build -j),
# CCMON_WERROR=ON (warnings are errors, as scripts/test.sh sets it),
# CCMON_FUZZ_ARGS (extra libFuzzer flags), CCMON_FUZZ_KEEP_CORPUS=1 (keep the grown corpus of the
# previous run instead of starting again from the seeds).
# Exits non-zero if the build fails or the fuzzer finds a crash, leak, timeout or failed check;
# the reproducer is written to <build dir>/fuzz-artifacts/.
set -euo pipefail

secs="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
build="${CCMON_FUZZ_BUILD_DIR:-${root}/build-fuzz}"
jobs="${CCMON_FUZZ_JOBS:-$(nproc)}"

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
flags+=" -fsanitize=fuzzer-no-link"

CC=clang CXX=clang++ cmake -S "${root}" -B "${build}" \
  -DCMAKE_BUILD_TYPE=FuzzSan \
  -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="${flags}" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCCMON_FUZZ=ON -DCCMON_BUILD_TESTS=OFF -DCCMON_WERROR="${CCMON_WERROR:-OFF}" >/dev/null
cmake --build "${build}" --target line_parser_fuzz remote_write_fuzz gateway_write_fuzz -j "${jobs}"

corpus="${build}/fuzz-corpus"
artifacts="${build}/fuzz-artifacts"
if [[ "${CCMON_FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then rm -rf "${corpus}"; fi
mkdir -p "${corpus}" "${artifacts}"
cp -n "${here}"/corpus/* "${corpus}/" 2>/dev/null || true

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# shellcheck disable=SC2086  # CCMON_FUZZ_ARGS is a list of flags
"${build}/tests/fuzz/line_parser_fuzz" \
  -max_total_time="${secs}" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  -dict="${here}/line_parser.dict" -print_final_stats=1 \
  -artifact_prefix="${artifacts}/" ${CCMON_FUZZ_ARGS:-} \
  "${corpus}"

rw_secs=$(( secs / 3 > 5 ? secs / 3 : 5 ))
rw_corpus="${build}/fuzz-corpus-rw"
if [[ "${CCMON_FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then rm -rf "${rw_corpus}"; fi
mkdir -p "${rw_corpus}"
cp -n "${here}"/corpus_rw/* "${rw_corpus}/" 2>/dev/null || true
# shellcheck disable=SC2086
"${build}/tests/fuzz/remote_write_fuzz" \
  -max_total_time="${rw_secs}" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="${artifacts}/" ${CCMON_FUZZ_ARGS:-} \
  "${rw_corpus}"

# The gateway's write handler, as long as the decoder, on its own copy of the same seeds.
gw_corpus="${build}/fuzz-corpus-gateway"
if [[ "${CCMON_FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then rm -rf "${gw_corpus}"; fi
mkdir -p "${gw_corpus}"
cp -n "${here}"/corpus_rw/* "${gw_corpus}/" 2>/dev/null || true
# shellcheck disable=SC2086
"${build}/tests/fuzz/gateway_write_fuzz" \
  -max_total_time="${rw_secs}" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="${artifacts}/" ${CCMON_FUZZ_ARGS:-} \
  "${gw_corpus}"
