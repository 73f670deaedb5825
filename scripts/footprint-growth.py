#!/usr/bin/env python3
"""What a data directory grew by, per new sample, between two readings of it.

    hosttwin bench storage --data-dir DIR --no-generated --json > early.json
    ... (an hour or more of `run` later)
    hosttwin bench storage --data-dir DIR --no-generated --json > late.json
    scripts/footprint-growth.py early.json late.json

Prints the samples and hours between the readings, the whole directory's growth in bytes per new sample,
and each part's (table, index or file) that moved by 4 KiB or more. A store's fixed part (the current
state, detector states, the catalog) is paid once; the growth per new sample is what a day adds to it
(docs/OBSERVATION.md, "Footprint over a day"). Free pages and the WAL come and go with seals.
"""
import json
import sys

if len(sys.argv) != 3:
    sys.exit(__doc__)
early, late = (json.load(open(p))["store"] for p in sys.argv[1:])
samples = late["samples"] - early["samples"]
if samples <= 0:
    sys.exit("no new samples between the two readings")
grown = late["dir_bytes"] - early["dir_bytes"]
print(f"{samples:,} new samples over {late['hours'] - early['hours']:.2f} h ({late['series']:,} series at the end)")
print(f"whole directory: {early['dir_bytes']:,} -> {late['dir_bytes']:,} bytes, {grown / samples:.3f} bytes a new sample"
      f" ({early['dir_bytes_per_sample']:.3f} -> {late['dir_bytes_per_sample']:.3f} bytes/sample)")
print(f"sample storage: {(late['sample_storage_bytes'] - early['sample_storage_bytes']) / samples:.3f} bytes a new sample")
parts = set(early["bytes"]) | set(late["bytes"])
moved = sorted(((late["bytes"].get(p, 0) - early["bytes"].get(p, 0), p) for p in parts), reverse=True)
for delta, part in moved:
    if abs(delta) >= 4096:
        print(f"  {part:40} {delta:+12,} bytes  {delta / samples:+.3f} B/sample")
