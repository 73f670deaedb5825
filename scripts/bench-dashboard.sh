#!/usr/bin/env bash
# Dashboard figures (release build, headless Chromium): a store holding 24 hours of 1-second samples of
# every series the host page charts is generated and imported, served by `hosttwin serve`, and the host
# page is opened at the 24 h range: per chart the points drawn, the canvas draw time and the time from
# asking to drawn; the page's bytes and its time to first data. Needs chromium, chromium-driver and
# python3-selenium (scripts/dashboard-test.sh installs them).
#
#   scripts/bench-dashboard.sh [HOURS]
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${1:-24}
swift build -c release --product hosttwin >/dev/null
BIN=$PWD/.build/release/hosttwin
DIR=$(mktemp -d /tmp/hosttwin-bench-dashboard.XXXXXX)
trap 'kill $SERVE 2>/dev/null || true; rm -rf "$DIR"' EXIT
SERVE=
start=$(date +%s.%N)
/usr/bin/python3 - "$HOURS" <<'PY' | "$BIN" import - --data-dir "$DIR/data" --quiet
import math, sys, time
hours = int(sys.argv[1]); end = int(time.time()); begin = end - hours * 3600
out = sys.stdout; w = out.write
modes = ["user", "system", "idle", "iowait", "irq", "softirq", "nice", "steal"]
w("# TYPE node_cpu_seconds_total counter\n# TYPE node_network_receive_bytes_total counter\n# TYPE node_network_transmit_bytes_total counter\n")
w("# TYPE node_disk_read_bytes_total counter\n# TYPE node_disk_written_bytes_total counter\n")
for p in ("cpu", "memory", "io"): w(f"# TYPE node_pressure_{p}_waiting_seconds_total counter\n")
cpu = {(c, m): 0.0 for c in range(2) for m in modes}
net = [0.0, 0.0]; disk = [0.0, 0.0]; psi = [0.0, 0.0, 0.0]
lines = []
for t in range(begin, end):
    day = math.sin(2 * math.pi * (t % 86400) / 86400)
    busy = 0.3 + 0.2 * day + 0.1 * math.sin(t / 37.0)
    for c in range(2):
        for m in modes:
            share = {"user": 0.6, "system": 0.25, "iowait": 0.05, "irq": 0.02, "softirq": 0.03, "nice": 0.03, "steal": 0.02}.get(m, 0)
            cpu[c, m] += (1 - busy) if m == "idle" else busy * share
            lines.append(f'node_cpu_seconds_total{{cpu="{c}",mode="{m}"}} {cpu[c, m]:.3f} {t}\n')
    avail = 12e9 + 3e9 * day + 1e8 * math.sin(t / 300.0)
    for name, v in (("MemTotal", 25e9), ("MemAvailable", avail), ("Cached", 6e9 + 1e9 * day), ("Buffers", 3e8), ("SwapTotal", 0), ("SwapFree", 0)):
        lines.append(f"node_memory_{name}_bytes {v:.0f} {t}\n")
    for k, f in (("1", 1.0), ("5", 0.8), ("15", 0.6)):
        lines.append(f"node_load{k} {f * (1 + busy * 2 + 0.3 * math.sin(t / 61.0)):.2f} {t}\n")
    for i, p in enumerate(("cpu", "memory", "io")):
        psi[i] += 0.02 * busy * (i + 1); lines.append(f"node_pressure_{p}_waiting_seconds_total {psi[i]:.4f} {t}\n")
    net[0] += 2e6 * (1 + day); net[1] += 5e5 * (1 + day)
    lines.append(f'node_network_receive_bytes_total{{device="eth0"}} {net[0]:.0f} {t}\n')
    lines.append(f'node_network_transmit_bytes_total{{device="eth0"}} {net[1]:.0f} {t}\n')
    disk[0] += 1e6 * (1 + math.sin(t / 900.0)); disk[1] += 3e6 * (1 + day)
    lines.append(f'node_disk_read_bytes_total{{device="vda"}} {disk[0]:.0f} {t}\n')
    lines.append(f'node_disk_written_bytes_total{{device="vda"}} {disk[1]:.0f} {t}\n')
    lines.append(f'node_filesystem_avail_bytes{{device="/dev/vda",fstype="ext4",mountpoint="/"}} {7e10 - (t - begin) * 1e3:.0f} {t}\n')
    lines.append(f'node_filesystem_size_bytes{{device="/dev/vda",fstype="ext4",mountpoint="/"}} 270000000000 {t}\n')
    if len(lines) > 100000: out.writelines(lines); lines = []
out.writelines(lines)
PY
echo "generated and imported ${HOURS} h at 1 s in $(echo "$(date +%s.%N) - $start" | bc) s: $(du -sh "$DIR/data" | cut -f1) on disk"
PORT=$((20000 + RANDOM % 20000))
"$BIN" serve --data-dir "$DIR/data" --listen 127.0.0.1:$PORT --log-level warning & SERVE=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
/usr/bin/python3 - "http://127.0.0.1:$PORT" "$HOURS" <<'PY'
import sys, time
sys.path.insert(0, "scripts")
from dashboard_test import browser, wait_for_charts
base, hours = sys.argv[1], sys.argv[2]
d = browser(1400, 1800)
runs = []
for i in range(4):  # the first load warms caches; the median of the rest is reported
    d.get(f"{base}/host?range=24h")
    wait_for_charts(d, timeout=60)
    charts = d.execute_script("return [...document.querySelectorAll('.charts .chart')].map(c => [c.id, +c.dataset.points, +c.dataset.drawMs, +c.dataset.loadMs, +c.dataset.step])")
    size = d.execute_script("const n = performance.getEntriesByType('navigation')[0]; return performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, n.transferSize)")
    runs.append((charts, size, int(d.execute_script("return document.body.dataset.firstDataMs") or -1)))
d.quit()
def med(xs): xs = sorted(xs); return xs[len(xs) // 2]
print(f"host page at 24 h ({len(runs) - 1} loads after a warm-up; median per chart):")
for k, (cid, points, _, _, step) in enumerate(runs[-1][0]):
    draw = med([r[0][k][2] for r in runs[1:]]); load = med([r[0][k][3] for r in runs[1:]])
    print(f"  {cid:18s} {points:6d} points (step {step} s)  canvas draw {draw:6.2f} ms  asked-to-drawn {load:7.1f} ms")
print(f"  page transfer {med([r[1] for r in runs[1:]]) / 1024:.1f} KiB, first data after {med([r[2] for r in runs[1:]])} ms (navigation start to first chart drawn)")
PY
