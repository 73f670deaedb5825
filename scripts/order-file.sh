#!/usr/bin/env bash
# The code a running twin executes, as a linker symbol-ordering file (docs/OBSERVATION.md, "Memory of `run`"):
#
#   scripts/order-file.sh BINARY OUT [MINUTES]
#
# Runs BINARY's `run` on this host at the defaults with a fresh data directory, lets it start, samples it
# with perf (user and kernel stacks, frame pointers) for MINUTES (default 15) of steady running, and writes
# to OUT every function of BINARY seen running or on a call stack (scripts/order_file.py). BINARY must be
# built with each function in its own section (scripts/package.sh does so) for the ordering to move single
# functions. Needs root (perf on another process) and perf (Debian: linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prometheus-lib.sh # free_port
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
bin=$(realpath "$1")
out=$2
minutes=${3:-15}
command -v perf >/dev/null || { echo "perf is needed (Debian: linux-perf)" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(free_port)
"$bin" run --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/run.log" 2>&1 &
pid=$!
start=$SECONDS
until curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/run.log" >&2; echo "the twin stopped" >&2; exit 1; }
    [ $((SECONDS - start)) -lt 120 ] || { echo "no answer on :$port after 2 minutes" >&2; exit 1; }
    sleep 1
done
echo "serving after $((SECONDS - start)) s; sampling from its second minute for $minutes minutes" >&2
sleep 60
perf record -q -F 20000 -g -p "$pid" -o "$work/perf.data" -- sleep $((minutes * 60)) 2>&1 | grep -v "^\[" >&2 || true
# The Swift runtime's static libraries: what of them cannot be moved alone is left out of the order.
libdir=$(dirname "$(realpath "$(command -v swiftc)")")/../lib/swift_static/linux
perf script -F ip,sym,dso --no-demangle -i "$work/perf.data" 2>/dev/null | python3 scripts/order_file.py "$bin" "$libdir" > "$work/order"
mv "$work/order" "$out" # a failed profile leaves the last order in place
echo "$(wc -l < "$out") functions in $out" >&2
