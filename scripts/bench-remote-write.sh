#!/usr/bin/env bash
# remote_write figures (docs/BENCHMARKS.md): `hosttwin bench remote-write` sends the same backlog (SERIES series ×
# MINUTES minutes of 1 s ticks) to Prometheus 2.42, VictoriaMetrics 1.79 and a HostTwin hub, each started here on
# loopback, and reports the sender's and each receiver's CPU per sample.
#
#   scripts/bench-remote-write.sh [SERIES] [MINUTES]     # default 1000 series, 10 minutes (600,000 samples)
# HOSTTWIN=path/to/hosttwin picks the binary (default: a release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
MINUTES=${2:-10}
. scripts/prometheus-lib.sh
ensure_prometheus
ensure_commands victoria-metrics=victoria-metrics
use_hosttwin
W=$(mktemp -d /tmp/hosttwin-bench-rw.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
PPORT=$(free_port); VPORT=$(free_port); HPORT=$(free_port)
prometheus --config.file=/dev/null --storage.tsdb.path="$W/prom" --web.listen-address=127.0.0.1:$PPORT \
  --web.enable-remote-write-receiver --log.level=warn > "$W/prom.log" 2>&1 & PROM=$!
victoria-metrics -storageDataPath="$W/vm" -httpListenAddr=127.0.0.1:$VPORT -loggerLevel=ERROR > "$W/vm.log" 2>&1 & VM=$!
"$HOSTTWIN" token create --role relay --data-dir "$W/hub" | tail -n 1 > "$W/relay.token"
"$HOSTTWIN" serve --data-dir "$W/hub" --listen 127.0.0.1:$HPORT --log-level warning > "$W/hub.log" 2>&1 & HUB=$!
PIDS+=($PROM $VM $HUB)
wait_ready "http://127.0.0.1:$PPORT/-/ready" "http://127.0.0.1:$VPORT/health" "http://127.0.0.1:$HPORT/healthz"
sleep 2 # let the receivers settle before their CPU time is read
echo "bench-remote-write: $SERIES series × $MINUTES min of 1 s ticks to each receiver ($(nproc) cores, $(uname -r))"
for target in "Prometheus 2.42|http://127.0.0.1:$PPORT/api/v1/write|$PROM|" \
              "VictoriaMetrics 1.79|http://127.0.0.1:$VPORT/api/v1/write|$VM|" \
              "HostTwin hub|http://127.0.0.1:$HPORT/api/v1/write|$HUB|$W/relay.token"; do
  IFS='|' read -r name url pid token <<< "$target"
  echo "== $name"
  "$HOSTTWIN" bench remote-write --url "$url" --receiver-pid "$pid" --series "$SERIES" --minutes "$MINUTES" ${token:+--token-file "$token"}
done
