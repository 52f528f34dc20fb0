#!/usr/bin/env bash
# Builds amazon-eks-pod-identity-webhook (the mutating admission webhook EKS runs for IRSA and Pod Identity) from the
# Go module proxy (no prebuilt download) into a cache outside the repository, keyed by version, and prints the
# binary's path as the last line. The identity suite runs it as a real webhook of the test control plane.
#
#   scripts/install-pod-identity-webhook.sh           build when missing, print the path
#   scripts/install-pod-identity-webhook.sh --check   exit 0 when cached (printing the path), 1 otherwise
#
# Layout, shared with scripts/testenv and install-helm.sh: $CACHE/pod-identity-webhook-<version>/bin/
# amazon-eks-pod-identity-webhook with a .complete stamp, where CACHE is ${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet};
# Go's module and build caches live under $CACHE/go. POD_IDENTITY_WEBHOOK_VERSION overrides the version; its go.mod
# `go` directive must fit the local Go (GOTOOLCHAIN=local).
set -euo pipefail

VERSION="${POD_IDENTITY_WEBHOOK_VERSION:-v0.6.17}"
MODULE=github.com/aws/amazon-eks-pod-identity-webhook
cache="${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}"
dir="$cache/pod-identity-webhook-$VERSION"
bin="$dir/bin/amazon-eks-pod-identity-webhook"

if [ -f "$dir/.complete" ] && [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "amazon-eks-pod-identity-webhook $VERSION is not built; run scripts/install-pod-identity-webhook.sh" >&2
  exit 1
fi
command -v go >/dev/null 2>&1 || {
  echo "install-pod-identity-webhook: Go is not installed; cannot build $MODULE $VERSION" >&2
  exit 1
}

mkdir -p "$cache"
# Two test files may start the build at once: the second waits, then finds the binary cached.
exec 9>"$cache/.pod-identity-webhook-build.lock"
flock 9
if [ -f "$dir/.complete" ] && [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

export GOTOOLCHAIN=local
export GOMODCACHE="$cache/go/mod"
export GOCACHE="$cache/go/build"
export GOFLAGS="-modcacherw -buildvcs=false -trimpath"
export CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"

work="$(mktemp -d "$cache/.pod-identity-webhook-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "install-pod-identity-webhook: building $MODULE $VERSION with $(go version)" >&2
start=$(date +%s)
# The module's main package is its root; its go.mod has no replace directives, so `go install module@version` works.
# -X sets what `--version` prints (the Makefile sets the same variable).
GOBIN="$work/bin" nice go install -ldflags "-s -w -X main.webhookVersion=$VERSION" "$MODULE@$VERSION" >&2
"$work/bin/amazon-eks-pod-identity-webhook" --version >&2
rm -rf "$dir"
mkdir -p "$dir"
mv "$work/bin" "$dir/bin"
touch "$dir/.complete"
echo "install-pod-identity-webhook: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
