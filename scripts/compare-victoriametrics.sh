#!/usr/bin/env bash
# Side by side with VictoriaMetrics: the same real samples imported into HostTwin and into
# VictoriaMetrics (Debian's victoria-metrics package), disk bytes compared after both flush.
#
#   scripts/compare-victoriametrics.sh DATA_DIR [FROM] [TO]
#
# DATA_DIR is a HostTwin data directory with this host's own data (e.g. after an hour of `hosttwin run`);
# FROM/TO default to the last hour. Needs a release build (swift build -c release) and
# `apt-get install -y victoria-metrics`.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: $0 DATA_DIR [FROM] [TO]}
FROM=${2:--1h}
TO=${3:-now}
BIN=.build/release/hosttwin
VM=${VM:-/usr/bin/victoria-metrics}
[ -x "$BIN" ] || { echo "build first: swift build -c release" >&2; exit 1; }
[ -x "$VM" ] || { echo "install VictoriaMetrics first: apt-get install -y victoria-metrics" >&2; exit 1; }
WORK=$(mktemp -d /tmp/hosttwin-vs-vm.XXXXXX)
trap 'kill $VMPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
VMPID=

"$BIN" export --data-dir "$SRC" --from "$FROM" --to "$TO" > "$WORK/samples.prom"
LINES=$(grep -vc '^#' "$WORK/samples.prom" || true)
echo "exported $LINES samples ($(du -b "$WORK/samples.prom" | cut -f1) bytes of text) from $SRC, $FROM to $TO"

# HostTwin: import, which seals and compacts before it returns.
"$BIN" import "$WORK/samples.prom" --data-dir "$WORK/hosttwin" --quiet
HT=$(du -sb "$WORK/hosttwin" | cut -f1)

# VictoriaMetrics: import over HTTP on loopback, flush, merge, stop (it flushes on exit).
PORT=18428
"$VM" -storageDataPath "$WORK/vm" -httpListenAddr "127.0.0.1:$PORT" -retentionPeriod 100y -loggerLevel ERROR &
VMPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
curl -sf --data-binary @"$WORK/samples.prom" "http://127.0.0.1:$PORT/api/v1/import/prometheus"
curl -sf "http://127.0.0.1:$PORT/internal/force_flush" >/dev/null
sleep 2
ROWS=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^vm_rows\{type="storage\/(big|small)"\}/ {s += $2} END {print s + 0}')
for p in $(ls "$WORK/vm/data/small" 2>/dev/null); do curl -sf "http://127.0.0.1:$PORT/internal/force_merge?partition_prefix=$p" >/dev/null || true; done
sleep 3
kill -INT $VMPID; wait $VMPID 2>/dev/null || true; VMPID=
VMB=$(du -sb "$WORK/vm" | cut -f1)
echo "VictoriaMetrics directory by part:"; du -sb "$WORK"/vm/* | sed "s|$WORK/vm/|  |"
VMDATA=$(du -sb "$WORK/vm/data" | cut -f1)
VMINDEX=$(du -sb "$WORK/vm/indexdb" | cut -f1)

python3 - "$LINES" "$ROWS" "$HT" "$VMB" "$VMDATA" "$VMINDEX" <<'PY'
import sys
lines, rows, ht, vm, vmdata, vmindex = map(int, sys.argv[1:])
print(f"samples: {lines} exported; VictoriaMetrics reports {rows} rows stored")
print(f"HostTwin data directory:        {ht:>10} bytes  {ht / lines:.3f} bytes/sample")
print(f"VictoriaMetrics data directory: {vm:>10} bytes  {vm / lines:.3f} bytes/sample (data/ alone: {vmdata} bytes, {vmdata / lines:.3f})")
print(f"VictoriaMetrics data/ + indexdb/ (its cache/ is rebuilt when missing): {vmdata + vmindex:>10} bytes  {(vmdata + vmindex) / lines:.3f} bytes/sample")
print(f"ratio VictoriaMetrics / HostTwin: {vm / ht:.2f} (data/ + indexdb/: {(vmdata + vmindex) / ht:.2f}; data/ only: {vmdata / ht:.2f})")
PY
