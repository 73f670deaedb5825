#!/usr/bin/env bash
# PromQL conformance: the same data in Prometheus 2.42 (Debian's, via promtool's OpenMetrics backfill)
# and in HostTwin (hosttwin import), every query of conformance/queries.txt on both, results compared
# (labels exact, values within 1e-9 relative).
#
#   scripts/conformance.sh                         # fresh data: `hosttwin run` for 2 minutes at 200 ms
#   scripts/conformance.sh --ci                    # the same, only the [ci] queries
#   scripts/conformance.sh --store postgres://...  # also a twin with its tables in that (empty) PostgreSQL
#                                                  # database: the same data, the same queries, both compared
#   scripts/conformance.sh --data-dir DIR --from T --to T [--out conformance/RESULT.md]
#                                                  # a stretch of an existing store (e.g. an hour of run)
# HOSTTWIN=path/to/hosttwin picks the binary (default: a release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CI_ONLY=""; DATA_DIR=""; FROM=""; TO=""; OUT=""; STEP=""; STORE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) CI_ONLY=--ci ;;
    --data-dir) DATA_DIR=$2; shift ;;
    --from) FROM=$2; shift ;;
    --to) TO=$2; shift ;;
    --out) OUT=$2; shift ;;
    --step) STEP=$2; shift ;;
    --store) STORE=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

. scripts/prometheus-lib.sh
ensure_prometheus
prometheus --version 2>&1 | head -1

if [ -z "${HOSTTWIN:-}" ]; then
  swift build -c release --product hosttwin >/dev/null
  HOSTTWIN=$ROOT/.build/release/hosttwin
fi

W=$(mktemp -d /tmp/hosttwin-conformance.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

if [ -z "$DATA_DIR" ]; then
  echo "conformance: collecting 2 minutes of this host at 200 ms"
  DATA_DIR=$W/src
  "$HOSTTWIN" run --data-dir "$DATA_DIR" --interval 200ms --ticks 600 --listen 127.0.0.1:0 --log-level warning
  FROM=-1h; TO=now; STEP=${STEP:-1}
  NOTE="2 minutes of this host collected by \`hosttwin run --interval 200ms\`, plus synthetic series."
else
  NOTE="\`$DATA_DIR\` from $FROM to $TO, plus synthetic series."
fi

"$HOSTTWIN" export --scrape-labels --data-dir "$DATA_DIR" --from "$FROM" --to "$TO" > "$W/host.prom"
read -r T0 T1 < <(awk '!/^#/ && NF { t=$NF; if (min == "" || t < min) min = t; if (t > max) max = t } END { print min, max }' "$W/host.prom")
python3 scripts/conformance.py synth "$T0" "$T1" > "$W/synth.prom"
cat "$W/host.prom" "$W/synth.prom" > "$W/all.prom"
echo "conformance: $(grep -vc '^#' "$W/all.prom") samples from $T0 to $T1 (ms)"

# Prometheus: backfill blocks, then serve them.
PPORT=$(free_port)
start_prometheus "$W/all.prom" "$W" "$PPORT"
PIDS+=($PROM_PID)

# HostTwin: import the same text, then serve it.
"$HOSTTWIN" import --data-dir "$W/twin" "$W/all.prom" >/dev/null
HPORT=$(free_port)
# Without the built-in rules: their ALERTS series would be extra series beside what Prometheus holds.
"$HOSTTWIN" serve --data-dir "$W/twin" --listen 127.0.0.1:$HPORT --log-level warning --no-default-rules &
PIDS+=($!)

wait_ready "http://127.0.0.1:$PPORT/-/ready" "http://127.0.0.1:$HPORT/healthz"

compare() {
  python3 scripts/conformance.py compare --prom "http://127.0.0.1:$PPORT" --twin "$1" \
    --queries conformance/queries.txt --start "$T0" --end "$T1" --step "${STEP:-15}" $CI_ONLY \
    ${OUT:+--out "$OUT"} --data-note "$NOTE"
}
compare "http://127.0.0.1:$HPORT"

# The same text in a twin whose tables are in PostgreSQL (issue 17: the conformance suite on both engines).
if [ -n "$STORE" ]; then
  echo "conformance: the same data with the store's tables in PostgreSQL"
  "$HOSTTWIN" import --data-dir "$W/twin-pg" --store "$STORE" "$W/all.prom" >/dev/null
  GPORT=$(free_port)
  "$HOSTTWIN" serve --data-dir "$W/twin-pg" --store "$STORE" --listen 127.0.0.1:$GPORT --log-level warning --no-default-rules &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$GPORT/healthz"
  OUT=${OUT:+${OUT%.md}-postgres.md}
  NOTE="$NOTE Store: PostgreSQL."
  compare "http://127.0.0.1:$GPORT"
fi
