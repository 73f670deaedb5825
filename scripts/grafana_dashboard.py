#!/usr/bin/env python3
"""Runs every query of a Grafana dashboard (Node Exporter Full) against Prometheus-compatible APIs as
Grafana does: template variables resolved through the API (label_values via /api/v1/series, as
Grafana's Prometheus data source does without a configured version), then each panel target as a range
query ($__interval, $__rate_interval as Grafana computes them) or an instant query.

  grafana_dashboard.py --dashboard FILE --target NAME=URL [--target NAME=URL ...] [--range 120]
                       [--scrape-interval 15] [--json OUT] [--expect-like NAME]

With two targets, the first is the reference (node_exporter + Prometheus): every query with data there
must have data on the others; --expect-like NAME makes that the exit status.
"""
import argparse, json, re, sys, time, urllib.parse, urllib.request


def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return json.loads(e.read())
        except Exception:
            return {"status": "error", "error": f"HTTP {e.code}"}


def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


def targets(dashboard):
    """(panel title, panel id, target) for every target with a PromQL expression."""
    out = []
    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []) or []:
            if t.get("expr"):  # hidden targets too: a user may unhide them
                out.append((p.get("title", ""), p.get("id"), t))
    return out


def grafana_interval(range_s, min_interval_s, max_points=1000):
    """Grafana's $__interval: range / max data points, rounded to a 'nice' interval, at least the minimum."""
    raw = range_s / max_points
    nice = [0.001, 0.01, 0.1, 1, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    rounded = next((n for n in nice if n >= raw), raw)
    return max(rounded, min_interval_s)


def duration(s):
    return f"{int(s)}s" if s >= 1 else f"{int(s * 1000)}ms"


def parse_interval(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text or "")
    if not m:
        return None
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def label_values(base, query, start, end):
    """Grafana's label_values(selector, label): the label's distinct values over matching series, sorted."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query)
    if not m:
        raise ValueError(f"unsupported variable query {query}")
    selector, label = m.group(1), m.group(2)
    r = get(base, "/api/v1/series", {"match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    values = sorted({s[label] for s in r.get("data", []) if label in s})
    # The same answer through /api/v1/label/<name>/values (Grafana's newer path), checked.
    r2 = get(base, f"/api/v1/label/{label}/values", {"match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    if r2.get("status") == "success" and sorted(r2["data"]) != values:
        print(f"  note: label values of {label} differ between /series and /label/{label}/values: {values} vs {r2['data']}")
    return values


def substitute(expr, variables):
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    return expr


def run_target(name, base, dashboard, range_s, scrape_s):
    end = time.time()
    start = end - range_s
    variables = {}
    resolved = {}
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
        values = label_values(base, substitute(q, variables), start, end)
        resolved[v["name"]] = values
        variables[v["name"]] = values[0] if values else ""
    interval = grafana_interval(range_s, scrape_s)
    results = []
    for title, pid, t in targets(dashboard):
        min_iv = parse_interval(t.get("interval")) or scrape_s
        iv = grafana_interval(range_s, min_iv)
        rate_iv = max(iv + scrape_s, 4 * scrape_s)
        v = dict(variables, __rate_interval=duration(rate_iv), __interval=duration(iv), __interval_ms=str(int(iv * 1000)),
                 __range=duration(range_s), __range_s=str(int(range_s)))
        expr = substitute(t["expr"], v)
        if t.get("instant") and not t.get("range"):
            r = get(base, "/api/v1/query", {"query": expr, "time": f"{end:.3f}"})
        else:
            r = get(base, "/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": duration(iv)})
        ok = r.get("status") == "success"
        has = ok and bool(r["data"]["result"]) and r["data"]["resultType"] in ("vector", "matrix")
        results.append({"panel": title, "panel_id": pid, "ref": t.get("refId"), "expr": t["expr"], "status": r.get("status"),
                        "error": r.get("error", "")[:200], "has_data": has})
    return {"name": name, "variables": resolved, "interval": interval, "queries": results}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--target", action="append", required=True, help="NAME=URL")
    ap.add_argument("--range", type=float, default=120, help="dashboard time range in seconds (ending now)")
    ap.add_argument("--scrape-interval", type=float, default=15, help="the data source's scrape interval setting (s)")
    ap.add_argument("--json")
    ap.add_argument("--expect-like", help="fail when a query with data on the reference has none on this target")
    args = ap.parse_args()
    dashboard = json.load(open(args.dashboard))
    runs = []
    for spec in args.target:
        name, url = spec.split("=", 1)
        runs.append(run_target(name, url.rstrip("/"), dashboard, args.range, args.scrape_interval))
    ref = runs[0]
    total = len(ref["queries"])
    print(f"{dashboard.get('title')} (revision {dashboard.get('version')}): {total} queries in "
          f"{len({(q['panel_id'], q['panel']) for q in ref['queries']})} panels; range {args.range:.0f} s")
    status = 0
    for run in runs:
        errors = [q for q in run["queries"] if q["status"] != "success"]
        with_data = sum(q["has_data"] for q in run["queries"])
        panels_with = len({q["panel_id"] for q in run["queries"] if q["has_data"]})
        print(f"  {run['name']}: variables {json.dumps(run['variables'])}; {with_data} of {total} queries with data "
              f"({panels_with} panels), {len(errors)} errors")
        for q in errors[:10]:
            print(f"    error: [{q['panel']}] {q['expr'][:100]}: {q['error']}")
    for run in runs[1:]:
        missing = [a for a, b in zip(ref["queries"], run["queries"]) if a["has_data"] and not b["has_data"]]
        extra = sum(1 for a, b in zip(ref["queries"], run["queries"]) if b["has_data"] and not a["has_data"])
        print(f"  {run['name']} vs {ref['name']}: {len(missing)} queries with data under {ref['name']} and none under "
              f"{run['name']}; {extra} with data only under {run['name']}")
        for q in missing:
            print(f"    missing: [{q['panel']}] {q['expr'][:140]}")
        if args.expect_like == run["name"] and missing:
            status = 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
