#!/usr/bin/env bash
# The fleet on real network hops (issue 13): network namespaces joined by veth pairs on a bridge of their
# own, three datacenters each with agents and a hub, a global hub and an observer; TLS and tokens everywhere.
#
#   scripts/fleet-test.sh [--short] [--seed N] [--iterations N] [--keep]
#
# --short (CI: a few minutes): one agent per datacenter, brief scenarios, 3 fault iterations. Without it:
# two agents per datacenter, longer outages and backlogs, 20 fault iterations. The seed is printed; the same
# seed injects the same faults. Needs root (ip netns), nftables (installed when missing), openssl, curl.
#
# Each scenario ends by settling: agents stop, every tier catches up, and every host's `hosttwin digest`
# (series, samples, versions and a digest of all of them) must be equal at its agent, its hub, the global
# hub and the observer — every tick present once at every tier.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ "$(id -u)" = 0 ] || { echo "fleet-test.sh needs root (network namespaces)" >&2; exit 2; }
MODE=full; SEED=$(( (RANDOM << 15) | RANDOM )); ITER=""; KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --short) MODE=short ;;
    --seed) SEED=$2; shift ;;
    --iterations) ITER=$2; shift ;;
    --keep) KEEP=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$ITER" ] || { [ $MODE = short ] && ITER=3 || ITER=20; }
if [ $MODE = short ]; then AGENTS_PER_DC=1; RUN=8; OUTAGE=15; FAULT_RUN=12; else AGENTS_PER_DC=2; RUN=30; OUTAGE=120; FAULT_RUN=30; fi
echo "fleet-test: mode $MODE, seed $SEED, $ITER fault iterations (rerun: scripts/fleet-test.sh $([ $MODE = short ] && echo '--short ')--seed $SEED)"
extra="nft nftables
openssl openssl
curl curl
ping iputils-ping"
source scripts/build-deps.sh

W=$(mktemp -d /tmp/hosttwin-fleet.XXXXXX)
D=$W/d; L=$W/log; mkdir -p "$D" "$L" "$W/tls"
cp "${HOSTTWIN_BIN:-.build/debug/hosttwin}" "$W/hosttwin"; H=$W/hosttwin
P=htf$$            # namespace prefix, unique per run
NET=$P-net
declare -A IP SUP HUB_OF
FAILED=0
STARTED=$(date +%s)

