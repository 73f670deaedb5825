#!/usr/bin/env bash
# The main command of the README: installs the system libraries the build needs when they are missing,
# builds a release binary and runs `hosttwin run` on this host (arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
exec swift run -c release hosttwin run "$@"
