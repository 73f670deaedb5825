#!/usr/bin/env bash
# Grafana's "Node Exporter Full" against a live twin, beside node_exporter 1.5 + Prometheus 2.42 on the
# same host at the same time: every query of the dashboard (variables resolved through each API as
# Grafana does) runs on both, and every query with data under node_exporter must have data under HostTwin.
#
#   scripts/grafana-test.sh [SECONDS]     # collect for SECONDS (default 150), then query the last 120 s
# HOSTTWIN=path/to/hosttwin picks the binary (default: a release build of this checkout). Needs
# ../shared/data/grafana-node-exporter-full; installs prometheus and prometheus-node-exporter from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_TO_COLLECT=${1:-150}
DASHBOARD=${DASHBOARD:-$ROOT/../shared/data/grafana-node-exporter-full/node-exporter-full.json}
[ -f "$DASHBOARD" ] || { echo "grafana-test: $DASHBOARD not found (needs ../shared/data); skipped"; exit 0; }
. scripts/prometheus-lib.sh
ensure_prometheus
ensure_commands prometheus-node-exporter=prometheus-node-exporter
use_hosttwin

W=$(mktemp -d /tmp/hosttwin-grafana.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

NPORT=$(free_port); PPORT=$(free_port); HPORT=$(free_port)
prometheus-node-exporter --web.listen-address=127.0.0.1:$NPORT > "$W/node_exporter.log" 2>&1 & PIDS+=($!)
cat > "$W/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:$NPORT"]
YML
prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom" --web.listen-address=127.0.0.1:$PPORT \
  --log.level=warn > "$W/prometheus.log" 2>&1 & PIDS+=($!)
"$HOSTTWIN" run --data-dir "$W/twin" --listen 127.0.0.1:$HPORT --log-level warning > "$W/hosttwin.log" 2>&1 & PIDS+=($!)
wait_ready "http://127.0.0.1:$PPORT/-/ready" "http://127.0.0.1:$HPORT/healthz"
echo "grafana-test: node_exporter $(prometheus-node-exporter --version 2>&1 | head -1 | awk '{print $3}') scraped every 1 s by Prometheus, hosttwin run at 1 s; collecting ${SECONDS_TO_COLLECT} s"
sleep "$SECONDS_TO_COLLECT"
python3 scripts/grafana_dashboard.py --dashboard "$DASHBOARD" --range 120 --scrape-interval 15 \
  --target "node_exporter=http://127.0.0.1:$PPORT" --target "hosttwin=http://127.0.0.1:$HPORT" \
  --expect-like hosttwin ${GRAFANA_JSON:+--json "$GRAFANA_JSON"}
