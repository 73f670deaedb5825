#!/usr/bin/env python3
"""A linker symbol-ordering file from perf samples of a running twin: docs/OBSERVATION.md, "Memory of `run`".

    perf script -F ip,sym,dso --no-demangle -i perf.data | python3 scripts/order_file.py BINARY [LIBDIR] > hosttwin.order

Lists, one per line, the symbols of BINARY seen in the samples, as the function running or on its call
stack, those that ran most first. Given to lld as `--symbol-ordering-file`, with every function in its own
section (`-function-sections`), it puts the code a running twin executes side by side, so the 64 KiB
blocks the kernel maps around each code fault hold code that runs instead of neighbours that never do.

Symbols the linker cannot move alone are left out: those of the static libraries in LIBDIR (the Swift
runtime's, built without function sections) that sit in a `.text` section over 32 KiB. Listing one would
pull its whole section (the standard library's are 1.6 MB) in front of the code that runs.
"""
import os
import re
import subprocess
import sys

# A frame of `perf script -F ip,sym,dso`: "    55d0c1a2b3c4 $s9TwinStore...+0x1c (/path/to/binary)".
FRAME = re.compile(r"^\s*[0-9a-f]+ (.+?)(?:\+0x[0-9a-f]+)? \((.+)\)$")


LARGE = 32 * 1024
MEMBER = re.compile(r"^File: .*\((.+)\)$")
SECTION = re.compile(r"^\s*\[\s*(\d+)\] \.text\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)")


def unmovable(libdir):
    """Symbols defined in a large unsplit `.text` section of a static library in `libdir`."""
    names = set()
    for archive in sorted(os.listdir(libdir)):
        if not archive.endswith(".a"):
            continue
        path = os.path.join(libdir, archive)
        large = {}  # member -> index of its .text when large
        member = None
        for line in subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, errors="replace").stdout.splitlines():
            if (m := MEMBER.match(line)):
                member = m.group(1)
            elif member and (m := SECTION.match(line)) and int(m.group(2), 16) > LARGE:
                large[member] = m.group(1)
        member = None
        for line in subprocess.run(["readelf", "-sW", path], capture_output=True, text=True, errors="replace").stdout.splitlines():
            if (m := MEMBER.match(line)):
                member = m.group(1)
                continue
            parts = line.split()
            if member in large and len(parts) == 8 and parts[6] == large[member]:
                names.add(parts[7])
    return names


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip())
    binary = os.path.basename(sys.argv[1])
    fixed = unmovable(sys.argv[2]) if len(sys.argv) == 3 else set()
    running, on_stack = {}, {}
    first_frame = True
    for line in sys.stdin:
        if not line.strip():
            first_frame = True  # a blank line ends a sample's call chain
            continue
        match = FRAME.match(line.rstrip("\n"))
        if not match:
            continue
        symbol, dso = match.groups()
        if dso.startswith("[kernel"):
            continue  # the sample's user-space frames follow the kernel's
        if os.path.basename(dso) == binary and symbol != "[unknown]":
            table = running if first_frame else on_stack
            table[symbol] = table.get(symbol, 0) + 1
        first_frame = False
    if not running and not on_stack:
        sys.exit(f"no sample in {binary} (were the samples taken of this binary, with its symbols?)")
    names = (set(running) | set(on_stack)) - fixed
    for name in sorted(names, key=lambda n: (-running.get(n, 0), -on_stack.get(n, 0), n)):
        print(name)
    print(f"{len(names)} functions of {binary}, {len(running)} of them seen running, the rest on call stacks "
          f"({len((set(running) | set(on_stack)) & fixed)} more left where their library's large sections are)", file=sys.stderr)


if __name__ == "__main__":
    main()
