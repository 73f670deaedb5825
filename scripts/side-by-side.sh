#!/usr/bin/env bash
# Runs builds of `hosttwin run` side by side and compares their memory and CPU (BENCHMARKS.md, "Memory of
# `run`"):
#
#   scripts/side-by-side.sh MINUTES BINARY...
#
# Starts every BINARY together at the defaults, each on a fresh data directory and its own loopback port,
# reads each one's RSS and anonymous memory (/proc/PID/smaps_rollup) and CPU time (/proc/PID/stat) every
# 30 s for MINUTES, stops them, and prints per binary the mean, lowest and highest RSS, the mean anonymous
# memory and the CPU per second, from minute 3 on (start-up left out), or from minute FROM with
# `FROM=120 scripts/side-by-side.sh 150 ...` (a run hours in). The readings stay in the printed directory
# (readings.txt), and so do the stores (d1, d2, ...: `hosttwin bench storage --data-dir DIR --no-generated`).
# `STORE=DIR scripts/side-by-side.sh ...` starts each on a copy of the stopped twin's data directory DIR
# instead of a fresh one: an A/B of builds on a store hours old.
# Runs started together share what else the host does; compare within one run of this script.
set -euo pipefail
. "$(dirname "$0")/prometheus-lib.sh" # free_port
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
minutes=$1
shift
dir=$(mktemp -d /tmp/side-by-side.XXXX)
echo "readings and stores in $dir" >&2
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
i=0
for bin in "$@"; do
    i=$((i + 1))
    port=$(free_port)
    if [ -n "${STORE:-}" ]; then
        cp -a "$STORE" "$dir/d$i"
        rm -f "$dir/d$i/writer.lock"
    fi
    "$bin" run --data-dir "$dir/d$i" --listen "127.0.0.1:$port" > "$dir/run$i.log" 2>&1 &
    pids+=($!)
done
ticks=$(getconf CLK_TCK)
for ((n = 0; n <= minutes * 2; n++)); do
    line="$n"
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { echo "run $p stopped; its log is in $dir" >&2; exit 1; }
        cpu=$(awk '{print $14 + $15}' "/proc/$p/stat")
        mem=$(awk '/^Rss:/ {r = $2} /^Anonymous:/ {a = $2} END {print r, a}' "/proc/$p/smaps_rollup")
        line="$line $cpu $mem"
    done
    echo "$line" >> "$dir/readings.txt"
    [ "$n" -lt $((minutes * 2)) ] && sleep 30
done
echo "readings in $dir/readings.txt (every 30 s: CPU ticks, RSS kB, anonymous kB per binary)"
python3 - "$dir/readings.txt" "$ticks" "${FROM:-3}" "$@" <<'PY'
import sys
path, ticks, start, bins = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
rows = [list(map(int, line.split())) for line in open(path)]
rows = [r for r in rows if r[0] >= start * 2] or rows  # from minute FROM on (3 by default)
print(f"from minute {rows[0][0] / 2:g} to {rows[-1][0] / 2:g}")
for i, name in enumerate(bins):
    cpu = [r[1 + 3 * i] for r in rows]
    rss = [r[2 + 3 * i] / 1024 for r in rows]
    anon = [r[3 + 3 * i] / 1024 for r in rows]
    seconds = (rows[-1][0] - rows[0][0]) * 30 or 1
    print(f"{name}: RSS mean {sum(rss) / len(rss):.1f} MB ({min(rss):.1f}-{max(rss):.1f}), "
          f"anonymous {sum(anon) / len(anon):.1f} MB, CPU {(cpu[-1] - cpu[0]) * 1000 / ticks / seconds:.2f} ms/s "
          f"({len(rows)} readings)")
PY
