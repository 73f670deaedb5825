#!/usr/bin/env bash
# Forecast accuracy of HostTwin beside statsforecast (AutoTheta, MSTL, AutoETS, seasonal naive) on the
# same windows: `hosttwin bench forecast` and scripts/forecast_baselines.py. Installs statsforecast
# from PyPI into a virtual environment (not needed by the tests).
#
#   scripts/bench-forecast.sh [NAB_DIR] [ORIGINS]
set -euo pipefail
cd "$(dirname "$0")/.."
NAB=${1:-../shared/data/nab}; ORIGINS=${2:-3}
VENV=${VENV:-/tmp/hosttwin-statsforecast}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import statsforecast' 2>/dev/null || "$VENV/bin/pip" install -q statsforecast
swift build -c release --product hosttwin >/dev/null
echo "== HostTwin"
.build/release/hosttwin bench forecast --nab "$NAB" --origins "$ORIGINS" | tail -1
echo "== statsforecast (same windows)"
"$VENV/bin/python" scripts/forecast_baselines.py "$NAB" "$ORIGINS" > /tmp/hosttwin-forecast-baselines.json
python3 - /tmp/hosttwin-forecast-baselines.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for k in sorted(r, key=lambda k: r[k]["mean_mase"]):
    x = r[k]
    print("%-14s mean MASE %.3f  mean sMAPE %.1f  coverage 80 %% %.1f, 95 %% %.1f  scaled Winkler 80 %% %.2f, 95 %% %.2f  (%.0f s)" % (
        k, x["mean_mase"], x["mean_smape"], 100 * x["mean_coverage80"], 100 * x["mean_coverage95"], x["mean_winkler80"], x["mean_winkler95"], x["seconds"]))
PY
