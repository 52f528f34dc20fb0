#!/usr/bin/env bash
# Builds the test control plane's binaries from the Go module proxy into a cache outside the repository, keyed by
# version, and only those that are missing:
#   $CACHE/k8s-<v>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler}
#   $CACHE/etcd-<v>/bin/etcd
#   $CACHE/kwok-<v>/bin/kwok
# CACHE is ${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}. Go's module and build caches live under $CACHE/go so a
# build never touches (or depends on) the user's own Go caches, and `rm -rf $CACHE` really means "cold". Without a Go
# that fits the pinned releases, the pinned Go toolchain is fetched from the module proxy into $CACHE/go-toolchain.
#
# Usage: build-peers.sh          build what is missing (progress on stdout)
#        build-peers.sh --check  exit 0 when every binary is cached, 1 (listing what is missing) otherwise
#
# When one run builds all three peers from empty Go caches, the wall-clock times are written to
# $CACHE/testenv-build.json; `npm run bench` adopts them into bench/results (the cold build time BENCHMARKS.md
# reports). Installing peers never changes a tracked file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

cache=${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}
k8s_dir=$cache/k8s-$KUBERNETES_VERSION
etcd_dir=$cache/etcd-$ETCD_VERSION
kwok_dir=$cache/kwok-$KWOK_VERSION
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler)

log() { printf '[testenv build] %s\n' "$*"; }
die() {
  printf '[testenv build] ERROR: %s\n' "$*" >&2
  exit 1
}

# A peer counts as cached only once its .complete stamp exists: binaries are built in a scratch directory and moved
# into place afterwards, so an interrupted build never leaves a half-written binary that looks usable.
complete() { [ -f "$1/.complete" ]; }

missing=()
complete "$k8s_dir" || missing+=("kubernetes $KUBERNETES_VERSION")
complete "$etcd_dir" || missing+=("etcd $ETCD_VERSION")
complete "$kwok_dir" || missing+=("kwok $KWOK_VERSION")

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
  printf 'missing: %s\n' "${missing[@]}"
  exit 1
