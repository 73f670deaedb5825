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
    url = base + path + "?" + urllib.parse.urlencode(params, doseq=True)
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


def same_values_per_step(pr, tr):
    """Whether two range results hold, step by step, the same values (within `close`) whatever series carry
    them: topk and bottomk choose among series whose values tie within the tolerance as their heaps happen
    to, and values equal within 1e-9 relative are not told apart here (`close`)."""
    def steps(result):
        out = {}
        for s in result:
            for at, v in s["values"]:
                out.setdefault(at, []).append(v)
        return out
    a, b = steps(pr), steps(tr)
    if set(a) != set(b):
        return False
    for at in a:
        x, y = sorted(a[at], key=num), sorted(b[at], key=num)
        if len(x) != len(y) or not all(close(u, v) for u, v in zip(x, y)):
            return False
    return True


def compare_data(p, t, ordered=False, selection=False):
    """None when equal, else a short description of the first difference. `ordered`: an instant vector's
    series must come in the same order (sort, sort_desc, topk, bottomk). `selection` (topk, bottomk): a
    range result may pick other series among values that tie within the tolerance."""
    found = compare_strictly(p, t, ordered)
    if found and selection and p["resultType"] == "matrix" and same_values_per_step(p["result"], t["result"]):
        return None
    return found


def compare_strictly(p, t, ordered):
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


# Expressions for /api/v1/format_query: Prometheus' formatter, short (one line) and long (indented).
FORMAT_QUERIES = [
    'sum(rate(node_cpu_seconds_total{mode!="idle"}[90s])) by (cpu)',
    'node_load1   >bool   0.5',
    'a / on(instance, job) group_left(mode, cpu) b',
    'x * ignoring(a) y',
    'topk(3, {__name__=~"node_load.*", job="node"} offset 5m)',
    'rate(x[5m] @ 1700000000.5 offset -1h30m)',
    'max_over_time(deriv(x[2m])[1h:30s] offset 1d)',
    'avg_over_time(x[1w]) + count_values("v", y) - quantile without (le) (0.9, z)',
    '-(1e3 + 0x10) ^ 2 % 7',
    'label_replace(up, "dst", "x-$1", "src", "(.*)")',
    "x{job='a\"b', path=`C:\\dir`}",
    'sum by (job, instance) (rate(node_network_receive_bytes_total{device!~"lo|veth.*", instance="vm", job="node"}[5m])) / on (job, instance) group_left () sum by (job, instance) (rate(node_network_transmit_bytes_total[5m]))',
    'histogram_quantile(0.99, sum by (le, job) (rate(synthetic_latency_seconds_bucket{job=~"a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p"}[5m]))) > bool on () group_right() (vector(1) + vector(2))',
    'x @ start() + y @ end()',
    '{__name__="x"}',
    'x[5m:]',
]

# Endpoints compared: (kind, path, params). "exact" compares the data, "set" the data as a set, "keys" the
# keys of an object (values differ by nature: build, runtime, paths; HostTwin may add keys, which are
# listed), "error" both refuse with the same type.
def api_checks(start, end):
    s, e = f"{start:.3f}", f"{end:.3f}"
    return [
        ("exact", "/api/v1/series", {"match[]": ["node_load1", "synthetic_gauge"], "start": s, "end": e}),
        ("exact", "/api/v1/series", {"match[]": ['{__name__=~"synthetic_t.*"}'], "start": s, "end": e}),
        ("exact", "/api/v1/series", {"match[]": ["synthetic_tiny"], "start": f"{end + 3600:.3f}", "end": f"{end + 7200:.3f}"}),
        ("exact", "/api/v1/series", {"match[]": ["synthetic_tiny"], "end": f"{start - 3600:.3f}"}),
        ("set", "/api/v1/labels", {"start": s, "end": e}),
        ("set", "/api/v1/labels", {"match[]": ["synthetic_gauge"]}),
        ("exact", "/api/v1/labels", {"start": f"{end + 3600:.3f}"}),
        ("exact", "/api/v1/label/job/values", {}),
        ("exact", "/api/v1/label/__name__/values", {"match[]": ['{__name__=~"synthetic_.*"}'], "start": s, "end": e}),
        ("exact", "/api/v1/label/mode/values", {"start": s, "end": e}),
        ("exact", "/api/v1/label/mode/values", {"start": f"{end + 3600:.3f}"}),
        ("exact", "/api/v1/query_exemplars", {"query": "synthetic_gauge", "start": s, "end": e}),
        ("keys", "/api/v1/metadata", {"limit": "0"}),
        ("keys", "/api/v1/status/buildinfo", {}),
        ("keys", "/api/v1/status/config", {}),
        ("type", "/api/v1/status/flags", {}),
        ("keys", "/api/v1/status/runtimeinfo", {}),
        ("keys", "/api/v1/status/tsdb", {}),
        ("keys", "/api/v1/status/walreplay", {}),
        ("keys", "/api/v1/targets", {}),
        ("exact", "/api/v1/targets/metadata", {}),
        ("keys", "/api/v1/alertmanagers", {}),
        ("keys", "/api/v1/rules", {}),
        ("keys", "/api/v1/alerts", {}),
        ("error", "/api/v1/series", {}),
        ("error", "/api/v1/series", {"match[]": ["up"], "start": "yesterday"}),
        ("error", "/api/v1/label/a-b/values", {}),
        ("error", "/api/v1/format_query", {"query": "sum(rate(x[5m]) by"}),
    ] + [("exact", "/api/v1/format_query", {"query": q}) for q in FORMAT_QUERIES]


