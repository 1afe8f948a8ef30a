#!/usr/bin/env bash
# Copies the Prometheus rule files (dashboards/rules/*.yml) into the Helm chart
# (helm/ccmon-gateway/files/rules/), which Helm can only read inside the chart, and removes copies
# whose source is gone. Run it after changing dashboards/rules; the deploy test
# (tests/deploy/chart_test.py) fails while the two differ.
#   scripts/sync-chart-rules.sh [--check]     --check: change nothing, exit 1 when they differ
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/dashboards/rules"
dst="$root/helm/ccmon-gateway/files/rules"
check=0
if [ "${1:-}" = "--check" ]; then check=1; elif [ $# -gt 0 ]; then
  echo "usage: sync-chart-rules.sh [--check]" >&2
  exit 2
fi
shopt -s nullglob
sources=("$src"/*.yml)
if [ ${#sources[@]} -eq 0 ]; then
  echo "sync-chart-rules.sh: no rule files in $src" >&2
  exit 1
fi
differs=0
for f in "${sources[@]}"; do
  if ! cmp -s "$f" "$dst/$(basename "$f")"; then
    differs=1
    echo "differs: $(basename "$f")"
    if [ $check -eq 0 ]; then mkdir -p "$dst" && cp "$f" "$dst/"; fi
  fi
done
for f in "$dst"/*.yml; do
  if [ ! -e "$src/$(basename "$f")" ]; then
    differs=1
    echo "stale: $(basename "$f")"
    if [ $check -eq 0 ]; then rm "$f"; fi
  fi
done
if [ $check -eq 1 ] && [ $differs -eq 1 ]; then
  echo "sync-chart-rules.sh: helm/ccmon-gateway/files/rules differs from dashboards/rules;" \
       "run scripts/sync-chart-rules.sh" >&2
  exit 1
fi
exit 0
