#!/usr/bin/env bash
# Query latency of HostTwin beside Prometheus 2.42 on the same data, and load with wrk.
#
#   scripts/bench-query.sh DATA_DIR [FROM TO]
#
# DATA_DIR is a store `hosttwin run` filled (an hour or more); FROM/TO bound the samples given to
# Prometheus (default: the last hour). Runs `hosttwin bench query` (PromQL in process and over HTTP,
# alternating HostTwin and Prometheus, plus state --at and as-of SQL over 7 generated days), then wrk
# with 200 connections for 30 s against /api/v1/query of each server. Release build; wrk from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=$1; FROM=${2:--1h}; TO=${3:-now}
QUERY=${QUERY:-rate(node_cpu_seconds_total[1m])}
. scripts/prometheus-lib.sh
ensure_prometheus
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product hosttwin >/dev/null
H=$PWD/.build/release/hosttwin

W=$(mktemp -d /tmp/hosttwin-bench-query.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

"$H" export --scrape-labels --data-dir "$DATA_DIR" --from "$FROM" --to "$TO" > "$W/data.prom"
PPORT=$(free_port); HPORT=$(free_port)
start_prometheus "$W/data.prom" "$W" "$PPORT"; PIDS+=($PROM_PID)
"$H" serve --data-dir "$DATA_DIR" --listen 127.0.0.1:$HPORT --log-level warning & PIDS+=($!)
wait_ready "http://127.0.0.1:$PPORT/-/ready" "http://127.0.0.1:$HPORT/healthz"
echo "Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on :$PPORT, HostTwin serve on :$HPORT, $(grep -vc '^#' "$W/data.prom") samples"

"$H" bench query --data-dir "$DATA_DIR" --query "$QUERY" --hosttwin-port "$HPORT" --prometheus-port "$PPORT" --runs 50 ${JSON:+--json}

ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$QUERY")
# Instant queries at the newest sample given to both, so each answers with data.
END=$(awk '!/^#/ && NF { if ($NF > m) m = $NF } END { printf "%.3f", m / 1000 }' "$W/data.prom")
for name in HostTwin Prometheus; do
  port=$HPORT; [ $name = Prometheus ] && port=$PPORT
  echo "== wrk -t2 -c200 -d30s /api/v1/query?query=$QUERY&time=$END ($name)"
  wrk -t2 -c200 -d30s --latency "http://127.0.0.1:$port/api/v1/query?query=$ENC&time=$END" | grep -E "Latency|50%|90%|99%|requests in|Requests/sec|Non-2xx|Socket errors"
done
