#!/usr/bin/env bash
# Grafana's Node Exporter Full as load: HostTwin beside Prometheus 2.42 on the same week of data, over HTTP,
# at 1 h, 24 h and 7 d (`hosttwin bench query --dashboard`). The week is grown from two minutes of this
# host (scripts/week_from_sample.py: 15 s steps, counters at their observed rates, gauges with a daily
# wave), imported into HostTwin and backfilled into Prometheus with promtool. Release build.
#
#   scripts/bench-grafana.sh [DAYS] [-- extra bench query options, e.g. --json]
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${1:-7}; shift || true; [ "${1:-}" = "--" ] && shift
DASHBOARD=${DASHBOARD:-$PWD/../shared/data/grafana-node-exporter-full/node-exporter-full.json}
[ -f "$DASHBOARD" ] || { echo "bench-grafana: $DASHBOARD not found (needs ../shared/data)" >&2; exit 2; }
. scripts/prometheus-lib.sh
ensure_prometheus
swift build -c release --product hosttwin >/dev/null
H=$PWD/.build/release/hosttwin
W=$(mktemp -d /tmp/hosttwin-bench-grafana.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
echo "bench-grafana: two minutes of this host, then $DAYS days grown from them"
"$H" run --data-dir "$W/src" --listen 127.0.0.1:0 --ticks 120 --log-level warning
"$H" export --scrape-labels --data-dir "$W/src" --match 'node_.*|process_.*' --from -1h > "$W/sample.prom"
python3 scripts/week_from_sample.py "$W/sample.prom" "$DAYS" 15 "$(date +%s%3N)" > "$W/week.prom"
"$H" import --data-dir "$W/twin" --quiet "$W/week.prom"
python3 scripts/conformance.py openmetrics < "$W/week.prom" > "$W/week.om"
rm -f "$W/week.prom"
promtool tsdb create-blocks-from openmetrics --max-block-duration=168h "$W/week.om" "$W/prom" > /dev/null
rm -f "$W/week.om"
printf 'global:\n  scrape_interval: 1h\n' > "$W/prometheus.yml"
PPORT=$(free_port); HPORT=$(free_port)
prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom" --storage.tsdb.retention.time=100y \
  --web.listen-address=127.0.0.1:$PPORT --log.level=warn > "$W/prometheus.log" 2>&1 & PIDS+=($!)
"$H" serve --data-dir "$W/twin" --listen 127.0.0.1:$HPORT --log-level warning & PIDS+=($!)
wait_ready "http://127.0.0.1:$PPORT/-/ready" "http://127.0.0.1:$HPORT/healthz"
sleep 10 # let Prometheus settle (block loading, head compaction) before timing
echo "Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on :$PPORT, HostTwin serve on :$HPORT"
"$H" bench query --data-dir "$W/twin" --hosttwin-port "$HPORT" --prometheus-port "$PPORT" --dashboard "$DASHBOARD" \
  --runs 3 --seconds 10 --state-days 0 "$@"
