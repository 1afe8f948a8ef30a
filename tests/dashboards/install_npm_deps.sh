#!/usr/bin/env bash
# Installs the dashboard checks' pinned npm packages (package.json + package-lock.json here) and
# validate_dashboards.mjs into DIR (a directory in the build tree), once: a later run with the
# same lock file and script finds the stamp and does nothing. Needs node and npm
# (scripts/install-deps.sh --test) and the npm registry. Any failure exits 1 — never a skip: a
# test that cannot install its validator has not validated anything.
#   install_npm_deps.sh DIR
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: install_npm_deps.sh DIR" >&2
  exit 2
fi
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$1"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "install_npm_deps.sh: $tool not found (scripts/install-deps.sh --test installs it)" >&2
    exit 1
  fi
done
mkdir -p "$dest"
stamp="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
cp "$src/validate_dashboards.mjs" "$dest/"
if [ -f "$dest/.npm-installed" ] && [ "$(cat "$dest/.npm-installed")" = "$stamp" ] &&
   [ -d "$dest/node_modules/@grafana/schema" ]; then
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
rm -f "$dest/.npm-installed"
# `npm ci` installs exactly the lock file's versions (integrity-checked) or fails.
if ! (cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); then
  echo "install_npm_deps.sh: npm ci failed in $dest (no network to the npm registry?)" >&2
  exit 1
fi
echo "$stamp" > "$dest/.npm-installed"
