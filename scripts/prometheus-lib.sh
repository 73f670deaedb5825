# Shared by the scripts that run Prometheus beside HostTwin (source it): helpers to run the real
# Prometheus 2.42 from Debian over the same samples HostTwin holds.

# Installs Prometheus from Debian when it is missing.
ensure_prometheus() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    echo "installing Prometheus from Debian" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
}

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_prometheus TEXT_FILE WORK_DIR PORT: backfills the Prometheus text (ms timestamps) into blocks
# with promtool and serves them on 127.0.0.1:PORT. Sets PROM_PID.
start_prometheus() {
  local text=$1 work=$2 port=$3
  python3 "$(dirname "${BASH_SOURCE[0]}")/conformance.py" openmetrics < "$text" > "$work/all.om"
  mkdir -p "$work/prom"
  promtool tsdb create-blocks-from openmetrics "$work/all.om" "$work/prom" >/dev/null
  rm -f "$work/all.om"
  printf 'global:\n  scrape_interval: 1h\n' > "$work/prometheus.yml"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" --storage.tsdb.retention.time=100y \
    --web.listen-address=127.0.0.1:"$port" --log.level=warn > "$work/prometheus.log" 2>&1 &
  PROM_PID=$!
}

# wait_ready URL...: polls each URL until all answer 2xx (30 s at most).
wait_ready() {
  for _ in $(seq 1 100); do
    local ok=1
    for u in "$@"; do curl -sf "$u" >/dev/null || ok=0; done
    [ $ok = 1 ] && return 0
    sleep 0.3
  done
  echo "not ready: $*" >&2; return 1
}

# ensure_commands COMMAND=PACKAGE ...: installs from Debian the packages of the commands that are missing.
ensure_commands() {
  local missing="" pair
  for pair in "$@"; do command -v "${pair%%=*}" >/dev/null || missing="$missing ${pair#*=}"; done
  [ -z "$missing" ] && return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing$missing from Debian" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# use_hosttwin: keeps $HOSTTWIN when set, else builds this checkout (release) and points it there.
use_hosttwin() {
  if [ -z "${HOSTTWIN:-}" ]; then
    swift build -c release --product hosttwin >/dev/null
    HOSTTWIN=$PWD/.build/release/hosttwin
  fi
}
