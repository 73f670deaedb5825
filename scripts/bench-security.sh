#!/usr/bin/env bash
# The cost of security on the query path, in one run: the same store served plain, with a token checked
# (and every request audited), and over TLS with a token; wrk against /api/v1/query and /healthz.
#
#   scripts/bench-security.sh DATA_DIR        # a store `hosttwin run` filled; release build; wrk and openssl from Debian
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=$1
QUERY=${QUERY:-rate(node_cpu_seconds_total[1m])}
DURATION=${DURATION:-20s}
for p in wrk openssl; do command -v $p >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq $p >/dev/null; }; done
swift build -c release --product hosttwin >/dev/null
H=$PWD/.build/release/hosttwin
W=$(mktemp -d /tmp/hosttwin-bench-security.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
. scripts/prometheus-lib.sh   # free_port
wait_up() { for _ in $(seq 100); do curl -fsk "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

cd "$W"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null
cd - >/dev/null
TOKEN=$("$H" token create --role reader --name bench --data-dir "$DATA_DIR" | tail -1)
ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$QUERY")
END=$("$H" query 'max(timestamp(node_load1))' --data-dir "$DATA_DIR" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r[0]["value"][1] if r else "")')
[ -n "$END" ] || END=$(date +%s)

run() { # name, url, extra args for serve, auth header or ""
  local name=$1 url=$2; shift 2; local header=$1; shift
  for path in "/api/v1/query?query=$ENC&time=$END" "/healthz"; do
    if [ -n "$header" ]; then out=$(wrk -t2 -c16 -d"$DURATION" -H "$header" "$url$path"); else out=$(wrk -t2 -c16 -d"$DURATION" "$url$path"); fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    lat=$(echo "$out" | awk '/Latency/ {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf "%-34s %-10s %10s req/s  mean latency %-8s %s\n" "$name" "${path%%\?*}" "$rps" "$lat" "${bad:+non-2xx $bad}"
  done
}
P1=$(free_port); "$H" serve --data-dir "$DATA_DIR" --listen 127.0.0.1:$P1 --log-level warning --audit-dir "$W/audit1" & PIDS+=($!)
P2=$(free_port); "$H" serve --data-dir "$DATA_DIR" --listen 127.0.0.1:$P2 --log-level warning --audit-dir "$W/audit2" --auth required & PIDS+=($!)
P3=$(free_port); "$H" serve --data-dir "$DATA_DIR" --listen 127.0.0.1:$P3 --log-level warning --audit-dir "$W/audit3" --tls-cert "$W/server.pem" --tls-key "$W/server.key" & PIDS+=($!)
wait_up http://127.0.0.1:$P1; wait_up http://127.0.0.1:$P2; wait_up https://127.0.0.1:$P3
echo "query: $QUERY at $END; wrk -t2 -c16 -d$DURATION (keep-alive connections); $(nproc) cores"
run "plain HTTP, no token"          http://127.0.0.1:$P1 ""
run "plain HTTP, token required"    http://127.0.0.1:$P2 "Authorization: Bearer $TOKEN"
run "TLS, token required"           https://127.0.0.1:$P3 "Authorization: Bearer $TOKEN"
echo "audit records written: $(cat "$W"/audit*/audit.log | wc -l)"
"$H" token revoke "$(echo "$TOKEN" | cut -c5-16)" --data-dir "$DATA_DIR" >/dev/null
