#!/usr/bin/env bash
# Installs every real peer the test suites need, building only what is missing (seconds when all are cached).
# .ci/run runs it after `npm ci` and before `npm test`; on a developer machine run it once by hand.
#
#   1. the Kubernetes test control plane: kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok,
#      built from the Go module proxy into ${RUNNER_FLEET_CACHE:-~/.cache/runner-fleet} (scripts/testenv/build-peers.sh)
#   2. every other scripts/install-<peer>.sh (helm, ...): each installs one peer, idempotently, and is fast when the
#      peer is already there. Adding a peer means adding such a script; this one picks it up.
#
# Exits non-zero if any peer could not be installed, after trying all of them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

failed=()
step() { # <name> <command...>
  local name=$1 start=$SECONDS
  shift
  echo "== peer: $name"
  if "$@"; then
    echo "== peer: $name ok ($((SECONDS - start)) s)"
  else
    echo "== peer: $name FAILED (exit $?)" >&2
    failed+=("$name")
  fi
}

# The control plane's certificates are issued with openssl.
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step openssl bash -c 'apt-get update -qq && apt-get install -y -qq openssl'
  else
    echo "== peer: openssl is missing (install it with the system package manager)" >&2
    failed+=(openssl)
  fi
fi

step kubernetes-control-plane scripts/testenv/build-peers.sh

# Without a suitable Go, build-peers.sh fetched the pinned toolchain; later installers that build with Go use it too.
if ! command -v go >/dev/null 2>&1; then
  # shellcheck source=SCRIPTDIR/testenv/versions.env
  source scripts/testenv/versions.env
  bootstrap_go=${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}/go-toolchain/golang.org/toolchain@v0.0.1-$GO_BOOTSTRAP.linux-amd64
  if [ -x "$bootstrap_go/bin/go" ]; then export PATH=$bootstrap_go/bin:$PATH GOROOT=$bootstrap_go; fi
fi

for installer in scripts/install-*.sh; do
  [ "$installer" = scripts/install-peers.sh ] && continue
  [ -x "$installer" ] || continue
  name=${installer#scripts/install-}
  # Installers print their result (e.g. a binary path) on stdout; keep the log readable but complete.
  step "${name%.sh}" "$installer"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "install-peers: could not install: ${failed[*]}" >&2
  exit 1
fi
echo "install-peers: all peers installed"
