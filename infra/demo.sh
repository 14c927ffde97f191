#!/usr/bin/env bash
# The main job on embedded defaults: Airflow on SQLite, Spark local, data under ./data.
#   1. history: the 60 days before DATE landed and built in one Spark job (features-range);
#   2. the nightly data DAG for DATE through Airflow (`airflow dags test`: a real DAG run in the
#      metadata DB): drop, raw gate, Spark features, features gate, publish;
#   3. the training DAG on that window: the capacity choice from spot prices (the project's
#      snapshot without AWS credentials) and the cost budget, XGBoost and Horovod PyTorch, the
#      promotion decision, and the champion packaged as a Bento, checked on a live
#      `bentoml serve`, released;
#   4. the monitoring DAG for DATE: scoring, Evidently drift and quality reports, the retrain
#      decision;
# then prints where each output is and what the runs cost (the cost ledger).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DAY=${1:-2013-03-15}
export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.airflow}
export PATH=$ROOT/.venv/bin:$PATH
export GX_ANALYTICS_ENABLED=false
read -r H0 H1 HLAST < <(python3 -c "
from datetime import date, timedelta as t; d = date.fromisoformat('$DAY')
print(d - t(days=61), d - t(days=60), d - t(days=1))")
log=$AIRFLOW_HOME/demo-$DAY.log
: > "$log"
run() {  # run a step quietly into the log; show its tail if it fails
  echo "demo: $1"; shift
  if ! "$@" >> "$log" 2>&1; then tail -40 "$log" >&2; echo "demo: failed; full log in $log" >&2; exit 1; fi
}
run "history: landing $H0..$HLAST" flightline land --date "$H0" --to "$HLAST"
run "history: features $H1..$HLAST in one Spark job (gated per day)" \
  flightline features-range --from "$H1" --to "$HLAST"
run "flightline_daily for $DAY (Airflow dags test)" airflow dags test flightline_daily "$DAY"
run "flightline_training on the 60-day window (XGBoost + Horovod, promotion, Bento release)" \
  airflow dags test flightline_training "$DAY" -c '{"window_days": 60, "model_family": "both"}'
grep -E "PROMOTED|NOT promoted" "$log" | sed 's/^.*\(PROMOTED\|NOT promoted\)/gate: \1/' | tail -1 || true
run "flightline_monitoring for $DAY (Evidently drift and quality reports, retrain decision)" \
  airflow dags test flightline_monitoring "$DAY"
echo "demo: outputs for $DAY"
flightline outputs --date "$DAY"
echo "demo: model registry"
flightline models list
echo "demo: released model (serve it with: make serve)"
flightline models released
echo "demo: what these runs cost (the cost ledger; chart and totals per DAG and step)"
flightline cost report --from "$DAY" --to "$DAY" | python3 -c "
import json, sys; r = json.load(sys.stdin)
print(f\"  \${r['cost_usd']:.4f} paid, \${r['saving_usd']:.4f} saved against on-demand, {r['attempts']} task attempts; chart: {r['png']}\")
for d in r['per_dag']: print(f\"  {d['dag_id']}: \${d['cost_usd']:.4f} over {d['attempts']} attempts\")"
echo "demo: log $log"
