# Sourced by scripts/test.sh and the PostgreSQL scripts: a private PostgreSQL cluster on loopback for the
# tests and benchmarks (Debian's postgresql, installed when missing), nothing shared with a system cluster.
#
#   start_postgres DIR PORT   initdb in DIR (once), start on 127.0.0.1:PORT, create database hosttwin;
#                             sets PG_URL=postgres://hosttwin@127.0.0.1:PORT/hosttwin
#   fresh_database NAME       (after start_postgres) drops and creates database NAME; sets FRESH_URL
#   stop_postgres DIR         stops it (fast shutdown)

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ]; then
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing PostgreSQL from Debian" >&2
    $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

# Runs a command as the cluster's owner: postgres when root (initdb refuses root), else oneself.
as_owner() {
  if [ "$(id -u)" = 0 ]; then (cd / && su postgres -s /bin/sh -c "$*"); else sh -c "$*"; fi
}

start_postgres() {
  local dir=$1 port=$2 bin
  bin=$(pg_bin)
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    as_owner "$bin/initdb -D '$dir' -U hosttwin -A trust -E UTF8 --no-locale" >/dev/null
  fi
  as_owner "$bin/pg_ctl -D '$dir' -l '$dir/log' -w -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=on\" start" >/dev/null
  "$bin/psql" -h 127.0.0.1 -p "$port" -U hosttwin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'hosttwin'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$port" -U hosttwin hosttwin
  PG_URL="postgres://hosttwin@127.0.0.1:$port/hosttwin"
}

fresh_database() {
  local bin hostport=${PG_URL#postgres://hosttwin@}
  hostport=${hostport%%/*}
  bin=$(pg_bin)
  "$bin/dropdb" -h "${hostport%:*}" -p "${hostport#*:}" -U hosttwin --if-exists "$1"
  "$bin/createdb" -h "${hostport%:*}" -p "${hostport#*:}" -U hosttwin "$1"
  FRESH_URL="postgres://hosttwin@$hostport/$1"
}

stop_postgres() {
  local dir=$1 bin
  bin=$(pg_bin)
  [ -f "$dir/postmaster.pid" ] && as_owner "$bin/pg_ctl -D '$dir' -m fast -w stop" >/dev/null || true
}
