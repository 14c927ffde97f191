#!/usr/bin/env bash
# Initialise the project's Airflow home (.airflow/, git-ignored): render airflow.cfg from
# infra/airflow.cfg.in and migrate the metadata DB. Safe to run again.
#   infra/airflow-init.sh [sqlite|postgres]
# sqlite (the default): a file in the Airflow home, nothing to run. postgres: a local PostgreSQL
# server from the distribution's package, its cluster in the Airflow home
# (infra/local_postgres.py; `make airflow DB=postgres` starts it with the stack).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DB=${1:-sqlite}
export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.airflow}
mkdir -p "$AIRFLOW_HOME" "$AIRFLOW_HOME/openlineage"
case $DB in
  sqlite) conn="sqlite:///$AIRFLOW_HOME/airflow.db?timeout=60" ;;
  postgres)
    "$ROOT/.venv/bin/python" infra/local_postgres.py init
    conn=$("$ROOT/.venv/bin/python" infra/local_postgres.py url) ;;
  *) echo "airflow-init: DB must be sqlite or postgres, not '$DB'" >&2; exit 2 ;;
esac
# Secrets are generated once per Airflow home and kept (0600) beside the config.
for name in jwt_secret api_secret; do
  [[ -s $AIRFLOW_HOME/.$name ]] || (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(64))' > "$AIRFLOW_HOME/.$name")
done
# The simple auth manager's login: generated here, owner-only, so it is never world-readable
# (the API server keeps an existing file's passwords).
pwfile=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
(umask 077; python3 - "$pwfile" <<'PY'
import json, os, secrets, sys
path = sys.argv[1]
users = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
for name in ("admin", "flightline"):
    users.setdefault(name, secrets.token_urlsafe(12))
tmp = path + ".new"
with open(tmp, "w") as fh:
    json.dump(users, fh)
os.replace(tmp, path)
PY
)
chmod 600 "$pwfile" "$AIRFLOW_HOME/.jwt_secret" "$AIRFLOW_HOME/.api_secret"
(umask 077; sed -e "s#@ROOT@#$ROOT#g" -e "s#@HOME@#$AIRFLOW_HOME#g" -e "s#@JWT_SECRET@#$(cat "$AIRFLOW_HOME/.jwt_secret")#" \
    -e "s#@API_SECRET@#$(cat "$AIRFLOW_HOME/.api_secret")#" -e "s#@SQL_ALCHEMY_CONN@#$conn#" \
    infra/airflow.cfg.in > "$AIRFLOW_HOME/airflow.cfg.new")
mv "$AIRFLOW_HOME/airflow.cfg.new" "$AIRFLOW_HOME/airflow.cfg"
migrate=("$ROOT/.venv/bin/airflow" db migrate)
[[ $DB == postgres ]] && migrate=("$ROOT/.venv/bin/python" infra/local_postgres.py run -- "${migrate[@]}")
"${migrate[@]}" > "$AIRFLOW_HOME/db-migrate.log" 2>&1 || {
  tail -30 "$AIRFLOW_HOME/db-migrate.log" >&2; echo "airflow-init: db migrate failed" >&2; exit 1; }
# SQLite in write-ahead-log mode (a persistent property of the file): readers no longer hold a
# lock that blocks a writer's commit. In the default rollback-journal mode, a backfill's run-note
# and XCom writes through the API server could wait the whole 60 s lock timeout behind a reader,
# while the API server answered nothing, and tasks failed on timeouts.
db=$AIRFLOW_HOME/airflow.db
if [[ $DB == sqlite && -f $db && ${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite} == sqlite* ]]; then
  python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=60); assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"' "$db"
fi
if [[ $DB == postgres ]]; then
  echo "airflow-init: AIRFLOW_HOME=$AIRFLOW_HOME (metadata DB: local PostgreSQL, $AIRFLOW_HOME/postgres)"
else
  echo "airflow-init: AIRFLOW_HOME=$AIRFLOW_HOME (metadata DB: $AIRFLOW_HOME/airflow.db)"
fi
