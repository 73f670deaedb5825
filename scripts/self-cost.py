#!/usr/bin/env python3
"""Where a running twin's time goes, from its own /metrics (docs/OBSERVATION.md).

    scripts/self-cost.py snapshot [HOST:]PORT > FILE   the cost counters now, with the time they were read
    scripts/self-cost.py compare A B [--json]          the split between two snapshots of one twin
    scripts/self-cost.py watch [HOST:]PORT SECONDS     a snapshot, SECONDS later another, the split

The split, each part in ms per second of the interval: the process's CPU (`process_cpu_seconds_total`),
the wall time of each collector (`hosttwin_collector_duration_seconds_total`, the costliest listed), of
each rule group (`hosttwin_rule_group_evaluation_seconds_total`) and of the anomaly monitor's passes
(`hosttwin_anomaly_pass_seconds_total`). The parts are wall time of one thread each, the whole is CPU of
all threads: what the parts leave is the store's commits and seals, the HTTP server and the runtime. A
wall time includes waits (a read of /proc under load), so on a busy host the parts can add up to more.
"""
import json
import re
import sys
import time
import urllib.request

COUNTERS = ("process_cpu_seconds_total", "hosttwin_collector_duration_seconds_total",
            "hosttwin_rule_group_evaluation_seconds_total", "hosttwin_anomaly_pass_seconds_total",
            "hosttwin_anomaly_passes_total")
LINE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)')


def snapshot(port):
    url = f"http://{port if ':' in port else '127.0.0.1:' + port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    lines = [l for l in text.splitlines() if l.startswith(COUNTERS)]
    return f"# time {time.time():.3f}\n" + "\n".join(lines) + "\n"


def parse(text):
    t, values = None, {}
    for line in text.splitlines():
        if line.startswith("# time "):
            t = float(line.split()[2])
            continue
        m = LINE.match(line)
        if m:
            values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    if t is None:
        sys.exit("not a snapshot of scripts/self-cost.py (no '# time' line)")
    return t, values


def split(a, b):
    (ta, va), (tb, vb) = parse(a), parse(b)
    seconds = tb - ta
    if seconds <= 0:
        sys.exit("the second snapshot is not later than the first")

    def rate(name, labels=""):
        return (vb.get((name, labels), 0) - va.get((name, labels), 0)) * 1000 / seconds

    def parts(name, label):
        out = {}
        for (n, labels) in vb:
            if n == name:
                m = re.search(label + r'="([^"]*)"', labels)
                out[m.group(1) if m else labels] = rate(n, labels)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    collectors = parts("hosttwin_collector_duration_seconds_total", "collector")
    groups = parts("hosttwin_rule_group_evaluation_seconds_total", "rule_group")
    cpu = rate("process_cpu_seconds_total")
    anomaly = rate("hosttwin_anomaly_pass_seconds_total")
    named = sum(collectors.values()) + sum(groups.values()) + anomaly
    return {
        "seconds": round(seconds, 1),
        "cpu_ms_per_s": round(cpu, 3),
        "collectors_ms_per_s": round(sum(collectors.values()), 3),
        "collectors": {k: round(v, 4) for k, v in collectors.items()},
        "rule_groups": {k: round(v, 4) for k, v in groups.items()},
        "anomaly_passes": int(vb.get(("hosttwin_anomaly_passes_total", ""), 0) - va.get(("hosttwin_anomaly_passes_total", ""), 0)),
        "anomaly_ms_per_s": round(anomaly, 4),
        "rest_ms_per_s": round(cpu - named, 3),
    }


def show(s):
    print(f"over {s['seconds']:.0f} s")
    print(f"process CPU                {s['cpu_ms_per_s']:.3f} ms/s")
    print(f"collectors (wall)          {s['collectors_ms_per_s']:.3f}   " +
          ", ".join(f"{k} {v:.3f}" for k, v in list(s['collectors'].items())[:5]))
    for k, v in s["rule_groups"].items():
        print(f"rules {k:<20} {v:.3f}")
    print(f"anomaly passes ({s['anomaly_passes']})         {s['anomaly_ms_per_s']:.3f}")
    print(f"the rest                   {s['rest_ms_per_s']:.3f}   (store, HTTP, runtime)")


def main(argv):
    if len(argv) >= 2 and argv[0] == "snapshot":
        sys.stdout.write(snapshot(argv[1]))
    elif len(argv) >= 3 and argv[0] in ("compare", "watch"):
        if argv[0] == "compare":
            a, b = open(argv[1]).read(), open(argv[2]).read()
        else:
            a = snapshot(argv[1])
            time.sleep(float(argv[2]))
            b = snapshot(argv[1])
        s = split(a, b)
        print(json.dumps(s, indent=1)) if "--json" in argv else show(s)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
