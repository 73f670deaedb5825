#!/usr/bin/env bash
# Installs dist/hosttwin_*.deb (scripts/package.sh) on this machine and runs a hub and an agent from the
# package as its `hosttwin` user, with the build tree out of reach, then checks the hub received the
# agent's ticks and that the installed files have their modes. Needs root; removes the package after.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "package-test needs root (it installs a package)" >&2; exit 1; }
deb=$(ls -t dist/hosttwin_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "no dist/hosttwin_*.deb: run scripts/package.sh first" >&2; exit 1; }
repo=$PWD
mode=$(stat -c %a "$repo")
work=$(mktemp -d)
hub_pid=""
cleanup() {
    # runuser does not pass signals on: stop the hub itself.
    pkill -f "/usr/bin/hosttwin serve --data-dir /var/lib/hosttwin/pkg-test-hub" 2>/dev/null || true
    [ -n "$hub_pid" ] && wait "$hub_pid" 2>/dev/null || true
    chmod "$mode" "$repo"
    dpkg --purge hosttwin >/dev/null 2>&1 || true
    rm -rf /var/lib/hosttwin/pkg-test-* /etc/hosttwin/pkg-test.* "$work"
}
trap cleanup EXIT
apt-get install -y -qq "./$deb" >/dev/null
echo "installed $deb"
# Everything the binary needs is in the package: the build tree is out of the service user's reach.
chmod 700 "$repo"
as_user() { runuser -u hosttwin -- env -i PATH=/usr/bin:/bin HOME=/var/lib/hosttwin "$@"; }
for p in /var/lib/hosttwin:700 /etc/hosttwin:750; do
    [ "$(stat -c %a "${p%:*}")" = "${p#*:}" ] || { echo "FAIL: ${p%:*} has mode $(stat -c %a "${p%:*}"), expected ${p#*:}" >&2; exit 1; }
done
token=$(cd / && as_user /usr/bin/hosttwin token create --role agent --host pkg-test --data-dir /var/lib/hosttwin/pkg-test-hub | tail -1)
install -m 0600 -o hosttwin -g hosttwin /dev/null /etc/hosttwin/pkg-test.token
printf '%s\n' "$token" > /etc/hosttwin/pkg-test.token
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd / && as_user /usr/bin/hosttwin serve --data-dir /var/lib/hosttwin/pkg-test-hub --listen "127.0.0.1:$port" --log-level warning) > "$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
(cd / && as_user /usr/bin/hosttwin agent --data-dir /var/lib/hosttwin/pkg-test-agent --host-name pkg-test --interval 500ms \
    --push "http://127.0.0.1:$port" --token-file /etc/hosttwin/pkg-test.token --ticks 8 --log-level warning) > "$work/agent.log" 2>&1 &
agent_pid=$!
through=0
for _ in $(seq 60); do
    through=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/sync/cursor?host=pkg-test" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("applied_through",0))' 2>/dev/null || echo 0)
    [ "$through" -ge 6 ] && break
    sleep 0.5
done
wait "$agent_pid" || true
[ "$through" -ge 6 ] || { echo "FAIL: the hub holds $through ticks of the packaged agent"; cat "$work/agent.log" "$work/hub.log"; exit 1; }
[ "$(stat -c %a /var/lib/hosttwin/pkg-test-agent)" = 700 ] || { echo "FAIL: the agent's data directory is not private" >&2; exit 1; }
echo "ok: the packaged agent (user hosttwin, build tree out of reach) pushed $through ticks to the packaged hub"
