#!/usr/bin/env bash
# The long crash test: 100 `kill -9` of `hosttwin run` and 100 of `hosttwin import` at random moments
# (override with ROUNDS=N), restarting each time, then the store is checked (see Tests/HostTwinTests/CrashTests.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
HOSTTWIN_CRASH_ROUNDS="${ROUNDS:-100}" swift test --skip-build --filter CrashTests
