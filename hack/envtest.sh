#!/usr/bin/env bash
# Prints a directory holding `kube-apiserver` and `etcd` for the integration tests,
# provisioning it first if needed. Idempotent: a second run only prints the path.
#
#   1. KUBEBUILDER_ASSETS naming a directory with both binaries (what setup-envtest
#      fills) wins.
#   2. Otherwise, on Debian/Ubuntu, build kube-apiserver v1.20.2 from Debian's
#      `kubernetes` source package and take etcd from `etcd-server`; cache both under
#      ${XDG_CACHE_HOME:-~/.cache}/tfdrift/envtest/v1.20.2/.
#   3. Otherwise fail, saying how to set KUBEBUILDER_ASSETS.
#
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

VERSION=v1.20.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tfdrift/envtest/$VERSION"

log() { printf 'envtest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

has_both() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]]; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_both "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold executable kube-apiserver and etcd"
fi

if has_both "$CACHE"; then
  echo "$CACHE"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  die "no cached binaries in $CACHE and no apt-get to build them.
  Install setup-envtest (go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest)
  and run: export KUBEBUILDER_ASSETS=\$(setup-envtest use -p path 1.30.x)"
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "need root or sudo to apt-get install build dependencies"
  SUDO=sudo
fi

mkdir -p "$CACHE"
# One provisioner at a time: parallel test binaries may all call us on a cold cache.
exec 9>"$CACHE.lock"
flock 9
if has_both "$CACHE"; then
  echo "$CACHE"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding a deb-src entry for bookworm"
  # deb822 with the same Signed-By as Debian's own entry: apt refuses two entries for
  # one URI/suite that disagree on it.
  $SUDO tee /etc/apt/sources.list.d/tfdrift-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
log "installing etcd-server golang-1.19-go rsync dpkg-dev"
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends etcd-server golang-1.19-go rsync dpkg-dev make >&2

ETCD_BIN=$(command -v etcd || true)
[[ -n "$ETCD_BIN" ]] || ETCD_BIN=/usr/bin/etcd
[[ -x "$ETCD_BIN" ]] || die "etcd-server installed but no etcd binary found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tfdrift-envtest-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "fetching the kubernetes source package into $WORK"
(cd "$WORK" && apt-get source --download-only -qq kubernetes >&2)
ORIG=$(ls "$WORK"/kubernetes_*.orig.tar.* 2>/dev/null | head -n1)
[[ -n "$ORIG" ]] || die "apt-get source kubernetes gave no orig tarball"
mkdir -p "$WORK/src"
tar -xf "$ORIG" -C "$WORK/src" --strip-components=1
[[ -d "$WORK/src/vendor" ]] || die "the kubernetes orig tarball has no vendor/ tree"

log "building kube-apiserver $VERSION (takes a few minutes)"
(
  cd "$WORK/src"
  export PATH="/usr/lib/go-1.19/bin:$PATH" GO111MODULE=off GOFLAGS= GOCACHE="$WORK/gocache"
  make WHAT=cmd/kube-apiserver KUBE_BUILD_PLATFORMS=linux/amd64 \
    KUBE_GIT_VERSION=$VERSION KUBE_GIT_TREE_STATE=clean >&2
)
BIN=$(find "$WORK/src/_output" -type f -name kube-apiserver -perm -u+x | head -n1)
[[ -n "$BIN" ]] || die "build finished without a kube-apiserver binary"
install -m 0755 "$BIN" "$CACHE/kube-apiserver.tmp"
install -m 0755 "$ETCD_BIN" "$CACHE/etcd.tmp"
mv "$CACHE/etcd.tmp" "$CACHE/etcd"
mv "$CACHE/kube-apiserver.tmp" "$CACHE/kube-apiserver"
log "cached in $CACHE"
echo "$CACHE"
