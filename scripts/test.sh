#!/usr/bin/env bash
# The test command of the README: builds and runs the whole test suite.
# Tests that need ../shared/data (node_exporter fixtures) skip with a message when it is absent;
# the disk-full test needs root (it mounts a small tmpfs) and skips without it. The conformance
# step needs root or sudo to install Prometheus when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { echo "== $1 ($(date -u +%H:%M:%S), $SECONDS s so far)"; }
# The build links zlib, zstd, lz4 and snappy (scripts/build-deps.sh installs them when missing); the TLS
# tests make a throwaway CA with openssl; the remote_write tests send to Prometheus and VictoriaMetrics.
extra="openssl openssl
prometheus prometheus
victoria-metrics victoria-metrics"
source scripts/build-deps.sh
stage "build"
swift build --build-tests
# The PostgreSQL backend's tests run against a private cluster on loopback (Debian's postgresql, installed
# when missing), stopped when this script ends.
stage "PostgreSQL cluster"
source scripts/postgres-lib.sh
pg_root=$(mktemp -d /tmp/hosttwin-pg.XXXXXX)
chmod 755 "$pg_root"
trap 'stop_postgres "$pg_root/data"; rm -rf "$pg_root"' EXIT
start_postgres "$pg_root/data" "$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export HOSTTWIN_TEST_POSTGRES=$PG_URL
echo "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') at $PG_URL"
stage "unit and integration tests"
# The sockets collector's live tests read TCP changes from the kernel's tracepoint (root; skipped without).
# tracefs is not mounted for them: where it is not (this VM), the twin reads the tracepoint's files in a
# private mount namespace, and the tests go through that.
swift test --skip-build
# The package's static-runtime build takes ten minutes on 2 cores; the stages below mostly wait on real
# time (live twins collecting, network hops), so it runs beside them at the lowest priority and the
# package stage only waits for it (CI 48 -> under 40 minutes).
package_build=""
if [ "$(id -u)" = 0 ] && command -v dpkg-deb >/dev/null; then
    stage "package build started in the background (nice 19)"
    (nice -n 19 swift build -c debug --static-swift-stdlib --product hosttwin --scratch-path .build-static > .build/package-build.log 2>&1) &
    package_build=$!
fi
# PromQL against the real Prometheus 2.42 (installed from Debian when missing): every query of
# conformance/queries.txt on two minutes of this machine's own data (seconds; `--ci` runs the tagged subset).
# The same data also goes into a twin whose tables are in the PostgreSQL cluster, and is compared again.
stage "PromQL conformance (embedded store and PostgreSQL)"
fresh_database conformance
HOSTTWIN=$PWD/.build/debug/hosttwin scripts/conformance.sh --store "$FRESH_URL"
# Rules against Prometheus 2.42's promtool: the unit-test files of conformance/rules through both tools, the
# same verdict from each; then alerts sent to a real Alertmanager 0.25 (installed from Debian when missing).
stage "rules against promtool and Alertmanager"
HOSTTWIN=$PWD/.build/debug/hosttwin scripts/rules-test.sh
HOSTTWIN=$PWD/.build/debug/hosttwin scripts/alertmanager-test.sh
# Prometheus remote_write both ways with the real peers from Debian: a twin sending to Prometheus 2.42 and
# VictoriaMetrics 1.79 (both down 20 s in between; every sample must arrive), and a Prometheus scraping
# node_exporter writing into a hub whose answers must equal Prometheus' own.
stage "remote_write with Prometheus and VictoriaMetrics"
HOSTTWIN=$PWD/.build/debug/hosttwin scripts/remote-write-test.sh --short
# Grafana's Node Exporter Full on a live twin beside node_exporter 1.5 + Prometheus 2.42 (both from Debian)
# on this host: every query with data under node_exporter must have data under HostTwin (needs ../shared).
stage "Grafana Node Exporter Full"
HOSTTWIN=$PWD/.build/debug/hosttwin scripts/grafana-test.sh 150
# The dashboard in headless Chromium (installed from Debian when missing): pages, live data, time travel.
stage "dashboard in Chromium"
HOSTTWIN=$PWD/.build/debug/hosttwin scripts/dashboard-test.sh
# The fleet on real network hops (root only: network namespaces): three datacenters, a global hub and an
# observer with TLS and tokens; loss, rate limits, stalls, kills and injected faults; exact digests at every
# tier. The short form (a few minutes); the full form is run for the figures (docs/BENCHMARKS.md).
stage "fleet on network namespaces"
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns list >/dev/null 2>&1; then
    HOSTTWIN_BIN=$PWD/.build/debug/hosttwin scripts/fleet-test.sh --short
else
    echo "skipped: network namespaces need root and iproute2"
fi
# The early warnings on this host: a file system filled on a loop mount, a crash loop, CPU pressure with
# stress-ng (root only: a loop mount and a package install); one run each, the figures come from the full form.
stage "early-warning scenarios"
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
    HOSTTWIN=$PWD/.build/debug/hosttwin scripts/scenarios-test.sh
else
    echo "skipped: the scenarios need root and losetup"
fi
# The package as an operator installs it: a static-stdlib binary and a .deb, installed here and run as its
# own user with the build tree out of reach (root only: it installs a package). A debug build: what is
# tested is the packaging (static runtime, user, modes, units); a release build took half of CI's time.
stage "package"
if [ -n "$package_build" ]; then
    wait "$package_build" || { cat .build/package-build.log; echo "the package build failed"; exit 1; }
    stage "package build done"
    scripts/package.sh --debug
    scripts/package-test.sh
else
    echo "skipped: installing the package needs root and dpkg"
fi
stage "done"
