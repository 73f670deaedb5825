#!/usr/bin/env bash
# The early-warning scenarios, short form (CI): one seeded run each of a filling loop-mounted file system,
# a crash-looping child and CPU pressure on a fresh twin of this host; fails when a warning does not come in
# time, and prints where `explain` ranks the provoked cause (not checked: one run is a sample). The crash loop
# runs with its remediation on (`--actions on`): it also fails when the loop still lasts a minute. The leak
# scenario (minutes a run, 2 GB) is left to `hosttwin bench scenarios --runs 10` like the figures
# (BENCHMARKS.md). Needs root (a loop mount) and stress-ng (installed from Debian when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HOSTTWIN:-.build/debug/hosttwin}
scenarios=""
# A loop device (containers without one skip the fill).
if losetup -f >/dev/null 2>&1 && command -v mkfs.ext4 >/dev/null; then scenarios="fill $scenarios"; else echo "fill skipped: no free loop device or mkfs.ext4"; fi
if ! command -v stress-ng >/dev/null; then
    apt-get install -y -qq stress-ng >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null) || true
fi
if command -v stress-ng >/dev/null && [ -r /proc/pressure/cpu ]; then scenarios="$scenarios cpu-pressure"; else echo "cpu-pressure skipped: no stress-ng or no PSI"; fi
out=$(mktemp); prevented=$(mktemp)
# shellcheck disable=SC2086
[ -z "$scenarios" ] || "$BIN" bench scenarios --runs 1 --seed "${SEED:-1}" --scenario $scenarios --json > "$out"
[ -n "$scenarios" ] || echo '{"runs": []}' > "$out"
"$BIN" bench scenarios --runs 1 --seed "${SEED:-1}" --scenario crash-loop --actions on --json > "$prevented"
python3 - "$out" "$prevented" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"] + json.load(open(sys.argv[2]))["runs"]
bad = [x for x in runs if not x["detected"] or x.get("prevented") is False]
for x in runs:
    print("%-13s %-22s %s %s; explain ranks the cause %s%s" % (x["scenario"], x["parameter"], "warned" if x["detected"] else "MISSED",
          "lead %.0f s" % x["lead_seconds"] if x.get("lead_seconds") is not None else
          "delay %.0f s" % x["delay_seconds"] if x.get("delay_seconds") is not None else "",
          x["cause_rank"] if x.get("cause_rank") else "not in its list",
          "" if x.get("prevented") is None else "; actions on: " + ("the failure never happened" if x["prevented"] else "NOT PREVENTED") + " (%s)" % x.get("action")))
sys.exit(1 if bad else 0)
PY
rm -f "$out" "$prevented"
