#!/usr/bin/env bash
# Prints a directory holding `kube-apiserver` and `etcd` for the integration tests,
# provisioning it first if needed. Idempotent: a second run only prints the path.
#
#   1. KUBEBUILDER_ASSETS naming a directory with both binaries (what setup-envtest
#      fills) wins.
#   2. Otherwise, on Debian/Ubuntu, build kube-apiserver v1.20.2 from Debian's
#      `kubernetes` source package with the Go v1.20 was released with (1.15, Debian
#      bullseye's golang-1.15-go + golang-1.15-src, downloaded and unpacked, not
#      installed: built with bookworm's Go 1.19 the server crashes on the first
#      custom-resource write), and take etcd from `etcd-server`; cache both under
#      ${XDG_CACHE_HOME:-~/.cache}/tfdrift/envtest/v1.20.2-go1.15/.
#   3. Otherwise fail, saying how to set KUBEBUILDER_ASSETS.
#
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

VERSION=v1.20.2
GO_MINOR=1.15
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tfdrift/envtest/$VERSION-go$GO_MINOR"

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
log "installing etcd-server rsync dpkg-dev make"
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends etcd-server rsync dpkg-dev make >&2

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

# Go 1.15 from bullseye, through an apt configuration of its own (the system's sources and
# lists stay untouched), unpacked into the build directory.
log "downloading golang-$GO_MINOR-go and golang-$GO_MINOR-src from Debian bullseye"
APT="$WORK/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$WORK/debs" "$WORK/go"
for mirror in http://deb.debian.org/debian http://archive.debian.org/debian; do
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bullseye main\n' \
    "$mirror" >"$APT/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Debug::NoLocking=1)
  if apt-get "${apt_opts[@]}" update -qq >&2 &&
    (cd "$WORK/debs" && apt-get "${apt_opts[@]}" download -qq \
      "golang-$GO_MINOR-go" "golang-$GO_MINOR-src" >&2); then
    break
  fi
  log "bullseye from $mirror failed; trying the next mirror"
done
for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$WORK/go"; done
GOROOT="$WORK/go/usr/lib/go-$GO_MINOR"
[[ -x "$GOROOT/bin/go" ]] || die "no go binary in the downloaded golang-$GO_MINOR-go"
[[ -d "$GOROOT/src/runtime" ]] || die "no standard library in the downloaded golang-$GO_MINOR-src"
log "building kube-apiserver $VERSION with $("$GOROOT/bin/go" version) (takes a few minutes)"
(
  cd "$WORK/src"
  export GOROOT PATH="$GOROOT/bin:$PATH" GO111MODULE=off GOFLAGS= GOCACHE="$WORK/gocache"
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
