#!/usr/bin/env bash
# The test command of the README: builds and runs the whole test suite.
# Tests that need ../shared/data (node_exporter fixtures) skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build
