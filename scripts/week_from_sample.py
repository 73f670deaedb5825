#!/usr/bin/env python3
"""A week of node_exporter-named series for query benchmarks, grown from a short real sample.

  week_from_sample.py SAMPLE.prom DAYS STEP_S END_MS > week.prom

SAMPLE.prom is `hosttwin export` output (Prometheus text with ms timestamps and # TYPE lines), a few
minutes of a real host. Every series in it gets DAYS of points every STEP_S seconds ending at END_MS:
counters rise at their observed rate (so rate() stays realistic and nothing resets), gauges keep their
level with a daily wave and seeded noise. Written as Prometheus text with ms timestamps, what both
`hosttwin import` and (via conformance.py openmetrics) promtool read.
"""
import math, random, sys


def main():
    sample, days, step_s, end_ms = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    types, first, last = {}, {}, {}
    for line in open(sample):
        if line.startswith("# TYPE "):
            _, _, name, t = line.split()
            types[name] = t
            continue
        if not line.strip() or line.startswith("#"):
            continue
        head, value, ts = line.rstrip("\n").rsplit(" ", 2)
        v, t = float(value), int(ts)
        if head not in first:
            first[head] = (t, v)
        last[head] = (t, v)
    rnd = random.Random(7)
    step = step_s * 1000
    end = end_ms - end_ms % step
    start = end - int(days * 86_400_000)
    out = sys.stdout
    for head in sorted(last):
        name = head.split("{", 1)[0]
        (t0, v0), (t1, v1) = first[head], last[head]
        if types.get(name) == "counter":
            rate = max(0.0, (v1 - v0) / ((t1 - t0) / 1000)) if t1 > t0 else 0.0
            base = max(v1 - rate * (end - start) / 1000, 0.0)
            out.write(f"# TYPE {name} counter\n")
            # The rate swings ±20 % over a day; integrated, so the counter never falls.
            day = 86_400 / (2 * math.pi)
            for t in range(start, end + 1, step):
                x = (t - start) / 1000
                out.write(f"{head} {base + rate * (x + 0.2 * day * (1 - math.cos(x / day))):.10g} {t}\n")
        else:
            noise = abs(v1) * 0.02
            for t in range(start, end + 1, step):
                wave = 1 + 0.1 * math.sin(t / 86_400_000 * 2 * math.pi)
                out.write(f"{head} {v1 * wave + rnd.uniform(-noise, noise):.6g} {t}\n")


if __name__ == "__main__":
    main()
