#!/usr/bin/env python3
"""statsforecast baselines on exactly the windows of `hosttwin bench forecast` (see scripts/bench-forecast.sh).

For each series of a NAB CATEGORY (default realAWSCloudwatch; season m = one day of steps): missing rows
filled as HostTwin fills gaps (the value a day earlier, else the last one); origins at the last ORIGINS
days; train on everything before the origin, forecast the next m steps; MSTL with a daily and, when the training part
holds two weeks, a weekly season; MASE scaled by the training part's
in-sample daily seasonal naive MAE; sMAPE in percent; 80 % and 95 % intervals: coverage and the Winkler
score scaled like MASE. Prints JSON: per method, per series means and overall.
"""
import json, os, sys, time
import numpy as np

def parse_time(s):
    import datetime
    return int(datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp())

def regular(t, v, step, m):
    """HostTwin's ForecastHistory.regular: one value per step, a gap takes the value a period earlier."""
    n = (t[-1] - t[0]) // step + 1
    out = [float("nan")] * n
    for ti, vi in zip(t, v):
        i = (ti - t[0]) // step
        if 0 <= i < n:
            out[i] = vi
    prev = v[0]
    for i in range(n):
        if out[i] != out[i]:
            out[i] = out[i - m] if m > 0 and i >= m else prev
        prev = out[i]
    return np.array(out)

def load(root, category):
    d = os.path.join(root, "data", category)
    out = []
    for n in sorted(os.listdir(d)):
        if not n.endswith(".csv"):
            continue
        t, v = [], []
        for i, line in enumerate(open(os.path.join(d, n))):
            if i == 0:
                continue
            a, b = line.strip().split(",")[:2]
            t.append(parse_time(a)); v.append(float(b))
        step = max(1, int(np.median(np.diff(t))))
        m = 86400 // step
        out.append((category + "/" + n, regular(t, v, step, m), m))
    return out

def mase(actual, fc, train, m):
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    return float(np.mean(np.abs(actual - fc)) / scale) if scale > 0 else float("nan")

def scaled_winkler(actual, lo, hi, alpha, train, m):
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    w = (hi - lo) + 2 / alpha * np.maximum(lo - actual, 0) + 2 / alpha * np.maximum(actual - hi, 0)
    return float(np.mean(w) / scale) if scale > 0 else float("nan")

def smape(actual, fc):
    d = np.abs(actual) + np.abs(fc)
    r = np.where(d > 0, 200 * np.abs(actual - fc) / np.where(d > 0, d, 1), 0)
    return float(np.mean(r))

def main():
    root, origins = sys.argv[1], int(sys.argv[2])
    category = sys.argv[3] if len(sys.argv) > 3 else "realAWSCloudwatch"
    from statsforecast.models import AutoTheta, MSTL, AutoETS, SeasonalNaive
    methods = {
        "SeasonalNaive": lambda m, n: SeasonalNaive(season_length=m),
        "AutoTheta": lambda m, n: AutoTheta(season_length=m),
        "MSTL": lambda m, n: MSTL(season_length=[m, 7 * m] if n >= 14 * m else m),
        # Seasonal AutoETS at season 288 is impractically slow; the non-seasonal one runs.
        "AutoETS": lambda m, n: AutoETS(season_length=1),
    }
    result = {k: {"series": {}, "seconds": 0.0} for k in methods}
    for name, y, m in load(root, category):
        for k, make in methods.items():
            ms, ss, c, w80, w95, in80, in95, n = 0.0, 0.0, 0, 0.0, 0.0, 0, 0, 0
            t0 = time.time()
            for j in range(origins, 0, -1):
                origin = len(y) - j * m
                if origin <= 2 * m:
                    continue
                train, actual = y[:origin], y[origin:origin + m]
                try:
                    out = make(m, len(train)).forecast(y=train, h=len(actual), level=[80, 95])
                    fc = out["mean"]
                    lo80, hi80, lo95, hi95 = out["lo-80"], out["hi-80"], out["lo-95"], out["hi-95"]
                except Exception as e:  # a model that fails on a series counts as seasonal naive, without intervals
                    print(f"{k} failed on {name}: {e}", file=sys.stderr)
                    fc = np.array([train[len(train) - m + (i % m)] for i in range(len(actual))])
                    lo80 = hi80 = lo95 = hi95 = fc
                ms += mase(actual, fc, train, m); ss += smape(actual, fc); c += 1
                w80 += scaled_winkler(actual, lo80, hi80, 0.2, train, m); w95 += scaled_winkler(actual, lo95, hi95, 0.05, train, m)
                in80 += int(np.sum((actual >= lo80) & (actual <= hi80))); in95 += int(np.sum((actual >= lo95) & (actual <= hi95))); n += len(actual)
            result[k]["seconds"] += time.time() - t0
            if c:
                result[k]["series"][name] = {"mase": ms / c, "smape": ss / c, "winkler80": w80 / c, "winkler95": w95 / c,
                                             "coverage80": in80 / n, "coverage95": in95 / n}
    for k in result:
        s = result[k]["series"].values()
        result[k]["mean_mase"] = float(np.mean([x["mase"] for x in s]))
        result[k]["mean_smape"] = float(np.mean([x["smape"] for x in s]))
        for key in ("winkler80", "winkler95", "coverage80", "coverage95"):
            result[k]["mean_" + key] = float(np.mean([x[key] for x in s]))
    print(json.dumps(result, indent=1, sort_keys=True))

if __name__ == "__main__":
    main()
