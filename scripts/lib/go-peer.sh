# shellcheck shell=bash disable=SC2154 # the caller sets peer, what, dir, bin and cache (below)
# Shared steps of the scripts that build one test peer from the Go module proxy into the cache (install-helm.sh,
# install-pod-identity-webhook.sh): answer at once when the peer is cached, build under a lock otherwise, and move the
# result into place with its .complete stamp. Sourced, not run.
#
# The caller sets, before go_peer_begin:
#   peer   the script's name in messages (install-helm)
#   what   what is built, for messages (helm v3.22.0)
#   dir    $CACHE/<peer>-<version>, where bin/ and the .complete stamp go
#   bin    the binary's path under $dir/bin
#   cache  ${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}; Go's module and build caches live under $cache/go

# Prints the binary's path and exits when cached; exits 1 on --check when not; otherwise takes the build lock,
# sets Go's environment and leaves a fresh work directory in $work (removed on exit).
go_peer_begin() { # <the script's first argument>
  if [ -f "$dir/.complete" ] && [ -x "$bin" ]; then
    echo "$bin"
    exit 0
  fi
  if [ "${1:-}" = "--check" ]; then
    echo "$what is not built; run scripts/$peer.sh" >&2
    exit 1
  fi
  command -v go >/dev/null 2>&1 || {
    echo "$peer: Go is not installed; cannot build $what" >&2
    exit 1
  }
  mkdir -p "$cache"
  # Two test files may start the build at once: the second waits, then finds the binary cached.
  exec 9>"$cache/.${peer#install-}-build.lock"
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
  work="$(mktemp -d "$cache/.${peer#install-}-build.XXXXXX")"
  # shellcheck disable=SC2064 # $work is fixed now
  trap "rm -rf '$work'" EXIT
  go_peer_started=$(date +%s)
  echo "$peer: building $what with $(go version)" >&2
}

# Moves $work/bin into $dir, stamps it complete and prints the binary's path (the last line of output).
go_peer_finish() {
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$work/bin" "$dir/bin"
  touch "$dir/.complete"
  echo "$peer: built in $(($(date +%s) - go_peer_started)) s" >&2
  echo "$bin"
}
