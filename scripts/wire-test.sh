#!/usr/bin/env bash
# Bytes on the wire per sample, side by side (issue 13's target: <= 2 B/sample for HostTwin's sync):
#   scripts/wire-test.sh [SECONDS]   (default 3600; run for the figures, not in CI)
# Counts all TCP payload in both directions through counting relays (scripts/tcp_count.py):
#   * HostTwin: `hosttwin agent` -> TLS -> hub (`serve` with a token), everything the session sends: TLS,
#     handshakes, acknowledgements, state;
#   * node_exporter (Debian) scraped by Prometheus 2.42 at 1 s (gzip), and Prometheus' remote_write 1.0 of
#     those samples to a receiver that keeps nothing.
# Samples: HostTwin's are the hub's (count_over_time of every series), Prometheus' from its own counters.
# HOSTTWIN_BIN picks the binary (default: .build/release/hosttwin, else .build/debug/hosttwin).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-3600}
H=${HOSTTWIN_BIN:-$( [ -x .build/release/hosttwin ] && echo .build/release/hosttwin || echo .build/debug/hosttwin )}
H=$(realpath "$H")
. scripts/prometheus-lib.sh
ensure_prometheus
command -v prometheus-node-exporter >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq prometheus-node-exporter >/dev/null; }
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
COUNT="python3 $(pwd)/scripts/tcp_count.py"

cd "$W"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=wire-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null

HUB=$(free_port); RELAY=$(free_port); NODE=$(free_port); SCRAPE=$(free_port); SINK=$(free_port); RW=$(free_port); PROM=$(free_port)
"$H" token create --role agent --host wire-1 --data-dir hub | tail -1 > agent.token
"$H" token create --role reader --data-dir hub | tail -1 > reader.token
"$H" serve --data-dir hub --listen 127.0.0.1:$HUB --tls-cert server.pem --tls-key server.key --log-level warning > hub.log 2>&1 & PIDS+=($!)
$COUNT relay $RELAY $HUB hosttwin.count & PIDS+=($!)
prometheus-node-exporter --web.listen-address=127.0.0.1:$NODE > node.log 2>&1 & PIDS+=($!)
$COUNT relay $SCRAPE $NODE scrape.count & PIDS+=($!)
$COUNT sink $SINK sink.count & PIDS+=($!)
$COUNT relay $RW $SINK remote_write.count & PIDS+=($!)
cat > prometheus.yml <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:$SCRAPE']}]
remote_write:
  - url: http://127.0.0.1:$RW/api/v1/write
YML
prometheus --config.file=prometheus.yml --storage.tsdb.path=prom --web.listen-address=127.0.0.1:$PROM --log.level=warn > prometheus.log 2>&1 & PIDS+=($!)
sleep 2
"$H" agent --data-dir agent --host-name wire-1 --push https://127.0.0.1:$RELAY --ca ca.pem --token-file agent.token --log-level warning > agent.log 2>&1 & AGENT=$!; PIDS+=($AGENT)
echo "measuring for $SECONDS_TO_RUN s (hub :$HUB via :$RELAY, node_exporter :$NODE via :$SCRAPE, remote_write via :$RW)"
START=$(date +%s)
sleep "$SECONDS_TO_RUN"
kill -INT $AGENT; wait $AGENT 2>/dev/null || true
sleep 2
END=$(date +%s)
read -r HT_UP HT_DOWN HT_CONNS < hosttwin.count
read -r SC_UP SC_DOWN _ < scrape.count
read -r RW_UP RW_DOWN _ < remote_write.count
echo "bytes: hosttwin up $HT_UP down $HT_DOWN ($HT_CONNS connections); scrape up $SC_UP down $SC_DOWN; remote_write up $RW_UP down $RW_DOWN"
RANGE=$((END - START + 120))
# Samples: the agent's own store (the hub holds the same ones: its digest is checked below), counted by the CLI.
HT_SAMPLES=$("$H" query "sum(count_over_time({__name__=~\".+\"}[${RANGE}s]))" --data-dir agent --at "$END" --json \
  | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r[0]["value"][1] if r else 0)' || echo 0)
LAST=$("$H" status --data-dir agent --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_tick"])' || echo now)
A_DIGEST=$("$H" digest --data-dir agent --until "$LAST" --json | tr -d ' \n' || true)
kill "${PIDS[0]}" 2>/dev/null; sleep 2   # the hub: its store is read next
H_DIGEST=$("$H" digest --data-dir hub --host wire-1 --until "$LAST" --json | tr -d ' \n' || true)
[ "$A_DIGEST" = "$H_DIGEST" ] && echo "the hub holds exactly the agent's twin: $H_DIGEST" || echo "DIGESTS DIFFER: agent $A_DIGEST, hub $H_DIGEST"
PM=$(curl -s "http://127.0.0.1:$PROM/metrics" || true)
SCRAPED=$(curl -s "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=sum(sum_over_time(scrape_samples_scraped[${RANGE}s]))" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' || echo 0)
SENT=$(echo "$PM" | awk '/^prometheus_remote_storage_samples_total/ {s+=$2} END {print s+0}')
python3 - "$SECONDS_TO_RUN" "$HT_UP" "$HT_DOWN" "$HT_CONNS" "$HT_SAMPLES" "$SC_UP" "$SC_DOWN" "$SCRAPED" "$RW_UP" "$RW_DOWN" "$SENT" <<'PY'
import sys
secs, up, down, conns, samples, sup, sdown, scraped, rup, rdown, sent = sys.argv[1:]
up, down, conns, samples, sup, sdown, scraped, rup, rdown, sent = map(float, (up, down, conns, samples, sup, sdown, scraped, rup, rdown, sent))
def row(name, u, d, n):
    print(f"{name:42} {u:>14,.0f} {d:>14,.0f} {n:>12,.0f} {((u+d)/n if n else float('nan')):>10.3f}")
print(f"{'over ' + secs + ' s':42} {'bytes up':>14} {'bytes down':>14} {'samples':>12} {'B/sample':>10}")
row("HostTwin agent -> hub (TLS, all TCP payload)", up, down, samples)
row("node_exporter scrape by Prometheus (gzip)", sup, sdown, scraped)
row("Prometheus remote_write 1.0", rup, rdown, sent)
print(f"HostTwin sessions (TCP connections): {conns:.0f}")
if samples and sent:
    print(f"ratio remote_write / HostTwin: {((rup+rdown)/sent)/((up+down)/samples):.1f}x; scrape / HostTwin: {((sup+sdown)/scraped)/((up+down)/samples):.1f}x")
PY
