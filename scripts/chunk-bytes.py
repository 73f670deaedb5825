#!/usr/bin/env python3
"""Where a store's chunk bytes go: per class of series (node_*, hosttwin_process_*, the rest) or per metric.

    scripts/chunk-bytes.py DIR/twin.db [--by-metric] [--recompress]

Reads the `chunks` table read-only (a running twin's store is fine). Each group row (docs/format/chunks.md,
"Group rows") holds up to 64 series' members; a member's share of the row's stored bytes is its share of the
row's raw (inflated) data. Prints stored bytes, samples, bytes per sample, series, and the raw bytes per
sample before the row was deflated. `--recompress` also compresses every hour row's raw data with the zstd
and xz command-line tools (Debian's zstd, xz-utils), to say what another compressor would save.
"""
import collections
import sqlite3
import subprocess
import sys
import zlib

args = [a for a in sys.argv[1:] if not a.startswith("--")]
if len(args) != 1:
    sys.exit(__doc__)
by_metric, recompress = "--by-metric" in sys.argv, "--recompress" in sys.argv
db = sqlite3.connect(f"file:{args[0]}?mode=ro", uri=True)
names = dict(db.execute("SELECT s.id, m.name FROM series s JOIN metrics m ON m.id = s.metric_id"))


def uvarint(b, i):
    value = shift = 0
    while True:
        x = b[i]
        i += 1
        value |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return value, i


def klass(name):
    if by_metric:
        return name
    return "hosttwin_process_*" if name.startswith("hosttwin_process_") else "node_*" if name.startswith("node_") else "other"


parts = collections.defaultdict(lambda: [0.0, 0, 0, set()])  # stored bytes, samples, raw bytes, series
raws = []
for level, members, data in db.execute("SELECT level, members, data FROM chunks"):
    # members = u8 version · u8 flags · uvarint raw length · u32 crc · uvarint n · n × (Δid, count, length) · u32 crc
    raw_length, i = uvarint(members, 2)
    n, i = uvarint(members, i + 4)
    stored, sid = len(data) + len(members), 0
    for _ in range(n):
        delta, i = uvarint(members, i)
        count, i = uvarint(members, i)
        length, i = uvarint(members, i)
        sid += delta
        p = parts[klass(names.get(sid, "(deleted series)"))]
        p[0] += stored * length / max(raw_length, 1)
        p[1] += count
        p[2] += length
        p[3].add(sid)
    if recompress and level == 1:
        raws.append((len(data), zlib.decompress(data) if members[1] & 1 else data))

total = sum(p[0] for p in parts.values())
samples = sum(p[1] for p in parts.values())
print(f"chunks: {total:,.0f} bytes for {samples:,} samples, {total / max(samples, 1):.3f} bytes/sample")
for name, (b, c, r, s) in sorted(parts.items(), key=lambda kv: -kv[1][0])[:40]:
    print(f"  {name:40} {b:>11,.0f} B {c:>11,} samples {b / c:7.3f} B/sample {len(s):>7,} series  raw {r / c:.3f}")
if recompress:
    print(f"hour rows' data ({len(raws)} rows), as stored (deflate): {sum(s for s, _ in raws):,} bytes")
    for label, tool in (("zstd -19", ["zstd", "-q", "-19", "-c"]), ("xz -9e", ["xz", "-9e", "-c"])):
        size = sum(len(subprocess.run(tool, input=raw, capture_output=True, check=True).stdout) for _, raw in raws)
        print(f"  {label}: {size:,} bytes")
