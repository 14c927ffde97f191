#!/usr/bin/env bash
# The main job on embedded defaults: Airflow on SQLite, Spark local, data under ./data.
# Runs the daily DAG for one logical date through Airflow (`airflow dags test`: a real DAG run in
# the metadata DB, executed in this process), then prints where each output is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DAY=${1:-2013-01-15}
export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.airflow}
export PATH=$ROOT/.venv/bin:$PATH
export GX_ANALYTICS_ENABLED=false
log=$AIRFLOW_HOME/demo-$DAY.log
echo "demo: running flightline_daily for $DAY (log: $log)"
if ! airflow dags test flightline_daily "$DAY" > "$log" 2>&1; then
  tail -40 "$log" >&2
  echo "demo: the DAG run failed; full log in $log" >&2
  exit 1
fi
grep -E "DagRun Finished|state=" "$log" | tail -3 || true
flightline outputs --date "$DAY"
