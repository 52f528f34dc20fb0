#!/usr/bin/env bash
# Asks the Go module proxy which peer versions fit this machine's Go (GOTOOLCHAIN=local) and compares them with
# versions.env:
#   Kubernetes: the newest release (no pre-releases) whose go.mod `go` directive is <= the local Go version;
#   etcd:       the go.etcd.io/etcd/server/v3 (else client/v3) version that release's go.mod requires;
#   kwok:       the newest sigs.k8s.io/kwok tag whose `go` directive fits.
# Reads go.mod files only (small downloads); changes nothing. Exit 1 when versions.env differs from the result.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"
export GOTOOLCHAIN=local
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init pick >/dev/null 2>&1

local_go=$(go env GOVERSION)
local_go=${local_go#go}

gomod_of() { go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'; }
go_directive() { awk '$1 == "go" { print $2; exit }' "$1"; }
fits() { [ "$(printf '%s\n%s\n' "$1" "$local_go" | sort -V | head -1)" = "$1" ]; }

newest_fitting() { # <module>: newest stable version whose go directive fits
  local v mod
  for v in $(go list -m -versions "$1" | tr ' ' '\n' | tail -n +2 | grep -Ev -- '-(alpha|beta|rc)' | sort -rV); do
    mod=$(gomod_of "$1" "$v")
    if fits "$(go_directive "$mod")"; then
      echo "$v"
      return 0
    fi
  done
  return 1
}

k8s=$(newest_fitting k8s.io/kubernetes)
k8s_mod=$(gomod_of k8s.io/kubernetes "$k8s")
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$k8s_mod")
[ -n "$etcd" ] || etcd=$(awk '$1 == "go.etcd.io/etcd/client/v3" { print $2; exit }' "$k8s_mod")
kwok=$(newest_fitting sigs.k8s.io/kwok)

echo "local Go:   $local_go"
echo "kubernetes: $k8s (go $(go_directive "$k8s_mod"))   versions.env: $KUBERNETES_VERSION"
echo "etcd:       $etcd   versions.env: $ETCD_VERSION"
echo "kwok:       $kwok (go $(go_directive "$(gomod_of sigs.k8s.io/kwok "$kwok")"))   versions.env: $KWOK_VERSION"
if [ "$k8s" = "$KUBERNETES_VERSION" ] && [ "$etcd" = "$ETCD_VERSION" ] && [ "$kwok" = "$KWOK_VERSION" ]; then
  echo "versions.env is current"
else
  echo "versions.env differs"
  exit 1
fi
