#!/usr/bin/env bash
# Prometheus remote_write both ways, against the real peers from Debian on loopback.
#
# Out: `hosttwin run --remote-write` sends to Prometheus 2.42 (--web.enable-remote-write-receiver) and
#      VictoriaMetrics 1.79 at once. Both receivers are stopped for DOWN seconds while the twin goes on, then
#      started again on their data; once the sender caught up, every sample the twin stored in the window must
#      be at each receiver, and nothing else.
# In:  Prometheus 2.42 scrapes node_exporter every second and remote-writes into a hub (`hosttwin serve`, a
#      relay token); the hub's answers to instant and range queries equal Prometheus' own on the same series.
#
#   scripts/remote-write-test.sh [--short]    # --short: receivers down 20 s (CI); default 180 s
# HOSTTWIN=path/to/hosttwin picks the binary (default: a release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
DOWN=180
[ "${1:-}" = "--short" ] && DOWN=20
. scripts/prometheus-lib.sh
ensure_prometheus
ensure_commands victoria-metrics=victoria-metrics prometheus-node-exporter=prometheus-node-exporter
use_hosttwin

W=$(mktemp -d /tmp/hosttwin-rw.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
now() { date +%s; }

PPORT=$(free_port); VPORT=$(free_port); TPORT=$(free_port)
start_receivers() {
  prometheus --config.file=/dev/null --storage.tsdb.path="$W/prom-out" --web.listen-address=127.0.0.1:$PPORT \
    --web.enable-remote-write-receiver --log.level=warn >> "$W/prom-out.log" 2>&1 & PROM=$!
  victoria-metrics -storageDataPath="$W/vm" -httpListenAddr=127.0.0.1:$VPORT -search.latencyOffset=0s \
    -loggerLevel=ERROR >> "$W/vm.log" 2>&1 & VM=$!
  PIDS+=($PROM $VM)
  wait_ready "http://127.0.0.1:$PPORT/-/ready" "http://127.0.0.1:$VPORT/health"
}

echo "remote-write-test: out — hosttwin run to Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') and VictoriaMetrics, receivers down ${DOWN} s"
start_receivers
"$HOSTTWIN" run --data-dir "$W/twin" --listen 127.0.0.1:$TPORT --log-level warning \
  --remote-write "http://127.0.0.1:$PPORT/api/v1/write" --remote-write "http://127.0.0.1:$VPORT/api/v1/write" > "$W/twin.log" 2>&1 & PIDS+=($!)
wait_ready "http://127.0.0.1:$TPORT/healthz"
FROM=$(( $(now) + 5 ))
sleep 30
kill $PROM $VM; wait $PROM $VM 2>/dev/null || true
echo "remote-write-test: receivers stopped at $(date -u +%T)"
sleep "$DOWN"
start_receivers
echo "remote-write-test: receivers back at $(date -u +%T)"
sleep 20
TO=$(( $(now) - 10 ))
python3 scripts/remote_write_compare.py samples --from "$FROM" --to "$TO" --twin "http://127.0.0.1:$TPORT" \
  --prometheus "http://127.0.0.1:$PPORT" --victoria "http://127.0.0.1:$VPORT"

echo "remote-write-test: in — Prometheus scrapes node_exporter and remote-writes into a hub"
NPORT=$(free_port); P2PORT=$(free_port); HPORT=$(free_port)
"$HOSTTWIN" token create --role relay --data-dir "$W/hub" | tail -n 1 > "$W/relay.token"
prometheus-node-exporter --web.listen-address=127.0.0.1:$NPORT > "$W/node_exporter.log" 2>&1 & PIDS+=($!)
"$HOSTTWIN" serve --data-dir "$W/hub" --listen 127.0.0.1:$HPORT --log-level warning > "$W/hub.log" 2>&1 & PIDS+=($!)
cat > "$W/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:$NPORT"]
remote_write:
  - url: http://127.0.0.1:$HPORT/api/v1/write
    authorization:
      credentials_file: $W/relay.token
    queue_config:
      batch_send_deadline: 1s
YML
prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom-in" --web.listen-address=127.0.0.1:$P2PORT \
  --log.level=warn > "$W/prom-in.log" 2>&1 & PIDS+=($!)
wait_ready "http://127.0.0.1:$P2PORT/-/ready" "http://127.0.0.1:$HPORT/healthz"
sleep 60
python3 scripts/remote_write_compare.py queries --at $(( $(now) - 15 )) --hub "http://127.0.0.1:$HPORT" --prometheus "http://127.0.0.1:$P2PORT"
if grep -q "remote_write\|/api/v1/write" "$W/prom-in.log"; then
  echo "Prometheus logged about its remote_write:"; grep "remote_write\|/api/v1/write" "$W/prom-in.log" | tail -n 5
fi
echo "remote-write-test: passed"