fi
if [ ${#missing[@]} -eq 0 ]; then
  log "all peers cached in $cache"
  exit 0
fi

mkdir -p "$cache"
# Two test files (or a test run and `npm run testenv -- up`) may start a build at once; the second waits for the
# first and then finds everything cached.
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build holds $cache/.build.lock; waiting for it"
  flock 9
fi
# Re-check under the lock.
missing=()
complete "$k8s_dir" || missing+=(kubernetes)
complete "$etcd_dir" || missing+=(etcd)
complete "$kwok_dir" || missing+=(kwok)
[ ${#missing[@]} -gt 0 ] || {
  log "all peers cached in $cache"
  exit 0
}

# The pinned releases need Go >= GO_MIN. Without a suitable Go, fetch the pinned toolchain from the Go module proxy
# (golang.org/toolchain, the module `go` itself downloads toolchains from), checked against GO_BOOTSTRAP_SHA256.
go_fits() {
  command -v go >/dev/null 2>&1 || return 1
  local have
  have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null) || return 1
  have=${have#go}
  [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -1)" = "$GO_MIN" ]
}
bootstrap_go() {
  local arch
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    *) die "no Go >= $GO_MIN here and no pinned toolchain for $(uname -m); install Go $GO_MIN or newer" ;;
  esac
  local mod="golang.org/toolchain@v0.0.1-$GO_BOOTSTRAP.linux-$arch"
  local root=$cache/go-toolchain
  if [ ! -x "$root/$mod/bin/go" ]; then
    local proxy=${GOPROXY:-https://proxy.golang.org}
    proxy=${proxy%%,*}
    [ "$proxy" != direct ] && [ "$proxy" != off ] || proxy=https://proxy.golang.org
    log "no Go >= $GO_MIN found; fetching $mod from $proxy"
    mkdir -p "$root"
    local zip=$root/toolchain.zip
    curl -fsSL --retry 3 -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-$GO_BOOTSTRAP.linux-$arch.zip" ||
      die "could not download the Go toolchain from $proxy"
    echo "$GO_BOOTSTRAP_SHA256  $zip" | sha256sum -c --quiet - || die "Go toolchain checksum mismatch"
    rm -rf "${root:?}/golang.org"
    if command -v unzip >/dev/null 2>&1; then
      unzip -q "$zip" -d "$root"
    else
      python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$root"
      chmod -R a+x "$root/$mod/bin" "$root/$mod/pkg/tool"
    fi
    rm -f "$zip"
  fi
  export PATH=$root/$mod/bin:$PATH
  export GOROOT=$root/$mod
}
go_fits || bootstrap_go
go_fits || die "Go $(go env GOVERSION 2>/dev/null) is older than the $GO_MIN the pinned releases need"

export GOTOOLCHAIN=local
export GOMODCACHE=$cache/go/mod
export GOCACHE=$cache/go/build
export GOFLAGS="-modcacherw -buildvcs=false -trimpath"
export CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"
go_caches_cold=false
if [ -z "$(ls -A "$GOMODCACHE")" ] && [ -z "$(ls -A "$GOCACHE")" ]; then go_caches_cold=true; fi
# The machine is shared: compile at low priority so interactive work and other test runs stay responsive.
run() { nice -n 10 "$@"; }

# `go build -v` names every package it compiles: thousands of lines for Kubernetes. Print a heartbeat every 200
# packages and pass anything that is not a bare package path (errors, warnings) straight through.
progress() {
  awk -v label="$1" '
    /^[A-Za-z0-9._~\/-]+$/ { n++; if (n % 200 == 0) { printf "[testenv build] %s: %d packages compiled\n", label, n; fflush() } next }
    { print; fflush() }
    END { printf "[testenv build] %s: %d packages compiled in total\n", label, n }'
}

scratch=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

install_into() { # <scratch bin dir> <final dir>
  rm -rf "$2"
  mkdir -p "$2"
  mv "$1" "$2/bin"
  touch "$2/.complete"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION
  # Staging modules are published as v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>.
  local staging_v="v0.${v#v1.}"
  local work=$scratch/k8s
  mkdir -p "$work"
  cd "$work"
  log "kubernetes $v: resolving k8s.io/kubernetes from the module proxy"
  go mod init runner-fleet.test/k8s-peers >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$gomod" ] || die "could not download the go.mod of k8s.io/kubernetes@$v"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and points them at ./staging/src with replace
  # directives, which only apply inside its own repository (golang/go#44840, kubernetes/kubernetes#79384). This
  # wrapper module replaces each of them with its published release instead. The list comes from that go.mod.
  local staging
  staging=$(awk '/=>[[:space:]]*\.\/staging\/src\// { print ($1 == "replace") ? $2 : $1 }' "$gomod" | sort -u)
  [ -n "$staging" ] || die "found no staging replace directives in $gomod"
  local edits=("-require=k8s.io/kubernetes@$v") m
  for m in $staging; do edits+=("-replace=$m=$m@$staging_v"); done
  go mod edit "${edits[@]}"
  log "kubernetes $v: $(wc -w <<<"$staging") staging modules replaced with their $staging_v releases; downloading modules"
  local pkgs=() b
  for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  local p
  for p in "${pkgs[@]}"; do run go get "$p@$v"; done
  # The same version stamps Kubernetes' own build (hack/lib/version.sh) sets, so /version reports the release.
  local minor=${v#v1.}
  minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "kubernetes $v: compiling ${k8s_bins[*]} (the long part: about 2,500 packages)"
  run go build -v -ldflags "$ld" -o "$work/bin/" "${pkgs[@]}" 2>&1 | progress kubernetes
  for b in "${k8s_bins[@]}"; do [ -x "$work/bin/$b" ] || die "kubernetes build produced no $b"; done
  install_into "$work/bin" "$k8s_dir"
  cp "$work/go.mod" "$work/go.sum" "$k8s_dir/"
  cd "$repo"
}

build_etcd() {
  local v=$ETCD_VERSION
  local work=$scratch/etcd
  mkdir -p "$work"
  cd "$work"
  # etcd's server module also carries replace directives, so `go install ...@version` refuses it; a wrapper
  # module that requires it builds it as published.
  go mod init runner-fleet.test/etcd-peer >/dev/null 2>&1
  log "etcd $v: downloading modules"
  run go get "go.etcd.io/etcd/server/v3@$v"
  log "etcd $v: compiling"
  run go build -v -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3 2>&1 | progress etcd
  [ -x "$work/bin/etcd" ] || die "etcd build produced no binary"
  install_into "$work/bin" "$etcd_dir"
  cp "$work/go.mod" "$work/go.sum" "$etcd_dir/"
  cd "$repo"
}

build_kwok() {
  local v=$KWOK_VERSION
  local work=$scratch/kwok
  mkdir -p "$work/bin"
  log "kwok $v: downloading modules and compiling"
  GOBIN=$work/bin run go install -v -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$v" 2>&1 | progress kwok
  [ -x "$work/bin/kwok" ] || die "kwok build produced no binary"
  install_into "$work/bin" "$kwok_dir"
}

log "building ${missing[*]} into $cache with $(go version | cut -d' ' -f3) (Go caches cold: $go_caches_cold)"
total_start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A took=()
for peer in "${missing[@]}"; do
  start=$SECONDS
  "build_$peer"
  took[$peer]=$((SECONDS - start))
  log "$peer: built in $((took[$peer] / 60)) min $((took[$peer] % 60)) s"
done
total=$((SECONDS - total_start))
# CPU seconds (user + system) of everything this script ran: unlike wall time, not inflated by other work.
# `times` must run in this shell, not in a pipeline's subshell (which has no children), hence the file.
times >"$scratch/times"
cpu=$(tail -1 "$scratch/times" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } printf "%d", t }')
log "done in $((total / 60)) min $((total % 60)) s (CPU time $((cpu / 60)) min $((cpu % 60)) s)"

if [ "$go_caches_cold" = true ] && [ ${#missing[@]} -eq 3 ]; then
  if [ -x "$repo/node_modules/.bin/tsx" ]; then
    "$repo/node_modules/.bin/tsx" "$here/record-build.ts" \
      "${took[kubernetes]}" "${took[etcd]}" "${took[kwok]}" "$total" "$KUBERNETES_VERSION" "$ETCD_VERSION" \
      "$KWOK_VERSION" "$(go version | cut -d' ' -f3)" "$cpu" "$load_start"
  else
    log "node_modules/.bin/tsx is missing; the cold build time ($total s) was not recorded"
  fi
fi
