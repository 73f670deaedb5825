#!/usr/bin/env python3
"""Creates and removes N empty files in DIR at RATE a second (docs/OBSERVATION.md, "SUID events between
ticks"): a burst of fanotify events on DIR's filesystem for a twin that follows SUID files.

    python3 scripts/file-burst.py N RATE [DIR]    # DIR: /tmp/hosttwin-file-burst
"""
import os
import sys
import time

if len(sys.argv) < 3:
    sys.exit(__doc__)
n, rate = int(sys.argv[1]), float(sys.argv[2])
d = sys.argv[3] if len(sys.argv) > 3 else "/tmp/hosttwin-file-burst"
os.makedirs(d, exist_ok=True)
start = time.time()
for i in range(n):
    p = f"{d}/f{i}"
    open(p, "w").close()
    os.unlink(p)
    if i % 100 == 99:
        ahead = start + (i + 1) / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
print(f"{n} files created and removed in {time.time() - start:.1f} s")
