#!/usr/bin/env bash
# HostTwin's alerts received by a real Alertmanager 0.25 (Debian's prometheus-alertmanager, installed when
# missing): a rule fires on a textfile metric the script sets, Alertmanager's /api/v2/alerts must show it with
# its labels, startsAt (when it fired) and an endsAt ahead (resent before it passes); then the metric is
# cleared, the alert resolves, and Alertmanager must take it as resolved (endsAt at the resolution).
#
#   scripts/alertmanager-test.sh      # HOSTTWIN=path/to/hosttwin picks the binary (default: a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prometheus-lib.sh
if ! command -v prometheus-alertmanager >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq prometheus-alertmanager >/dev/null
  else sudo apt-get install -y -qq prometheus-alertmanager >/dev/null; fi
fi
prometheus-alertmanager --version 2>&1 | head -1
if [ -z "${HOSTTWIN:-}" ]; then swift build --product hosttwin >/dev/null; HOSTTWIN=$PWD/.build/debug/hosttwin; fi
W=$(mktemp -d /tmp/hosttwin-am.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
AM=$(free_port); HT=$(free_port)
cat > "$W/am.yml" <<YML
route: {receiver: none, group_wait: 1s}
receivers: [{name: none}]
YML
prometheus-alertmanager --config.file="$W/am.yml" --storage.path="$W/am" --web.listen-address=127.0.0.1:$AM --cluster.listen-address= \
  --log.level=warn > "$W/am.log" 2>&1 & PIDS+=($!)
mkdir -p "$W/textfile"
echo "hosttwin_test_trigger 1" > "$W/textfile/t.prom"
cat > "$W/rules.yml" <<YML
groups:
  - name: am-test
    interval: 1s
    rules:
      - alert: TestTrigger
        expr: hosttwin_test_trigger == 1
        labels: {severity: page, team: ops}
        annotations: {summary: 'trigger is {{ \$value }}'}
YML
cat > "$W/alerting.yml" <<YML
notify:
  - alertmanager: http://127.0.0.1:$AM
resend_every: 2s
YML
"$HOSTTWIN" run --data-dir "$W/twin" --listen 127.0.0.1:$HT --interval 1s --textfile-directory "$W/textfile" --rules "$W/rules.yml" \
  --alerting "$W/alerting.yml" --no-default-rules --disable packages --log-level warning > "$W/run.log" 2>&1 & PIDS+=($!)
python3 - "$AM" "$HT" "$W" <<'PY'
import json, sys, time, urllib.request, datetime
am, ht, w = sys.argv[1], sys.argv[2], sys.argv[3]
def get(url):
    with urllib.request.urlopen(url, timeout=5) as r: return json.load(r)
def ts(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
def ours():
    try: return [a for a in get(f"http://127.0.0.1:{am}/api/v2/alerts") if a["labels"].get("alertname") == "TestTrigger"]
    except Exception: return []
deadline = time.time() + 60
while time.time() < deadline and not ours(): time.sleep(0.5)
got = ours()
assert got, "Alertmanager never received TestTrigger; run log:\n" + open(w + "/run.log").read()[-2000:]
a = got[0]
twin = get(f"http://127.0.0.1:{ht}/api/v1/alerts")["data"]["alerts"][0]
print("received:", json.dumps({k: a[k] for k in ("labels", "startsAt", "endsAt")}))
assert a["labels"]["severity"] == "page" and a["labels"]["team"] == "ops" and a["labels"]["job"] == "node", a["labels"]
assert a["annotations"]["summary"] == "trigger is 1", a["annotations"]
assert a["status"]["state"] == "active", a["status"]
assert abs(ts(a["startsAt"]) - ts(twin["firedAt"])) < 0.002, (a["startsAt"], twin["firedAt"])
ends = ts(a["endsAt"])
assert ends > time.time(), f"endsAt {a['endsAt']} is not ahead"
# Resent before endsAt passes: after a few resend intervals it is still active with endsAt moved on.
time.sleep(5)
again = ours()
assert again and ts(again[0]["endsAt"]) > ends and ts(again[0]["startsAt"]) == ts(a["startsAt"]), again
# Clear the trigger: the alert resolves and Alertmanager drops it from the active alerts.
open(w + "/textfile/t.prom", "w").write("hosttwin_test_trigger 0\n")
cleared = time.time()
while time.time() < cleared + 30 and ours(): time.sleep(0.5)
assert not ours(), "Alertmanager still shows the alert as active 30 s after it resolved"
hist = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ht}/api/v1/alerts"))["data"]["alerts"]
assert not [x for x in hist if x["labels"]["alertname"] == "TestTrigger"], hist
print(f"resolved: gone from Alertmanager {time.time() - cleared:.1f} s after the trigger was cleared")
PY
"$HOSTTWIN" alerts --all --data-dir "$W/twin" --from -5m
echo "alertmanager: ok"
