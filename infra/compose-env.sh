#!/usr/bin/env bash
# Generate docker-compose.yaml's secrets once: .env (git-ignored, 0600) with the Postgres and
# object-store passwords and Airflow's signing keys, and .secrets/ with the UI login's passwords.
# Safe to run again: existing values are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
touch .env
gen() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
for var in POSTGRES_PASSWORD AIRFLOW_JWT_SECRET AIRFLOW_API_SECRET_KEY AWS_SECRET_ACCESS_KEY AIRFLOW_ADMIN_PASSWORD; do
  grep -q "^$var=" .env || echo "$var=$(gen)" >> .env
done
grep -q "^AWS_ACCESS_KEY_ID=" .env || echo "AWS_ACCESS_KEY_ID=flightline" >> .env
grep -q "^AIRFLOW_UID=" .env || echo "AIRFLOW_UID=$(id -u)" >> .env
mkdir -p .secrets
python3 - <<'PY'
import json
env = dict(line.split("=", 1) for line in open(".env").read().split() if "=" in line)
with open(".secrets/simple_auth_manager_passwords.json", "w") as f:
    json.dump({"admin": env["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
chmod 600 .env .secrets/simple_auth_manager_passwords.json
echo "compose-env: .env and .secrets/ ready (log in as admin with AIRFLOW_ADMIN_PASSWORD from .env)"
