#!/usr/bin/env python3
"""Where a running process's resident memory is: docs/OBSERVATION.md, "Memory of `run`".

    sudo python3 scripts/memory-of-run.py PID [--json] [--symbols UNSTRIPPED [--order ORDER_FILE]]

Prints the resident set and its anonymous part (/proc/PID/smaps_rollup), the resident kilobytes of each
mapped file by permission (r-x code, r-- read-only data, rw- relocated data), and for each executable
mapping how its resident pages fall into 64 KiB blocks (the kernel's fault-around unit): blocks wholly
resident, partly, and not at all. Page presence comes from /proc/PID/pagemap (bit 63), which needs root.

With `--symbols`, the unstripped copy of the process's executable (the same link: `dist/hosttwin.unstripped`
for the package's binary), the executable's resident code blocks are named by the module most of their
code comes from (a Swift module from the mangled names, else the symbol's first characters), and with `--order`
(the linker's symbol-ordering file it was linked with) counted inside and outside the span of the ordered
functions.
"""
import bisect
import collections
import json
import os
import re
import struct
import subprocess
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
            yield start, end, parts[1], parts[5].strip(), int(parts[2], 16)


def present_pages(pagemap, start, end):
    """One boolean per page of [start, end): whether it is resident."""
    pagemap.seek(start // PAGE * 8)
    raw = pagemap.read((end - start) // PAGE * 8)
    return [(entry >> 63) & 1 == 1 for (entry,) in struct.iter_unpack("<Q", raw)]


def option(name):
    """The value after `name` in the arguments, or None."""
    if name not in sys.argv:
        return None
    i = sys.argv.index(name)
    if i + 1 >= len(sys.argv):
        sys.exit(__doc__.strip())
    return sys.argv[i + 1]


def module(symbol):
    """A Swift symbol's module (`$s10TwinRuntime...` -> TwinRuntime), else the symbol's first characters."""
    m = re.match(r"\$s(\d+)(\w+)", symbol)
    return m.group(2)[:int(m.group(1))] if m else symbol[:24]


def code_by_module(pid, pagemap, unstripped, order):
    """The executable's resident 64 KiB code blocks: by module, and inside or outside the ordered span."""
    segments = []  # (file offset, virtual address, size) of each loadable segment
    for line in subprocess.run(["readelf", "-lW", unstripped], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            segments.append((int(parts[1], 16), int(parts[2], 16), int(parts[4], 16)))
    starts, sizes, names = [], [], []
    for line in subprocess.run(["nm", "-n", "-S", "--defined-only", unstripped], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            starts.append(int(parts[0], 16))
            sizes.append(int(parts[1], 16))
            names.append(parts[3])
    ordered = set(line.strip() for line in open(order)) if order else set()
    placed = [a for a, n in zip(starts, names) if n in ordered]
    span = (min(placed), max(placed)) if placed else None
    exe = os.path.realpath(f"/proc/{pid}/exe")
    blocks = set()
    for start, end, perms, path, offset in mappings(pid):
        if "x" not in perms or path != exe:
            continue
        for i, resident in enumerate(present_pages(pagemap, start, end)):
            position = offset + i * PAGE
            for seg_offset, seg_address, size in segments if resident else ():
                if seg_offset <= position < seg_offset + size:
                    blocks.add((position - seg_offset + seg_address) // BLOCK)
    inside, outside = 0, collections.Counter()
    for block in blocks:
        low, high = block * BLOCK, (block + 1) * BLOCK
        if span and low <= span[1] and high > span[0]:
            inside += 1
            continue
        counted = collections.Counter()  # bytes of the block's code per module
        for k in range(max(bisect.bisect_left(starts, low) - 1, 0), bisect.bisect_left(starts, high)):
            overlap = min(starts[k] + sizes[k], high) - max(starts[k], low)
            if overlap > 0:
                counted[module(names[k])] += overlap
        outside[counted.most_common(1)[0][0] if counted else "?"] += 1
    return {"blocks": len(blocks), "in_order": inside, "order_span_kB": (span[1] - span[0]) // 1024 if span else 0,
            "outside_by_module": dict(outside.most_common())}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    unstripped, order = option("--symbols"), option("--order")
    args = [a for a in args if a not in (unstripped, order)]
    if len(args) != 1 or not args[0].isdigit():
        sys.exit(__doc__.strip())
    pid = args[0]
    report = {"rollup_kB": {k: rollup(pid).get(k) for k in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean")},
              "files": {}, "code_blocks": {}}
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end, perms, path, _ in mappings(pid):
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
        if unstripped:
            report["executable_code"] = code_by_module(pid, pagemap, unstripped, order)
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
    code = report.get("executable_code")
    if code:
        print(f"executable's code: {code['blocks']} blocks of 64 KiB resident, {code['in_order']} of them in the ordered "
              f"functions' span ({code['order_span_kB']} kB); the others by the module most of their code comes from:")
        for name, count in list(code["outside_by_module"].items())[:20]:
            print(f"  {count:5} {name}")


if __name__ == "__main__":
    main()
