#!/usr/bin/env bash
# What the HostAnomalous rule's scan costs on a store six hours old, relearning the history against going
# on from the anomaly monitor's saved detector states (docs/OBSERVATION.md, "The anomaly scan hours in"):
#
#   scripts/anomaly-scan-cost.sh [BINARY] [SERIES]
#
# Writes SERIES (default 2,000) generated series over the last 6 hours at 15 s (a quarter of them counters)
# as exposition text, imports them into a fresh store, and times `hosttwin anomalies` over the last 10
# minutes of data (what the rule scans) three times without detector states, so every series learns 6 hours
# again. Then it serves the store until the anomaly monitor's first pass has saved every series' state
# (about 5 minutes), stops it and times the same scan three times from the states. Prints wall and user
# seconds and peak RSS of each run (process start-up included: `hosttwin series` alone is printed for
# scale) and the alerts both ways. BINARY defaults to the release build.
set -euo pipefail
. "$(dirname "$0")/prometheus-lib.sh" # free_port
bin=${1:-$(dirname "$0")/../.build/release/hosttwin}
series=${2:-2000}
dir=$(mktemp -d /tmp/anomaly-scan-cost.XXXX)
serving=""
trap '[ -z "$serving" ] || kill "$serving" 2>/dev/null || true' EXIT
window=$(python3 - "$dir/six-hours.prom" "$series" <<'EOF'
import random, sys, time
random.seed(7)
path, n = sys.argv[1], int(sys.argv[2])
step = 15_000
end = int(time.time() * 1000) // step * step
start = end - 6 * 3_600_000
values, counts = [random.uniform(10, 100) for _ in range(n)], [0.0] * n
with open(path, "w") as out:
    out.write("".join(f"# TYPE syn_counter_{i}_total counter\n" for i in range(0, n, 4)))
    for t in range(start, end + 1, step):
        lines = []
        for i in range(n):
            if i % 4 == 0:
                counts[i] += random.uniform(0, 50)
                lines.append(f"syn_counter_{i}_total {counts[i]:.1f} {t}\n")
            else:
                values[i] += random.gauss(0, 0.5)
                lines.append(f"syn_gauge_{i} {values[i] + random.gauss(0, 2):.3f} {t}\n")
        out.write("".join(lines))
fmt = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
print(fmt(end - 600_000), fmt(end))
EOF
)
read -r from to <<< "$window"
"$bin" import "$dir/six-hours.prom" --data-dir "$dir/store" --quiet
rm "$dir/six-hours.prom"
/usr/bin/time -f "start-up (hosttwin series): %e s wall, %U s user, %M KB peak RSS" "$bin" series --data-dir "$dir/store" --json > /dev/null
scan() {
    for i in 1 2 3; do
        /usr/bin/time -f "$1: %e s wall, %U s user, %M KB peak RSS" "$bin" anomalies --data-dir "$dir/store" --since "$from" --to "$to" --history 6h --json > "$dir/$1.json"
    done
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]}: {d['series']} series, {d['live_series']} live, {len(d['alerts'])} alerts\")" "$dir/$1.json" "$1"
}
scan relearning
port=$(free_port)
"$bin" serve --data-dir "$dir/store" --listen "127.0.0.1:$port" > "$dir/serve.log" 2>&1 &
serving=$!
for _ in $(seq 400); do
    passes=$(curl -s "127.0.0.1:$port/metrics" | awk '/^hosttwin_anomaly_passes_total/ {print $2}' || true)
    [ "${passes:-0}" -ge 1 ] && break
    sleep 1
done
curl -s "127.0.0.1:$port/metrics" | grep '^hosttwin_anomaly_pass_seconds_total' | sed 's/^/monitor pass (learning 6 hours, saving): /'
kill "$serving"
wait "$serving" 2>/dev/null || true
serving=""
scan "from states"
echo "store: $dir"
