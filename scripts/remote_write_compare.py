#!/usr/bin/env python3
"""Compares what HostTwin and Prometheus-compatible servers hold (scripts/remote-write-test.sh).

samples: every raw sample of every series in (FROM, TO] at the twin must be at each receiver, and nothing
         else (Prometheus: a range selector; VictoriaMetrics: /api/v1/export).
queries: instant and range queries at a hub fed by a Prometheus' remote_write answer as that Prometheus
         does (the hub's `host` label aside).
"""
import argparse, json, math, sys, urllib.parse, urllib.request

def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read().decode()

def key(metric, drop=()):
    return tuple(sorted((k, v) for k, v in metric.items() if k not in drop))

def same(a, b, rel=0.0):
    return a == b or (math.isnan(a) and math.isnan(b)) or (rel > 0 and abs(a - b) <= rel * max(abs(a), abs(b)))

# Series the twin answers from memory, not from its store (rules' alert series): not sent.
NOT_STORED = {"ALERTS", "ALERTS_FOR_STATE"}

def matrix(base, frm, to):
    body = json.loads(get(base, "/api/v1/query", {"query": '{__name__=~".+"}[%ds]' % (to - frm + 1), "time": to}))
    out = {}
    for s in body["data"]["result"]:
        out[key(s["metric"])] = {round(float(t) * 1000): float(v) for t, v in s["values"] if frm * 1000 < round(float(t) * 1000) <= to * 1000}
    return {k: v for k, v in out.items() if v}

def export(base, frm, to):
    out = {}
    for line in get(base, "/api/v1/export", {"match[]": '{__name__=~".+"}', "start": frm, "end": to}).splitlines():
        s = json.loads(line)
        m = out.setdefault(key(s["metric"]), {})
        for t, v in zip(s["timestamps"], s["values"]):
            if frm * 1000 < t <= to * 1000:
                m[t] = float(v) if v is not None else math.nan
    return {k: v for k, v in out.items() if v}

def compare_samples(args):
    twin = {k: v for k, v in matrix(args.twin, args.frm, args.to).items() if dict(k).get("__name__") not in NOT_STORED}
    total = sum(len(v) for v in twin.values())
    failed = False
    # VictoriaMetrics stores values as decimals (an integer mantissa and a power of ten) and converts them
    # back, which can move the last bits of a float: equal within 1e-12 relative there, bit for bit at
    # Prometheus.
    for name, got, rel in (("Prometheus", matrix(args.prometheus, args.frm, args.to), 0.0), ("VictoriaMetrics", export(args.victoria, args.frm, args.to), 1e-12)):
        missing = sum(1 for k, s in twin.items() for t in s if t not in got.get(k, {}))
        differ = sum(1 for k, s in twin.items() for t, v in s.items() if t in got.get(k, {}) and not same(v, got[k][t], rel))
        extra = sum(1 for k, s in got.items() for t in s if t not in twin.get(k, {}))
        print(f"  {name}: {sum(len(v) for v in got.values())} samples of {len(got)} series vs the twin's {total} of {len(twin)}: "
              f"missing {missing}, different {differ}, extra {extra}")
        if missing or differ or extra:
            failed = True
            for k, s in list(twin.items()):
                lost = sorted(t for t in s if t not in got.get(k, {}))
                if lost:
                    print(f"    e.g. {dict(k).get('__name__')} {dict(k)} misses {len(lost)} samples from {lost[0]}")
                    break
            for k, s in list(twin.items()):
                d = [(t, v, got[k][t]) for t, v in s.items() if t in got.get(k, {}) and not same(v, got[k][t], rel)]
                if d:
                    print(f"    e.g. {dict(k).get('__name__')} at {d[0][0]}: twin {d[0][1]!r}, {name} {d[0][2]!r}")
                    break
    print(f"remote-write-test: window {args.to - args.frm} s, {total} samples of {len(twin)} series")
    sys.exit(1 if failed else 0)

QUERIES = [
    "node_load1", "node_memory_MemAvailable_bytes", "up", "scrape_samples_scraped",
    "rate(node_cpu_seconds_total[15s])", "sum by (mode) (rate(node_cpu_seconds_total[15s]))",
    "count(node_network_receive_bytes_total)", "max_over_time(node_procs_running[30s])",
    "node_filesystem_avail_bytes / node_filesystem_size_bytes",
]

def answers(base, q, at, rng, drop):
    if rng:
        body = json.loads(get(base, "/api/v1/query_range", {"query": q, "start": at - 40, "end": at, "step": 5}))
        return {key(s["metric"], drop): [(round(float(t), 3), float(v)) for t, v in s["values"]] for s in body["data"]["result"]}
    body = json.loads(get(base, "/api/v1/query", {"query": q, "time": at}))
    return {key(s["metric"], drop): [(round(float(s["value"][0]), 3), float(s["value"][1]))] for s in body["data"]["result"]}

def compare_queries(args):
    # Within 1e-9 relative, as the PromQL conformance suite compares (a sum's last bits depend on the order
    # series are added in); how many values are bit for bit equal is reported too.
    bad = exact = values = 0
    for q in QUERIES:
        for rng in (False, True):
            hub = answers(args.hub, q, args.at, rng, ("host",))
            prom = answers(args.prometheus, q, args.at, rng, ())
            ok = bool(prom) and hub.keys() == prom.keys() and all(
                len(hub[k]) == len(prom[k]) and all(a[0] == b[0] and same(a[1], b[1], 1e-9) for a, b in zip(hub[k], prom[k])) for k in hub)
            inexact = 0
            if ok:
                pairs = [(a[1], b[1]) for k in hub for a, b in zip(hub[k], prom[k])]
                values += len(pairs)
                inexact = sum(1 for a, b in pairs if not same(a, b))
                exact += len(pairs) - inexact
            verdict = ('equal' + (f' ({inexact} values within 1e-9, not bit for bit)' if inexact else '')) if ok else 'DIFFERENT'
            print(f"  {'range  ' if rng else 'instant'} {q}: {len(prom)} series at Prometheus, {len(hub)} at the hub: {verdict}")
            if not ok:
                bad += 1
                for k in [k for k in prom.keys() | hub.keys() if prom.get(k) != hub.get(k)][:2]:
                    print(f"    {dict(k)}: Prometheus {prom.get(k, [])[:3]} hub {hub.get(k, [])[:3]}")
    print(f"remote-write-test: {2 * len(QUERIES) - bad} of {2 * len(QUERIES)} queries answer as Prometheus does "
          f"({exact} of {values} values bit for bit, the rest within 1e-9 relative)")
    sys.exit(1 if bad else 0)

def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("samples")
    s.add_argument("--from", dest="frm", type=int, required=True)
    s.add_argument("--to", type=int, required=True)
    s.add_argument("--twin", required=True)
    s.add_argument("--prometheus", required=True)
    s.add_argument("--victoria", required=True)
    q = sub.add_parser("queries")
    q.add_argument("--at", type=int, required=True)
    q.add_argument("--hub", required=True)
    q.add_argument("--prometheus", required=True)
    args = p.parse_args()
    compare_samples(args) if args.cmd == "samples" else compare_queries(args)

main()