def compare_api(args, start, end):
    """Rows (description, problem or None) for every endpoint check."""
    rows = []
    for kind, path, params in api_checks(start, end):
        ps, pj = get(args.prom, path, params)
        ts, tj = get(args.twin, path, params)
        desc = path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        problem = None
        if kind == "error":
            if pj.get("status") != "error" or tj.get("status") != "error" or pj.get("errorType") != tj.get("errorType") or ps != ts:
                problem = f"Prometheus {ps} {pj.get('errorType')} / HostTwin {ts} {tj.get('errorType')}"
        elif pj.get("status") != "success" or tj.get("status") != "success":
            problem = f"Prometheus {ps} {pj.get('error', '')[:80]} / HostTwin {ts} {tj.get('error', '')[:80]}"
        else:
            a, b = pj["data"], tj["data"]
            if kind == "exact" and a != b:
                problem = f"{json.dumps(a)[:150]} vs {json.dumps(b)[:150]}"
            elif kind == "set" and sorted(a) != sorted(b):
                problem = f"{sorted(set(a) ^ set(b))[:5]} differ"
            elif kind == "keys" and (not isinstance(a, dict) or not isinstance(b, dict) or not set(a) <= set(b)):
                problem = f"keys {sorted(a) if isinstance(a, dict) else a} vs {sorted(b) if isinstance(b, dict) else b}"
            elif kind == "keys" and set(b) - set(a):
                desc += f" (HostTwin adds {', '.join(sorted(set(b) - set(a)))})"
            elif kind == "type" and type(a) != type(b):
                problem = f"{type(a).__name__} vs {type(b).__name__}"
        rows.append((f"{kind}: {desc}", problem))
        if args.verbose or problem:
            print(("FAIL " if problem else "ok   ") + desc + ("" if not problem else "\n     " + problem), flush=True)
    return rows


# Everything Prometheus 2.42's PromQL has, each with a pattern that finds the queries exercising it:
# the coverage table of RESULT.md, and a failure when something has no query.
FUNCTIONS_2_42 = """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max
clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv exp floor
histogram_count histogram_fraction histogram_quantile histogram_sum holt_winters hour idelta increase irate
label_join label_replace last_over_time ln log10 log2 max_over_time min_over_time minute month pi predict_linear
present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_desc sqrt
stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year""".split()
AGGREGATIONS_2_42 = "sum avg min max count group stddev stdvar topk bottomk quantile count_values".split()


def coverage_items():
    items = [("function", f, rf"(?<![\w.]){f}\s*\(") for f in FUNCTIONS_2_42]
    items += [("aggregation", a, rf"(?<![\w.]){a}\s*(\(|by\b|without\b)") for a in AGGREGATIONS_2_42]
    ops = [("+", r"\s\+\s"), ("-", r"\s-\s"), ("*", r"\s\*\s"), ("/", r"\s/\s"), ("%", r"\s%\s"), ("^", r"\s\^\s"),
           ("==", r"=="), ("!=", r"\s!=\s"), (">", r"\s>\s"), ("<", r"\s<\s"), (">=", r">="), ("<=", r"<="),
           ("and", r"\sand\s"), ("or", r"\sor\s"), ("unless", r"\sunless\s"), ("atan2", r"\satan2\s")]
    items += [("binary operator", o, p) for o, p in ops]
    items += [("modifier", m, p) for m, p in [
        ("bool", r"\sbool\s"), ("on", r"\son\s*\("), ("ignoring", r"\signoring\s*\("), ("group_left", r"group_left"),
        ("group_right", r"group_right"), ("by", r"\sby\s*\("), ("without", r"\swithout\s*\("), ("offset", r"\soffset\s+\d"),
        ("negative offset", r"\soffset\s+-"), ("@ timestamp", r"@\s*(\d|\$T_MID)"), ("@ start()", r"@\s*start\(\)"), ("@ end()", r"@\s*end\(\)"),
        ("subquery", r"\[\d+\w+:\d+\w+\]"), ("subquery with the default step", r"\[\d+\w+:\]"), ("unary minus", r"(^|[(\s])-[a-z(]"),
        ("parentheses", r"^\("), ("regex matcher", r"=~"), ("negative regex matcher", r"!~"), ("__name__ matcher", r"__name__"),
        ("number literal forms (exponent, hex, Inf, NaN)", r"\d[eE][-+]?\d|0x[0-9a-fA-F]|\bInf\b|\bNaN\b"),
        ("string literal", r'"[^"]*"\s*,')]]
    return items


