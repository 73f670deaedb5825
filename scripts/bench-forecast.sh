#!/usr/bin/env bash
# Forecast accuracy of HostTwin beside statsforecast (AutoTheta, MSTL, AutoETS, seasonal naive) on the
# same windows of one NAB category: `hosttwin bench forecast` and scripts/forecast_baselines.py; then,
# per series, which method had the lowest MASE. Installs statsforecast from PyPI into a virtual
# environment (not needed by the tests).
#
#   scripts/bench-forecast.sh [NAB_DIR] [ORIGINS] [CATEGORY]
#   e.g. scripts/bench-forecast.sh ../shared/data/nab 7 realTweets   (daily and weekly seasons)
set -euo pipefail
cd "$(dirname "$0")/.."
NAB=${1:-../shared/data/nab}; ORIGINS=${2:-3}; CATEGORY=${3:-realAWSCloudwatch}
VENV=${VENV:-/tmp/hosttwin-statsforecast}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import statsforecast' 2>/dev/null || "$VENV/bin/pip" install -q statsforecast
swift build -c release --product hosttwin >/dev/null
echo "== HostTwin ($CATEGORY, $ORIGINS origins)"
.build/release/hosttwin bench forecast --nab "$NAB" --origins "$ORIGINS" --category "$CATEGORY" --ablation --json > /tmp/hosttwin-forecast.json
echo "== statsforecast (same windows)"
"$VENV/bin/python" scripts/forecast_baselines.py "$NAB" "$ORIGINS" "$CATEGORY" > /tmp/hosttwin-forecast-baselines.json
python3 - /tmp/hosttwin-forecast.json /tmp/hosttwin-forecast-baselines.json <<'PY'
import json, sys
h, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
r["HostTwin"] = {"mean_mase": h["meanMase"], "mean_smape": h["meanSmape"], "mean_coverage80": h["coverage80"], "mean_coverage95": h["coverage95"],
                 "mean_winkler80": h["winkler80"], "mean_winkler95": h["winkler95"], "seconds": float("nan"),
                 "series": {s["series"]: {"mase": s["mase"]} for s in h["series"]}}
for k in sorted(r, key=lambda k: r[k]["mean_mase"]):
    x = r[k]
    print("%-14s mean MASE %.3f  mean sMAPE %.1f  coverage 80 %% %.1f, 95 %% %.1f  scaled Winkler 80 %% %.2f, 95 %% %.2f  (%.0f s)" % (
        k, x["mean_mase"], x["mean_smape"], 100 * x["mean_coverage80"], 100 * x["mean_coverage95"], x["mean_winkler80"], x["mean_winkler95"], x["seconds"]))
best = min((k for k in r if k != "HostTwin"), key=lambda k: r[k]["mean_mase"])
print("HostTwin against the best baseline (%s): %+.1f %% mean MASE" % (best, 100 * (r["HostTwin"]["mean_mase"] / r[best]["mean_mase"] - 1)))
print("lowest MASE per series:")
wins = {}
for s in sorted(r["HostTwin"]["series"]):
    scores = {k: r[k]["series"][s]["mase"] for k in r if s in r[k]["series"]}
    w = min(scores, key=scores.get)
    wins[w] = wins.get(w, 0) + 1
    print("  %-45s %-14s %s" % (s.split("/")[-1], w, "  ".join("%s %.3f" % (k, v) for k, v in sorted(scores.items()))))
print("wins: " + ", ".join("%s %d" % kv for kv in sorted(wins.items(), key=lambda kv: -kv[1])))
PY