MAIN=$BASHPID
cleanup() {
  [ "$BASHPID" = "$MAIN" ] || return 0   # subshells (supervisors, background helpers) must not clean up
  set +e
  for n in "${!SUP[@]}"; do kill "${SUP[$n]}" 2>/dev/null; done
  pkill -f -- "--data-dir $D/" 2>/dev/null
  sleep 0.5
  pkill -9 -f -- "--data-dir $D/" 2>/dev/null
  pkill -f -- "$ROOT/scripts/churn.py" 2>/dev/null
  pkill -f -- "$ROOT/scripts/tcp_count.py stall" 2>/dev/null
  pkill -f -- "http.server 80[0-9][0-9] --bind 127.0.0.1" 2>/dev/null
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns" 2>/dev/null; done
  [ $KEEP = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT

say() { printf '%s [%4ss] %s\n' "$(date +%T)" "$(( $(date +%s) - STARTED ))" "$*"; }
fail() { say "FAIL: $*"; FAILED=$((FAILED + 1)); }

# --- the network: one bridge in its own namespace, every node on it through a veth pair ---------------
ip netns add $NET
ip -n $NET link add br0 type bridge
ip -n $NET link set br0 up
node_count=0
add_node() { # name ip
  local n=$1 addr=$2 ns=$P-$1
  node_count=$((node_count + 1))
  ip netns add $ns
  ip -n $NET link add p$node_count type veth peer name x$node_count
  ip -n $NET link set x$node_count netns $ns
  ip -n $ns link set x$node_count name eth0
  ip -n $NET link set p$node_count master br0 up
  ip -n $ns addr add $addr/24 dev eth0
  ip -n $ns link set eth0 up
  ip -n $ns link set lo up
  IP[$n]=$addr
}
add_node global 10.77.0.10
add_node observer 10.77.0.11
DCS="dc1 dc2 dc3"
AGENTS=""
i=0
for dc in $DCS; do
  i=$((i + 1))
  add_node $dc 10.77.0.2$i
  for a in $(seq 1 $AGENTS_PER_DC); do
    add_node a$i$a 10.77.0.1$i$a
    AGENTS="$AGENTS a$i$a"
    HUB_OF[a$i$a]=$dc
  done
done
say "network: $node_count namespaces on a bridge ($DCS, global, observer, agents$AGENTS)"

# Each impairment is checked to act before it is relied on: a ping across the link.
ns() { ip netns exec $P-$1 "${@:2}"; }
ns global ping -c 1 -W 2 ${IP[dc1]} >/dev/null || { echo "the bridge does not forward" >&2; exit 1; }

# --- TLS: a private CA and a certificate per server address -------------------------------------------
cd $W/tls
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=fleet-ca 2>/dev/null
for n in global observer $DCS; do
  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
  printf 'subjectAltName=IP:%s,IP:127.0.0.1\n' "${IP[$n]}" > $n.ext
  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2 -extfile $n.ext 2>/dev/null
done
cd "$ROOT"

# --- tokens: agents bound to their hosts at their hub; relay tokens at the global hub ---------------------
token() { "$H" token create --data-dir "$D/$1" "${@:2}" | tail -1; }
for a in $AGENTS; do token ${HUB_OF[$a]} --role agent --host $a > $W/$a.token; done
for n in $DCS observer; do token global --role relay --name $n > $W/$n.relay; done
token global --role reader > $W/global.reader
token dc1 --role reader > $W/dc1.reader
token observer --role admin > $W/observer.admin

# --- processes: each in its namespace, restarted after an injected fault (exit 86) ---------------------
FAULTS=""; FAULT_SEED=$SEED
start() { # name, then hosttwin arguments after --data-dir
  local n=$1; shift
  (
    RANDOM=$(( (FAULT_SEED + $(printf %s "$n" | cksum | cut -d' ' -f1)) % 32768 ))
    while true; do
      rc=0
      ip netns exec $P-$n env HOSTTWIN_FAULTS="$FAULTS" HOSTTWIN_FAULT_SEED=$((FAULT_SEED + RANDOM)) \
        "$H" "$1" --data-dir "$D/$n" "${@:2}" >> "$L/$n.log" 2>&1 || rc=$?
      [ $rc = 86 ] || exit $rc
      echo "$(date +%T) $n: injected fault, restarted" >> "$L/faults.log"
    done
  ) &
  SUP[$n]=$!
  disown $!   # no job notices when a supervisor is stopped
}
stop() { # name [signal]
  local n=$1 sig=${2:-TERM}
  [ -n "${SUP[$n]:-}" ] && kill "${SUP[$n]}" 2>/dev/null || true
  unset "SUP[$n]"
  pkill -$sig -f -- "--data-dir $D/$n " 2>/dev/null || true
  for _ in $(seq 100); do pgrep -f -- "--data-dir $D/$n " >/dev/null || return 0; sleep 0.1; done
  pkill -9 -f -- "--data-dir $D/$n " 2>/dev/null || true
}
tls() { echo --listen ${IP[$1]}:9977 --tls-cert $W/tls/$1.pem --tls-key $W/tls/$1.key --log-level warning; }
start_global() { start global serve $(tls global); }
start_dc() { start $1 serve $(tls $1) --push https://${IP[global]}:9977 --ca $W/tls/ca.pem --token-file $W/$1.relay --rules $W/dispatch-rules.yml --alerting $W/hub-alerting.yml; }
start_observer() { start observer serve $(tls observer) --follow https://${IP[global]}:9977 --ca $W/tls/ca.pem --token-file $W/observer.relay; }
ROOTS=("/" "$ROOT/../shared/data/node-exporter-fixtures" "$ROOT/../shared/data/procfs-fixtures")
start_agent() { # agent [hub]
  local a=$1 hub=${2:-${HUB_OF[$1]}} idx=$(( ${1:1:1} - 1 )) root=/
  [ -d "${ROOTS[$idx]}/proc" ] && root=${ROOTS[$idx]}
  start $a agent --host-name $a --root "$root" --interval 500ms --push https://${IP[$hub]}:9977 --ca $W/tls/ca.pem --token-file $W/$a.token --alerting $W/agent-alerting.yml
}
# Actions dispatched by a datacenter hub (scenario 8): a rule at every DC hub fires when a host listens on
# port 9911 and dispatches `mark`; each agent's own allow-list opens `mark` (it touches a file) to hubs.
cat > $W/dispatch-rules.yml <<RULES
groups:
- name: dispatch
  interval: 1s
  rules:
  - alert: FleetPortOpened
    state: {kind: listening_ports, match: {port: "9911"}, labels_from: [port]}
    actions: [mark]
RULES
printf 'actions:\n  mark:\n    dispatch: agent\n    cooldown: 10m\n' > $W/hub-alerting.yml
printf 'actions:\n  mark:\n    command: [/usr/bin/touch, %s/acted]\n    from_hub: true\n' "$W" > $W/agent-alerting.yml
healthy() { ns $1 curl -sf --cacert $W/tls/ca.pem https://${IP[$1]}:9977/healthz >/dev/null 2>&1; }
wait_healthy() { for _ in $(seq 150); do healthy $1 && return 0; sleep 0.2; done; fail "$1 never answered /healthz"; return 1; }

# What a store holds: a hub's applied tick per host, an agent's last tick.
applied() { "$H" fleet --data-dir "$D/$1" --json 2>/dev/null | python3 -c "import json,sys; print({h['host']: h['applied_through'] for h in json.load(sys.stdin)}.get('$2', 0))" 2>/dev/null || echo 0; }
last_seq() { "$H" status --data-dir "$D/$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_tick_seq"])'; }
last_time() { "$H" status --data-dir "$D/$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_tick"])'; }

# Freshness (docs/format/sync.md "Two lanes"): a hub's histogram of how long after its tick each host's
# newest tick became queryable there (/metrics), read at the start (a) and the end (b) of a window; the
# share of the window's ticks within each bound.
fresh_read() { ns $1 curl -s --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/$1.reader)" https://${IP[$1]}:9977/metrics > $W/fresh.$1.$2 || true; }
fresh_report() { # node, what the window was
  python3 - $W/fresh.$1.a $W/fresh.$1.b "$1" "$2" <<'PY' || true
import re, sys
def read(path):
    b, n = {}, 0
    for line in open(path):
        m = re.match(r'hosttwin_sync_freshness_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m: b[m.group(1)] = float(m.group(2))
        m = re.match(r'hosttwin_sync_freshness_seconds_count (\S+)', line)
        if m: n = float(m.group(1))
    return b, n
(a, na), (b, nb) = read(sys.argv[1]), read(sys.argv[2])
n = nb - na
if n > 0:
    share = {le: (b[le] - a.get(le, 0)) / n for le in b if le in ("0.5", "1.0", "1.5", "5.0")}
    print("freshness at %s %s (%d ticks): %s" % (sys.argv[3], sys.argv[4], n, ", ".join("%.1f %% within %s s" % (100 * v, le) for le, v in sorted(share.items(), key=lambda x: float(x[0])))))
PY
}

# Settle: stop the agents and note each one's last tick and digest; start them again (they deliver what
# their hubs lack and go on); wait until every tier holds that tick; its digest up to that tick's time
# must be the agent's.
settle() { # scenario name
  local name=$1 ok=1
  declare -A seq t want
  for a in $AGENTS; do stop $a INT; done
  for a in $AGENTS; do
    seq[$a]=$(last_seq $a); t[$a]=$(last_time $a)
    want[$a]=$("$H" digest --data-dir "$D/$a" --until "${t[$a]}" --json | tr -d ' \n')
  done
  for a in $AGENTS; do start_agent $a ${CURRENT_HUB[$a]}; done
  for a in $AGENTS; do
    for tier in ${CURRENT_HUB[$a]} global observer; do
      local got=0
      for _ in $(seq 300); do got=$(applied $tier $a); [ "$got" -ge "${seq[$a]}" ] && break; sleep 0.2; done
      if [ "$got" -lt "${seq[$a]}" ]; then fail "$name: $tier holds $a through tick $got, the agent through ${seq[$a]}"; ok=0; continue; fi
      local have=$("$H" digest --data-dir "$D/$tier" --host $a --until "${t[$a]}" --json | tr -d ' \n')
      [ "$have" = "${want[$a]}" ] || { fail "$name: $tier's digest of $a $have differs from the agent's ${want[$a]}"; ok=0; }
    done
  done
  [ $ok = 1 ] && say "$name: every tick of every host once at every tier, digests equal ($(for a in $AGENTS; do printf '%s:%s ' $a ${seq[$a]}; done))"
  return 0
}
declare -A CURRENT_HUB
for a in $AGENTS; do CURRENT_HUB[$a]=${HUB_OF[$a]}; done

# --- the fleet ----------------------------------------------------------------------------------------
start_global; wait_healthy global
for dc in $DCS; do start_dc $dc; done
for dc in $DCS; do wait_healthy $dc; done
start_observer; wait_healthy observer
for a in $AGENTS; do
  # Each agent's namespace has its own listener (a port of its own) and churn of its own connections.
  port=$((8000 + ${a:1}))
  ( ns $a python3 -m http.server $port --bind 127.0.0.1 >/dev/null 2>&1 & )
  ( ns $a python3 "$ROOT/scripts/churn.py" --processes-per-minute 30 --connections-per-minute 120 --seconds 100000 --seed ${a:1} >/dev/null 2>&1 & )
  start_agent $a
done
say "fleet up: agents$AGENTS → $DCS → global → observer"

# 1. Steady state.
sleep 2; fresh_read dc1 a; fresh_read global a
sleep $RUN
fresh_read dc1 b; fresh_read global b
fresh_report dc1 "in steady state"; fresh_report global "in steady state"
settle "1 steady state"

# 2. A datacenter hub down while its agents hold a backlog with churn; live freshness elsewhere held.
stop dc1 KILL
say "2: dc1 down for ${OUTAGE}s"
sleep $OUTAGE
lag_dc2=$("$H" fleet --data-dir "$D/global" --json | python3 -c "import json,sys; print(max([h.get('lag_seconds') or 0 for h in json.load(sys.stdin) if h['host'].startswith('a2')] or [0]))")
fresh_read global a
start_dc dc1; wait_healthy dc1
fresh_read dc1 a
drain_start=$(date +%s.%N)
backlog=$(last_seq a11)
for _ in $(seq 600); do [ "$(applied global a11)" -ge "$backlog" ] && break; sleep 0.1; done
drained=$(python3 -c "print(round($(date +%s.%N) - $drain_start, 1))")
sleep 5; fresh_read dc1 b; fresh_read global b
fresh_report dc1 "while dc1's backlog drained (its first start)"; fresh_report global "while dc1's backlog drained"
say "2: dc2's hosts were $lag_dc2 s behind at the global hub during dc1's outage; dc1's backlog of $backlog ticks reached the global hub $drained s after dc1 came back"
settle "2 hub down with a backlog"

# 3. 5 % packet loss and a rate limit on an agent's link, and a stalled connection, during pushes.
ns a11 nft add table inet htfault
ns a11 nft add chain inet htfault out '{ type filter hook output priority 0; }'
ns a11 nft add rule inet htfault out ip daddr ${IP[dc1]} numgen random mod 100 '<' 5 counter drop
ns a11 tc qdisc add dev eth0 root tbf rate 2mbit burst 32kbit latency 400ms
sent=$(ns a11 ping -c 100 -i 0.01 -q ${IP[dc1]} 2>/dev/null | awk -F', ' '/packet loss/ {print $3}')
say "3: a11's link drops ~5 % (100 pings: $sent) and is limited to 2 Mbit/s"
# The stall: a11 pushes through a relay in its namespace that stops moving bytes for a while.
stop a11 INT
( ns a11 python3 "$ROOT/scripts/tcp_count.py" stall 19977 ${IP[dc1]}:9977 3 $((OUTAGE / 2 + 5)) $W/stall.count & )
sleep 0.3
start a11 agent --host-name a11 --interval 500ms --push https://127.0.0.1:19977 --ca $W/tls/ca.pem --token-file $W/a11.token
sleep $((RUN + OUTAGE / 2 + 8))
drops=$(ns a11 nft list chain inet htfault out | awk '/counter/ {for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1)}')
say "3: $drops packets dropped on a11's link; a stall of $((OUTAGE / 2 + 5)) s on its push"
stop a11 INT
ns a11 nft delete table inet htfault
ns a11 tc qdisc del dev eth0 root
pkill -f -- "$ROOT/scripts/tcp_count.py stall" || true
start_agent a11
settle "3 loss, rate limit and a stall"

# 4. Kills: faults injected at named points, seeded, over the iterations; the global hub down during a
# datacenter's catch-up; a datacenter partitioned from the global hub.
for it in $(seq 1 $ITER); do
  FAULT_SEED=$((SEED + it))
  FAULTS="hub.after_apply=0.01,agent.mid_frame=0.01,relay.mid_frame=0.01"
  for n in global $DCS $AGENTS; do stop $n KILL; done
  start_global; for dc in $DCS; do start_dc $dc; done
  for a in $AGENTS; do start_agent $a; done
  sleep $FAULT_RUN
  FAULTS=""
  for n in global $DCS; do stop $n KILL; done
  start_global; for dc in $DCS; do start_dc $dc; done
  restarts=$(grep -c restarted "$L/faults.log" 2>/dev/null || echo 0)
  settle "4 faults iteration $it (seed $FAULT_SEED, $restarts injected crashes so far)"
done
stop global KILL
sleep $((OUTAGE / 3 + 2))
start_global; wait_healthy global
settle "4 the global hub down during the datacenters' catch-up"
ns dc2 nft add table inet htpart
ns dc2 nft add chain inet htpart out '{ type filter hook output priority 0; }'
ns dc2 nft add rule inet htpart out ip daddr ${IP[global]} counter drop
ns dc2 ping -c 1 -W 1 ${IP[global]} >/dev/null 2>&1 && fail "4: the partition does not act"
sleep $OUTAGE
ns dc2 nft delete table inet htpart
settle "4 dc2 partitioned from the global hub for ${OUTAGE}s"

# 5. A forged agent, a replayed batch, an agent of a newer protocol version.
code=$(ns a11 curl -s -o /dev/null -w '%{http_code}' --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/a11.token)" "https://${IP[dc1]}:9977/api/v1/sync/cursor?host=a21")
[ "$code" = 403 ] && say "5: a11's token claiming a21: 403" || fail "5: a forged host got $code"
code=$(ns a11 curl -s -o /dev/null -w '%{http_code}' --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/a11.token)" "https://${IP[dc1]}:9977/api/v1/sync/cursor?host=a11&version=99")
[ "$code" = 400 ] && say "5: protocol version 99: 400" || fail "5: a newer protocol version got $code"
# Read the whole log first: `grep -q` leaving a pipe early would SIGPIPE the writer, which pipefail counts.
audited=$("$H" audit show --data-dir "$D/dc1" --json 2>&1 || true)
grep -q '"status" : 403' <<<"$audited" && say "5: the forged request is in dc1's audit log" || fail "5: the forged request is not audited: $(tail -c 300 <<<"$audited")"
# A replay: batches a11 pushed (as dc1 kept them in its outbox) pushed again with a11's token: held already.
python3 - "$D/dc1/twin.db" $W/replay.frames <<'PY'
import sqlite3, struct, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = db.execute("SELECT batch FROM sync_outbox WHERE host = 'a11' ORDER BY id LIMIT 5").fetchall()
with open(sys.argv[2], "wb") as f:
    for (b,) in rows: f.write(struct.pack(">I", len(b)) + b)
PY
acks=$(ns a11 curl -s --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/a11.token)" -H 'Content-Type: application/octet-stream' \
  --data-binary @$W/replay.frames "https://${IP[dc1]}:9977/api/v1/sync/push?host=a11")
echo "$acks" | grep -qE '"outcome":"(applied|duplicate)"' && ! echo "$acks" | grep -q refused && say "5: 5 replayed batches acknowledged as held: $(echo $acks | head -c 120)" || fail "5: replayed batches: $acks"
settle "5 forged host, newer version, replayed batches"

# 6. A host moving from one datacenter's hub to another's.
token dc2 --role agent --host a11 > $W/a11.token.dc2
stop a11 INT
cp $W/a11.token.dc2 $W/a11.token
CURRENT_HUB[a11]=dc2
start_agent a11 dc2
sleep $RUN
settle "6 a11 moved from dc1 to dc2"

# 7. The observer answers while the global hub is stopped, and refuses writes.
stop global KILL
q=$(ns observer curl -s --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/observer.admin)" "https://${IP[observer]}:9977/api/v1/query?query=count(up%20or%20node_load1)")
echo "$q" | grep -q '"status":"success"' && say "7: the observer answers with the global hub stopped" || fail "7: the observer did not answer: $q"
code=$(ns observer curl -s -o /dev/null -w '%{http_code}' --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/observer.admin)" -X POST --data-binary @/dev/null "https://${IP[observer]}:9977/api/v1/sync/push?host=a11")
[ "$code" = 503 ] && say "7: the observer refuses a push: 503" || fail "7: a push to the observer got $code"
start_global; wait_healthy global
settle "7 observer while the global hub was stopped"

# 8. A rule at a datacenter hub makes an agent act: a11 (real /proc) starts listening on 9911; its hub's rule
# fires and dispatches `mark`; a11's agent runs it from its own allow-list. Target: within 5 s of the port
# opening. Readers, relays and the observer cannot dispatch.
hub8=${CURRENT_HUB[a11]}
rm -f $W/acted
opened=$(date +%s%N)
( ns a11 python3 -m http.server 9911 --bind 127.0.0.1 >/dev/null 2>&1 & )
for _ in $(seq 300); do [ -e $W/acted ] && break; sleep 0.05; done
if [ -e $W/acted ]; then
  ms=$(( ($(date -r $W/acted +%s%N) - opened) / 1000000 ))
  [ $ms -le 5000 ] && say "8: $hub8's rule made a11's agent act ${ms} ms after the port opened (target 5000 ms)" || fail "8: a11's agent acted ${ms} ms after the port opened (target 5000 ms)"
else
  fail "8: a11's agent never acted (hub $hub8)"; tail -n 20 "$L/$hub8.log" "$L/a11.log"
fi
pkill -f -- "http.server 9911 --bind 127.0.0.1" || true
runs=$("$H" actions list --data-dir "$D/$hub8" --host a11 --json 2>/dev/null || true)
grep -q '"status" : "agent a11: exit 0"' <<<"$runs" && say "8: $hub8 holds the agent's report" || fail "8: $hub8's runs for a11: $(tail -c 400 <<<"$runs")"
dispatch() { ns $1 curl -s -o /dev/null -w '%{http_code}' --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $2)" --data 'host=a11&action=mark' "https://${IP[$1]}:9977/api/v1/actions/dispatch"; }
codes="reader at dc1 $(dispatch dc1 $W/dc1.reader), relay at global $(dispatch global $W/observer.relay), admin at the observer $(dispatch observer $W/observer.admin)"
[ "$codes" = "reader at dc1 403, relay at global 403, admin at the observer 503" ] && say "8: no dispatch by $codes" || fail "8: dispatches refused as expected? $codes"

# compare and headroom at the global hub on hosts known to differ.
# Each agent listens on a port of its own; with ../shared/data, a21 reads node_exporter's fixture tree, so its
# host facts differ too.
"$H" compare a11 a21 --data-dir "$D/global" --json > $W/compare.json
FIXTURES=0; [ -d "${ROOTS[1]}/proc" ] && FIXTURES=1
python3 - $W/compare.json $FIXTURES <<'PY' || fail "compare did not find the known differences between a11 and a21"
import json, sys
c = json.load(open(sys.argv[1]))
kinds = {d["kind"] for d in c["differences"]}
assert "listening_ports" in kinds and (sys.argv[2] == "0" or "host" in kinds), kinds
print(f"compare a11 a21: {len(c['differences'])} differences ({', '.join(sorted(kinds))})")
PY
"$H" headroom --cpu 0.5 --memory 256M --horizon 1h --history 1h --data-dir "$D/global" --json > $W/headroom.json
python3 - $W/headroom.json <<'PY'
import json, sys
ranked = json.load(open(sys.argv[1]))
print("headroom (0.5 cores, 256 MiB, 1 h):", ", ".join("%s %s x%.1f" % (p["host"], "fits" if p["fits"] else "does not fit", p["score"]) for p in ranked) or "no host with history")
PY
# Freshness at the global hub since its last start: from a batch's last tick (the agent's clock) to applied
# there, the share within the 1.5 s target (histogram buckets of /metrics).
ns global curl -s --cacert $W/tls/ca.pem -H "Authorization: Bearer $(cat $W/global.reader)" https://${IP[global]}:9977/metrics > $W/global.metrics || true
python3 - $W/global.metrics <<'PY' || true
import re, sys
buckets, count = {}, 0
for line in open(sys.argv[1]):
    m = re.match(r'hosttwin_sync_freshness_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m: buckets[m.group(1)] = float(m.group(2))
    m = re.match(r'hosttwin_sync_freshness_seconds_count (\S+)', line)
    if m: count = float(m.group(1))
if count:
    within = {le: n / count for le, n in buckets.items() if le in ("0.5", "1.0", "1.5", "5.0")}
    print("freshness at the global hub since its last start (%d batches): " % count + ", ".join("%.1f %% within %s s" % (100 * v, le) for le, v in sorted(within.items(), key=lambda x: float(x[0]))))
PY

say "done: $FAILED failure(s); seed $SEED; logs in $L"
[ $FAILED = 0 ] || { KEEP=1; tail -n 5 "$L"/*.log; exit 1; }
