#!/usr/bin/env bash
# Airflow UI + API on http://localhost:8080 with the project's AIRFLOW_HOME.
# Ctrl-C (SIGINT) stops it and all its children cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.airflow}
export PATH=$ROOT/.venv/bin:$PATH
pwfile=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
(
  for _ in $(seq 1 120); do
    if [[ -s $pwfile ]]; then
      echo
      echo "  Flightline UI: http://localhost:8080   login: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(', '.join(f'{u} / {p}' for u,p in d.items()))" "$pwfile")"
      echo "  (stop with Ctrl-C)"
      echo
      break
    fi
    sleep 1
  done
) &
exec airflow standalone
