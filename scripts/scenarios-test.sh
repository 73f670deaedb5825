#!/usr/bin/env bash
# The early-warning scenarios, short form (CI): one seeded run each of a filling loop-mounted file system,
# a crash-looping child and CPU pressure on a fresh twin of this host; fails when a warning does not come in
# time, and prints where `explain` ranks the provoked cause (not checked: one run is a sample). The leak
# scenario (minutes a run, 2 GB) is left to `hosttwin bench scenarios --runs 10` like the figures
# (BENCHMARKS.md). Needs root (a loop mount) and stress-ng (installed from Debian when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HOSTTWIN:-.build/debug/hosttwin}
scenarios="crash-loop"
# A loop device (containers without one skip the fill).
if losetup -f >/dev/null 2>&1 && command -v mkfs.ext4 >/dev/null; then scenarios="fill $scenarios"; else echo "fill skipped: no free loop device or mkfs.ext4"; fi
if ! command -v stress-ng >/dev/null; then
    apt-get install -y -qq stress-ng >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null) || true
fi
if command -v stress-ng >/dev/null && [ -r /proc/pressure/cpu ]; then scenarios="$scenarios cpu-pressure"; else echo "cpu-pressure skipped: no stress-ng or no PSI"; fi
out=$(mktemp)
# shellcheck disable=SC2086
"$BIN" bench scenarios --runs 1 --seed "${SEED:-1}" --scenario $scenarios --json > "$out"
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [x for x in r["runs"] if not x["detected"]]
for x in r["runs"]:
    print("%-13s %-22s %s %s; explain ranks the cause %s" % (x["scenario"], x["parameter"], "warned" if x["detected"] else "MISSED",
          "lead %.0f s" % x["lead_seconds"] if x.get("lead_seconds") is not None else
          "delay %.0f s" % x["delay_seconds"] if x.get("delay_seconds") is not None else "",
          x["cause_rank"] if x.get("cause_rank") else "not in its list"))
sys.exit(1 if bad else 0)
PY
rm -f "$out"
