#!/usr/bin/env python3
"""statsforecast baselines on exactly the windows of `hosttwin bench forecast` (see scripts/bench-forecast.sh).

For each realAWSCloudwatch series (5-minute steps, season 288 = one day): origins at the last ORIGINS days;
train on everything before the origin, forecast the next 288 steps; MASE scaled by the training part's
in-sample daily seasonal naive MAE; sMAPE in percent. Prints JSON: per method, per series means and overall.
"""
import json, os, sys, time
import numpy as np

def load(root):
    d = os.path.join(root, "data", "realAWSCloudwatch")
    out = []
    for n in sorted(os.listdir(d)):
        if not n.endswith(".csv"):
            continue
        v = []
        for i, line in enumerate(open(os.path.join(d, n))):
            if i == 0:
                continue
            v.append(float(line.strip().split(",")[1]))
        out.append(("realAWSCloudwatch/" + n, np.array(v)))
    return out

def mase(actual, fc, train, m):
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    return float(np.mean(np.abs(actual - fc)) / scale) if scale > 0 else float("nan")

def smape(actual, fc):
    d = np.abs(actual) + np.abs(fc)
    r = np.where(d > 0, 200 * np.abs(actual - fc) / np.where(d > 0, d, 1), 0)
    return float(np.mean(r))

def main():
    root, origins = sys.argv[1], int(sys.argv[2])
    from statsforecast.models import AutoTheta, MSTL, AutoETS, SeasonalNaive
    m = 288
    methods = {
        "SeasonalNaive": lambda: SeasonalNaive(season_length=m),
        "AutoTheta": lambda: AutoTheta(season_length=m),
        "MSTL": lambda: MSTL(season_length=m),
        # Seasonal AutoETS at season 288 is impractically slow; the non-seasonal one runs.
        "AutoETS": lambda: AutoETS(season_length=1),
    }
    result = {k: {"series": {}, "seconds": 0.0} for k in methods}
    for name, y in load(root):
        for k, make in methods.items():
            ms, ss, c = 0.0, 0.0, 0
            t0 = time.time()
            for j in range(origins, 0, -1):
                origin = len(y) - j * m
                if origin <= 2 * m:
                    continue
                train, actual = y[:origin], y[origin:origin + m]
                try:
                    fc = make().forecast(y=train, h=len(actual))["mean"]
                except Exception as e:  # a model that fails on a series counts as seasonal naive
                    print(f"{k} failed on {name}: {e}", file=sys.stderr)
                    fc = np.array([train[len(train) - m + (i % m)] for i in range(len(actual))])
                ms += mase(actual, fc, train, m); ss += smape(actual, fc); c += 1
            result[k]["seconds"] += time.time() - t0
            if c:
                result[k]["series"][name] = {"mase": ms / c, "smape": ss / c}
    for k in result:
        s = result[k]["series"].values()
        result[k]["mean_mase"] = float(np.mean([x["mase"] for x in s]))
        result[k]["mean_smape"] = float(np.mean([x["smape"] for x in s]))
    print(json.dumps(result, indent=1, sort_keys=True))

if __name__ == "__main__":
    main()
