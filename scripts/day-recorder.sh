#!/usr/bin/env bash
# A recorder kept across sessions, for the whole directory's bytes per sample over a day of this host
# (issue 18's footprint target; docs/OBSERVATION.md, "Footprint over a day"). A session here lasts at most
# three hours and its processes end with it, so the day is gathered run by run into one data directory;
# the gaps between runs are the store's own "not running" gaps.
#
#   scripts/day-recorder.sh start DIR [BIN]   start `BIN run --data-dir DIR/d` (or carry on with DIR/d), and
#                                             take a reading now and every 15 minutes while it runs
#   scripts/day-recorder.sh reading DIR [BIN] one reading now: DIR/readings/TIME.json (`bench storage --json`)
#                                             and a line: hours recorded, samples, bytes per sample
#   scripts/day-recorder.sh stop DIR          stop the run (SIGTERM: the store is sealed) and the readings
#
# BIN defaults to DIR/hosttwin if present, else .build/release/hosttwin. Copy the binary into DIR to keep one
# build across sessions. Two readings give the growth per new sample: scripts/footprint-growth.py A B.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,15p' "$0"; exit 2; }
cd "$(dirname "$0")/.."
bin=${3:-}
if [ -z "$bin" ]; then if [ -x "$dir/hosttwin" ]; then bin=$dir/hosttwin; else bin=$PWD/.build/release/hosttwin; fi; fi

reading() {
    mkdir -p "$dir/readings"
    local out; out="$dir/readings/$(date -u +%Y%m%dT%H%M%SZ).json"
    "$bin" bench storage --data-dir "$dir/d" --no-generated --json > "$out"
    local stored; stored=$("$bin" status --data-dir "$dir/d" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["completeness"]["stored"])')
    python3 - "$out" "$stored" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["store"]
print(f"{sys.argv[1]}: {int(sys.argv[2]) / 3600:.2f} h recorded, {s['samples']:,} samples of {s['series']:,} series, "
      f"whole directory {s['dir_bytes']:,} bytes = {s['dir_bytes_per_sample']:.3f} B/sample (sample storage {s['bytes_per_sample']:.3f})")
EOF
}

case $cmd in
start)
    mkdir -p "$dir"
    [ -x "$bin" ] || { echo "no hosttwin binary at $bin (build with: swift build -c release --product hosttwin)" >&2; exit 1; }
    if [ -f "$dir/run.pid" ] && kill -0 "$(cat "$dir/run.pid")" 2>/dev/null; then echo "already running (pid $(cat "$dir/run.pid"))"; exit 0; fi
    nohup "$bin" run --data-dir "$dir/d" >> "$dir/run.log" 2>&1 &
    echo $! > "$dir/run.pid"
    sleep 5
    kill -0 "$(cat "$dir/run.pid")" || { tail -5 "$dir/run.log" >&2; exit 1; }
    echo "recording into $dir/d with $bin (pid $(cat "$dir/run.pid")); log $dir/run.log"
    reading
    nohup bash -c "while kill -0 $(cat "$dir/run.pid") 2>/dev/null; do sleep 900; kill -0 $(cat "$dir/run.pid") 2>/dev/null && \"$0\" reading \"$dir\" \"$bin\" >> \"$dir/readings.log\" 2>&1; done" > /dev/null 2>&1 &
    echo $! > "$dir/readings.pid"
    ;;
reading)
    reading
    ;;
stop)
    for f in readings.pid run.pid; do
        [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true
    done
    if [ -f "$dir/run.pid" ]; then
        while kill -0 "$(cat "$dir/run.pid")" 2>/dev/null; do sleep 0.5; done
        rm -f "$dir/run.pid" "$dir/readings.pid"
    fi
    tail -1 "$dir/run.log"
    ;;
*)
    sed -n '2,15p' "$0"; exit 2
    ;;
esac
