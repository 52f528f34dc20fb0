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
peer=install-pod-identity-webhook
what="$MODULE $VERSION"
dir="$cache/pod-identity-webhook-$VERSION"
bin="$dir/bin/amazon-eks-pod-identity-webhook"
# shellcheck source=SCRIPTDIR/lib/go-peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-peer.sh"
go_peer_begin "${1:-}"

# The module's main package is its root; its go.mod has no replace directives, so `go install module@version` works.
# -X sets what `--version` prints (the Makefile sets the same variable).
GOBIN="$work/bin" nice go install -ldflags "-s -w -X main.webhookVersion=$VERSION" "$MODULE@$VERSION" >&2
"$work/bin/amazon-eks-pod-identity-webhook" --version >&2
go_peer_finish
