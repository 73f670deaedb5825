#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium from Debian driven by Selenium
# (scripts/dashboard_test.py). Installs chromium, chromium-driver and python3-selenium when missing
# (needs root or sudo), builds hosttwin unless HOSTTWIN points at a binary.
#
#   scripts/dashboard-test.sh [--shots DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' 2>/dev/null || need+=(python3-selenium)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing ${need[*]} from Debian"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -z "${HOSTTWIN:-}" ]; then
    swift build --product hosttwin
    HOSTTWIN=$PWD/.build/debug/hosttwin
fi
exec /usr/bin/python3 scripts/dashboard_test.py --hosttwin "$HOSTTWIN" "$@"
