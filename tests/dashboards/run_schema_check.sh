#!/usr/bin/env bash
# CTest dashboards.schema: installs the pinned npm packages into NPM_DIR (once; see
# install_npm_deps.sh), then validates every dashboard against the JSON Schema generated from
# @grafana/schema's Dashboard type, and checks that a legacy dashboard is refused (so the schema
# is not one that accepts anything). Any failure, npm's included, fails the test.
#   run_schema_check.sh NPM_DIR DASHBOARD.json...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
npm_dir="$1"
shift
"$here/install_npm_deps.sh" "$npm_dir"
node "$npm_dir/validate_dashboards.mjs" --schema-out "$npm_dir/dashboard.schema.json" "$@"
set +e
out="$(node "$npm_dir/validate_dashboards.mjs" "$here/invalid/legacy.json")"
rc=$?
set -e
echo "$out"
if [ $rc -ne 1 ] || ! grep -q '^INVALID' <<<"$out"; then
  echo "run_schema_check.sh: the legacy dashboard was not refused (exit $rc)" >&2
  exit 1
fi
echo "dashboards.schema: ok (the legacy dashboard is refused as expected)"
