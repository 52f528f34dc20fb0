#!/usr/bin/env bash
# Installs the AWS test peers (moto in server mode, cfn-lint, the AWS CLI) from PyPI into a Python virtual environment
# outside the repository, keyed by the pinned requirements, and prints its bin/ directory as the last line.
#
#   scripts/install-aws-peers.sh           install when missing, print the bin directory
#   scripts/install-aws-peers.sh --check   exit 0 when installed (printing the directory), 1 otherwise
#
# Layout: $CACHE/aws-peers-<hash of scripts/aws-peers/requirements.txt>/ with a .complete stamp, where CACHE is
# ${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}. A changed pin makes a new environment; the old one is left alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

requirements=scripts/aws-peers/requirements.txt
cache="${RUNNER_FLEET_CACHE:-$HOME/.cache/runner-fleet}"
key=$(sha256sum "$requirements" | cut -c1-12)
dir="$cache/aws-peers-$key"

if [ -f "$dir/.complete" ] && [ -x "$dir/bin/moto_server" ]; then
  echo "$dir/bin"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "the AWS test peers (moto, cfn-lint, aws CLI) are not installed; run scripts/install-aws-peers.sh" >&2
  exit 1
fi
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || {
  echo "install-aws-peers: $python is not installed; moto needs Python 3.9 or later" >&2
  exit 1
}

mkdir -p "$cache"
# Two test files may start the install at once: the second waits, then finds it done.
exec 9>"$cache/.aws-peers.lock"
flock 9
if [ -f "$dir/.complete" ] && [ -x "$dir/bin/moto_server" ]; then
  echo "$dir/bin"
  exit 0
fi
start=$(date +%s)
echo "install-aws-peers: creating $dir ($($python --version 2>&1)); about a minute" >&2
rm -rf "$dir"
"$python" -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
"$dir/bin/moto_server" --help >/dev/null
"$dir/bin/cfn-lint" --version >&2
"$dir/bin/aws" --version >&2
touch "$dir/.complete"
echo "install-aws-peers: installed in $(($(date +%s) - start)) s" >&2
echo "$dir/bin"
