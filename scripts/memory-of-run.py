#!/usr/bin/env python3
"""Where a running process's resident memory is: docs/OBSERVATION.md, "Memory of `run`".

    sudo python3 scripts/memory-of-run.py PID [--json]

Prints the resident set and its anonymous part (/proc/PID/smaps_rollup), the resident kilobytes of each
mapped file by permission (r-x code, r-- read-only data, rw- relocated data), and for each executable
mapping how its resident pages fall into 64 KiB blocks (the kernel's fault-around unit): blocks wholly
resident, partly, and not at all. Page presence comes from /proc/PID/pagemap (bit 63), which needs root.
"""
import json
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
BLOCK = 64 * 1024


def rollup(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


def mappings(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            yield start, end, parts[1], parts[5].strip()


def present_pages(pagemap, start, end):
    """One boolean per page of [start, end): whether it is resident."""
    pagemap.seek(start // PAGE * 8)
    raw = pagemap.read((end - start) // PAGE * 8)
    return [(entry >> 63) & 1 == 1 for (entry,) in struct.iter_unpack("<Q", raw)]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1 or not args[0].isdigit():
        sys.exit(__doc__.strip())
    pid = args[0]
    report = {"rollup_kB": {k: rollup(pid).get(k) for k in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean")},
              "files": {}, "code_blocks": {}}
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end, perms, path in mappings(pid):
            pages = present_pages(pagemap, start, end)
            kind = perms[:3]
            entry = report["files"].setdefault(os.path.basename(path), {})
            entry[kind] = entry.get(kind, 0) + sum(pages) * PAGE // 1024
            if "x" in perms:
                per_block = BLOCK // PAGE
                counts = report["code_blocks"].setdefault(os.path.basename(path), {"full": 0, "partial": 0, "empty": 0})
                for i in range(0, len(pages), per_block):
                    resident = sum(pages[i:i + per_block])
                    counts["full" if resident == len(pages[i:i + per_block]) else "empty" if resident == 0 else "partial"] += 1
    if "--json" in sys.argv:
        print(json.dumps(report, indent=2))
        return
    r = report["rollup_kB"]
    print(f"RSS {r['Rss'] / 1024:.1f} MB, anonymous {r['Anonymous'] / 1024:.1f} MB")
    print(f"{'file':40} {'r-x':>8} {'r--':>8} {'rw-':>8}  (resident kB)   64 KiB code blocks full/partial/empty")
    for name, kinds in sorted(report["files"].items(), key=lambda kv: -sum(kv[1].values())):
        if sum(kinds.values()) == 0:
            continue
        blocks = report["code_blocks"].get(name)
        shape = f"{blocks['full']}/{blocks['partial']}/{blocks['empty']}" if blocks else ""
        print(f"{name[:40]:40} {kinds.get('r-x', 0):8} {kinds.get('r--', 0):8} {kinds.get('rw-', 0):8}   {shape}")


if __name__ == "__main__":
    main()
