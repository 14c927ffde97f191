#!/usr/bin/env bash
# Install everything Flightline needs into .venv (idempotent: skips when nothing changed).
#   1. a Python 3.11 virtualenv in .venv;
#   2. torch first (the CPU wheel), so nothing else drags in a CUDA build;
#   3. every other pin from requirements.txt;
#   4. horovod, built against the installed torch with the C++17 compiler wrapper;
#   5. this project, editable, so `import tasks` and the `flightline` CLI work everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
  echo "install: Flightline needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
command -v java >/dev/null || { echo "install: Spark needs Java 17 on PATH (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
command -v cmake >/dev/null || { echo "install: building horovod needs cmake and g++ (apt-get install cmake g++)" >&2; exit 1; }
# The local stack's PostgreSQL metadata DB (`make airflow DB=postgres`; `make test` runs the live
# test on it too): the distribution's server package. Debian keeps its binaries in
# /usr/lib/postgresql/<version>/bin; infra/local_postgres.py finds them there.
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && ! command -v postgres >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "install: PostgreSQL server (apt-get install postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "install: no PostgreSQL server found: DB=postgres and its live test need one (apt-get install postgresql)" >&2
  fi
fi
# The browser tests of the UI pages drive the distribution's Chromium through Playwright (which
# cannot download its own browser without internet).
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "install: Chromium for the browser tests (apt-get install chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install: no chromium found: the browser tests need it (apt-get install chromium)" >&2
  fi
fi

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
stamp=.venv/.flightline-installed
want=$(cat requirements.txt pyproject.toml infra/install.sh infra/cxx17.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "install: .venv is up to date"
  exit 0
fi

pin() { grep -E "^$1==" requirements.txt | head -1; }
echo "install: tooling and torch"
"${PIP[@]}" install -q "$(pin pip)" "$(pin setuptools)" "$(pin wheel)"
"${PIP[@]}" install -q "$(pin torch)"

echo "install: requirements.txt (without horovod, built next)"
grep -vE '^(horovod|torch)==' requirements.txt > .venv/requirements-no-horovod.txt
"${PIP[@]}" install -q -r .venv/requirements-no-horovod.txt

if ! .venv/bin/horovodrun --check-build 2>/dev/null | grep -q '\[X\] PyTorch'; then
  echo "install: building $(pin horovod) against torch (several minutes; cached by pip afterwards)"
  CXX="$ROOT/infra/cxx17.sh" CMAKE_POLICY_VERSION_MINIMUM=3.5 \
  HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
    "${PIP[@]}" install -q --no-build-isolation "$(pin horovod)"
fi

"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

echo "install: checking"
.venv/bin/horovodrun --check-build | tee .venv/horovod-check.txt
grep -q '\[X\] PyTorch' .venv/horovod-check.txt && grep -q '\[X\] Gloo' .venv/horovod-check.txt || {
  echo "install: horovod was built without PyTorch or Gloo" >&2; exit 1; }
.venv/bin/python - <<'PY'
import importlib.metadata as md
import pyspark
# pyspark-client overwrites pyspark's Python files: the two must be the same release.
v_client = md.version("pyspark-client")
assert pyspark.__version__ == v_client, (pyspark.__version__, v_client)
import pandas
assert int(pandas.__version__.split(".")[0]) < 3, "evidently 0.7 needs pandas < 3"
print("install: pyspark", pyspark.__version__, "pandas", pandas.__version__)
PY
echo "$want" > "$stamp"
echo "install: done"