def coverage(queries):
    """(kind, item, [queries]) for each item of PromQL 2.42."""
    return [(kind, item, [q for q in queries if re.search(pat, q)]) for kind, item, pat in coverage_items()]


# Queries whose instant result has an order Prometheus defines (by value).
ORDERED = re.compile(r"^\s*(sort|sort_desc|topk|bottomk)\b")
SELECTION = re.compile(r"^\s*(topk|bottomk)\b")


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
    for template in queries:
        # $T_MID: the middle of the data, for `@` modifiers with a time.
        q = template.replace("$T_MID", f"{(start + end) / 2:.3f}")
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
            d = compare_data(pj["data"], tj["data"], ordered=ORDERED.match(q) is not None, selection=SELECTION.match(q) is not None)
            if d:
                problems.append(f"{name}: {d}")
        if problems:
            failures += 1
        rows.append((template, problems))
        if args.verbose or problems:
            print(("FAIL " if problems else "ok   ") + q + ("" if not problems else "\n     " + "\n     ".join(p[:300] for p in problems)), flush=True)
    covered = coverage(queries)
    uncovered = [item for _, item, qs in covered if not qs]
    if uncovered:
        print("not covered by any query: " + ", ".join(uncovered))
    api_rows = compare_api(args, start, end)
    api_failures = sum(1 for _, p in api_rows if p)
    elapsed = time.time() - t0
    summary = (f"{len(queries) - failures} of {len(queries)} queries agree (range query at {step} s step over {span:.0f} s, and instant "
               f"queries at 3 times; values within 1e-9 relative); {nonempty} range results non-empty; "
               f"{len(api_rows) - api_failures} of {len(api_rows)} API checks agree; {elapsed:.1f} s")
    print(summary)
    failures += api_failures + len(uncovered)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# PromQL conformance: HostTwin vs Prometheus 2.42\n\n")
            f.write(f"Produced by `scripts/conformance.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. ")
            f.write(f"Data: {args.data_note}\n\n")
            f.write(f"**{summary}.**\n\n| query | result |\n|---|---|\n")
            for q, problems in rows:
                cell = "agrees" if not problems else "DIFFERS: " + "; ".join(p[:200] for p in problems).replace("|", "\\|")
                f.write(f"| `{q.replace('|', chr(92) + '|')}` | {cell} |\n")
            f.write("\n## Coverage: every function, aggregation, operator and modifier of Prometheus 2.42\n\n")
            f.write(f"{len(covered) - len(uncovered)} of {len(covered)} items have queries above (first three shown).\n\n| kind | item | queries |\n|---|---|---|\n")
            for kind, item, qs in covered:
                shown = "; ".join(f"`{q.replace('|', chr(92) + '|')}`" for q in qs[:3]) + (f" (+{len(qs) - 3})" if len(qs) > 3 else "")
                f.write(f"| {kind} | `{item.replace('|', chr(92) + '|')}` | {shown or 'NONE'} |\n")
            f.write("\n## API endpoints\n\n")
            f.write("Every endpoint of Prometheus 2.42's `/api/v1` except remote read (`/api/v1/read`, protobuf) and the admin TSDB "
                    "endpoints (`/api/v1/admin/tsdb/*`, disabled by default in Prometheus; HostTwin's `/api/v1/admin/*` are its own).\n\n")
            f.write("| check | result |\n|---|---|\n")
            for d, problem in api_rows:
                f.write(f"| `{d.replace('|', chr(92) + '|')}` | {'agrees' if not problem else 'DIFFERS: ' + problem.replace('|', chr(92) + '|')} |\n")
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
