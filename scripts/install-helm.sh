#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy (no prebuilt download) into a cache outside the repository, keyed by
# version, and prints the binary's path as the last line. Only a fresh machine pays the build (about 2 minutes).
#
#   scripts/install-helm.sh           build when missing, print the path
#   scripts/install-helm.sh --check   exit 0 when cached (printing the path), 1 otherwise
#
# Layout, shared with scripts/testenv: $CACHE/helm-<version>/bin/helm with a .complete stamp, where CACHE is
# ${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}; Go's module and build caches live under $CACHE/go.
# HELM_VERSION overrides the version; its go.mod `go` directive must fit the local Go (GOTOOLCHAIN=local).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
cache="${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}"
peer=install-helm
what="helm $HELM_VERSION"
dir="$cache/helm-$HELM_VERSION"
bin="$dir/bin/helm"
# shellcheck source=SCRIPTDIR/lib/go-peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-peer.sh"
go_peer_begin "${1:-}"

# The same -X flags as helm's Makefile: `helm version` reports the release, and `helm template`/`helm lint` default to
# the Kubernetes version of the client-go helm is built with (not v1.20).
gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")
k8s_minor=$(echo "$client_go" | cut -d. -f2)
[ -n "$k8s_minor" ] || {
  echo "install-helm: cannot read k8s.io/client-go's version from $gomod" >&2
  exit 1
}
ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  ld="$ld -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$work/bin" go install -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
"$work/bin/helm" version --short >&2
go_peer_finish
