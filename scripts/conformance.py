#!/usr/bin/env python3
"""PromQL conformance of HostTwin against Prometheus (see scripts/conformance.sh).

  conformance.py synth FROM_MS TO_MS          synthetic series (counters with resets, histogram, gauge) as text
  conformance.py openmetrics < in > out       Prometheus text with ms timestamps -> OpenMetrics for promtool
  conformance.py compare --prom URL --twin URL --queries FILE --start MS --end MS [--ci] [--out FILE]
"""
import argparse, json, math, random, re, sys, time, urllib.parse, urllib.request


def synth(frm, to):
    rnd = random.Random(42)
    out = []
    step = 10_000
    t0 = frm - frm % step + step
    # Counters with resets (a restart every ~7 minutes for job b).
    for job, reset_every in (("a", None), ("b", 420_000)):
        v = 0.0
        out.append("# TYPE synthetic_counter_total counter")
        for t in range(t0, to + 1, step):
            if reset_every and t % reset_every < step:
                v = 0.0
            v += rnd.randint(0, 40) / 4
            out.append(f'synthetic_counter_total{{job="{job}"}} {v!r} {t}')
    # A gauge: a slow wave plus noise, with a step change.
    out.append("# TYPE synthetic_gauge gauge")
    for t in range(t0, to + 1, step):
        x = (t - t0) / 600_000
        v = 50 + 30 * math.sin(x) + rnd.uniform(-5, 5) + (20 if (t - t0) > (to - t0) / 2 else 0)
        out.append(f'synthetic_gauge{{instance="x"}} {round(v, 3)!r} {t}')
    # Tiny variance around large and small means (stddev/stdvar must not cancel into noise), and a constant.
    out.append("# TYPE synthetic_tiny gauge")
    for job, base, eps in (("a", 1e9 + 0.1, 1e-6), ("b", 0.1, 1e-12), ("c", 1e9 + 0.1, 0.0), ("d", 123456.789, 1e-7)):
        for k, t in enumerate(range(t0, to + 1, step)):
            v = base + eps * ((k * 7) % 5)
            out.append(f'synthetic_tiny{{job="{job}"}} {v!r} {t}')
    # Values for trigonometry and calendar functions: an angle in radians, a ratio in [-1, 1], Unix times.
    out.append("# TYPE synthetic_angle gauge")
    for t in range(t0, to + 1, step):
        x = (t - t0) / 60_000
        out.append(f'synthetic_angle{{job="a"}} {round(x % 7 - 3.5, 4)!r} {t}')
        out.append(f'synthetic_angle{{job="b"}} {round(math.sin(x), 6)!r} {t}')
    out.append("# TYPE synthetic_unix_seconds gauge")
    for t in range(t0, to + 1, step):
        for job, v in (("leap", 951_782_400 + (t - t0) // 1000 * 3_599), ("now", t // 1000), ("old", -86_400 * 400 + (t - t0) // 10),
                       ("end", 4_102_444_799 - (t - t0) // 1000 * 86_399)):
            out.append(f'synthetic_unix_seconds{{job="{job}"}} {v} {t}')
    # A classic histogram for two jobs.
    bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    for job in ("a", "b"):
        counts = [0] * len(bounds)
        lines = {b: [] for b in bounds}
        for t in range(t0, to + 1, step):
            for _ in range(rnd.randint(0, 30)):
                obs = rnd.expovariate(4 if job == "a" else 1.5)
                for i, b in enumerate(bounds):
                    if b == "+Inf" or obs <= float(b):
                        counts[i] += 1
            for i, b in enumerate(bounds):
                lines[b].append(f'synthetic_latency_seconds_bucket{{job="{job}",le="{b}"}} {counts[i]} {t}')
        for b in bounds:
            out.extend(lines[b])
    # Every series carries job and instance, as a scrape (and HostTwin's API) gives them.
    def scraped(line):
        if line.startswith("#"):
            return line
        head, rest = line.split("}", 1)
        for name, value in (("job", "synth"), ("instance", "synth")):
            if f'{name}="' not in head:
                head += f',{name}="{value}"'
        return head + "}" + rest
    print("\n".join(scraped(l) for l in out))


def openmetrics():
    w = sys.stdout.write
    for line in sys.stdin:
        if not line.strip() or line.startswith("#"):
            continue
        head, value, ts = line.rstrip("\n").rsplit(" ", 2)
        ms = int(ts)
        w(f"{head} {value} {ms // 1000}.{ms % 1000:03d}\n")
    w("# EOF\n")


def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except Exception:
            return e.code, {"status": "error", "errorType": "?", "error": body.decode(errors="replace")}


def num(s):
    return float(s)  # handles NaN, +Inf, -Inf


def close(a, b):
    x, y = num(a), num(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y)) or abs(x - y) < 1e-300


def key(m):
    return json.dumps(m, sort_keys=True)


def compare_data(p, t, ordered=False):
    """None when equal, else a short description of the first difference. `ordered`: an instant vector's
    series must come in the same order (sort, sort_desc, topk, bottomk)."""
    if p["resultType"] != t["resultType"]:
        return f"resultType {p['resultType']} vs {t['resultType']}"
    rt = p["resultType"]
    pr, tr = p["result"], t["result"]
    if rt in ("scalar", "string"):
        if pr[0] != tr[0] or not (close(pr[1], tr[1]) if rt == "scalar" else pr[1] == tr[1]):
            return f"{pr} vs {tr}"
        return None
    ps = {key(s["metric"]): s for s in pr}
    ts = {key(s["metric"]): s for s in tr}
    if len(ps) != len(pr) or len(ts) != len(tr):
        return "duplicate label sets in a result"
    # Prometheus sorts with Go's sort.Sort (pdqsort, not stable): among equal values the order is its
    # sort's accident, so the order checked is that of the values.
    if ordered and rt == "vector" and len(pr) == len(tr) and not all(close(a["value"][1], b["value"][1]) for a, b in zip(pr, tr)):
        return "values in another order: " + ", ".join(s["value"][1] for s in tr[:4]) + " vs " + ", ".join(s["value"][1] for s in pr[:4])
    if set(ps) != set(ts):
        only_p = sorted(set(ps) - set(ts))[:2]
        only_t = sorted(set(ts) - set(ps))[:2]
        return f"series differ: {len(ps)} vs {len(ts)}; only Prometheus {only_p}; only HostTwin {only_t}"
    for k in ps:
        if rt == "vector":
            a, b = ps[k]["value"], ts[k]["value"]
            if a[0] != b[0] or not close(a[1], b[1]):
                return f"{k}: {a} vs {b}"
        else:
            a, b = ps[k]["values"], ts[k]["values"]
            if len(a) != len(b):
                ta, tb = {x[0] for x in a}, {x[0] for x in b}
                return f"{k}: {len(a)} vs {len(b)} points; first only in Prometheus {sorted(ta - tb)[:1]}, only in HostTwin {sorted(tb - ta)[:1]}"
            for x, y in zip(a, b):
                if x[0] != y[0] or not close(x[1], y[1]):
                    return f"{k} at {x[0]}: {x[1]} vs {y[1]}"
    return None


# Queries whose instant result has an order Prometheus defines (by value).
ORDERED = re.compile(r"^\s*(sort|sort_desc|topk|bottomk)\b")


def compare(args):
    queries = []
    for line in open(args.queries):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ci = line.startswith("[ci]")
        q = line[4:].strip() if ci else line
        if args.ci and not ci:
            continue
        queries.append(q)
    start, end = args.start / 1000, args.end / 1000
    span = end - start
    step = args.step
    instants = [start + span / 3, start + span / 2, end]
    rows, failures, nonempty = [], 0, 0
    t0 = time.time()
    for q in queries:
        checks = [("range", "/api/v1/query_range", {"query": q, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)})]
        checks += [(f"instant@{i}", "/api/v1/query", {"query": q, "time": f"{ts:.3f}"}) for i, ts in enumerate(instants)]
        problems = []
        for name, path, params in checks:
            ps, pj = get(args.prom, path, params)
            ts, tj = get(args.twin, path, params)
            if pj.get("status") != tj.get("status") or ps != ts:
                problems.append(f"{name}: Prometheus {ps} {pj.get('errorType', '')} {pj.get('error', '')[:100]} / HostTwin {ts} {tj.get('errorType', '')} {tj.get('error', '')[:100]}")
                continue
            if pj["status"] == "error":
                if pj.get("errorType") != tj.get("errorType"):
                    problems.append(f"{name}: errorType {pj.get('errorType')} vs {tj.get('errorType')}")
                continue
            if name == "range" and pj["data"]["result"]:
                nonempty += 1
            d = compare_data(pj["data"], tj["data"], ordered=ORDERED.match(q) is not None)
            if d:
                problems.append(f"{name}: {d}")
        if problems:
            failures += 1
        rows.append((q, problems))
        if args.verbose or problems:
            print(("FAIL " if problems else "ok   ") + q + ("" if not problems else "\n     " + "\n     ".join(p[:300] for p in problems)), flush=True)
    elapsed = time.time() - t0
    summary = f"{len(queries) - failures} of {len(queries)} queries agree (range query at {step} s step over {span:.0f} s, and instant queries at 3 times; values within 1e-9 relative); {nonempty} range results non-empty; {elapsed:.1f} s"
    print(summary)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# PromQL conformance: HostTwin vs Prometheus 2.42\n\n")
            f.write(f"Produced by `scripts/conformance.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. ")
            f.write(f"Data: {args.data_note}\n\n")
            f.write(f"**{summary}.**\n\n| query | result |\n|---|---|\n")
            for q, problems in rows:
                cell = "agrees" if not problems else "DIFFERS: " + "; ".join(p[:200] for p in problems).replace("|", "\\|")
                f.write(f"| `{q.replace('|', chr(92) + '|')}` | {cell} |\n")
    return 1 if failures else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "synth":
        synth(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "openmetrics":
        openmetrics()
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["compare"])
    ap.add_argument("--prom", required=True)
    ap.add_argument("--twin", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--start", type=int, required=True)
    ap.add_argument("--end", type=int, required=True)
    ap.add_argument("--step", type=int, default=15)
    ap.add_argument("--ci", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--data-note", default="")
    return compare(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
