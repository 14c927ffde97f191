#!/usr/bin/env bash
# Install everything Flightline needs into .venv (idempotent: skips when nothing changed).
#   1. a Python 3.11 virtualenv in .venv;
#   2. torch first (the CPU wheel), so nothing else drags in a CUDA build;
#   3. every other pin from requirements.txt;
#   4. horovod, built against the installed torch with the C++17 compiler wrapper;
#   5. this project, editable, so `import tasks` and the `flightline` CLI work everywhere.
# With CUDA (FLIGHTLINE_CUDA=1, or auto: nvidia-smi lists a GPU), torch must come with CUDA
# (FLIGHTLINE_TORCH_INDEX names the index, e.g. https://download.pytorch.org/whl/cu130) and
# horovod is built with NCCL (HOROVOD_GPU_OPERATIONS=NCCL) from the nvidia-nccl wheel, for this
# machine's GPU architectures; CUDA's compiler (nvcc) must be installed.
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

cuda=0
case "${FLIGHTLINE_CUDA:-auto}" in
  1) cuda=1 ;;
  auto)  # a GPU and CUDA's compiler; a driver alone (no toolkit) keeps the CPU install
    if [[ $(nvidia-smi -L 2>/dev/null || true) == *"GPU "* ]]; then
      if command -v nvcc >/dev/null || compgen -G '/usr/local/cuda*/bin/nvcc' >/dev/null; then cuda=1
      else echo "install: a GPU but no nvcc: installing for CPU (FLIGHTLINE_CUDA=1 to insist)" >&2; fi
    fi ;;
  0) ;;
  *) echo "install: FLIGHTLINE_CUDA must be auto, 1 or 0" >&2; exit 1 ;;
esac

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
stamp=.venv/.flightline-installed
want=$( (cat requirements.txt infra/requirements-images.txt pyproject.toml infra/install.sh infra/cxx17.sh
         echo "cuda=$cuda") | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "install: .venv is up to date"
  exit 0
fi

pin() { grep -E "^$1==" requirements.txt | head -1; }
echo "install: tooling and torch"
"${PIP[@]}" install -q "$(pin pip)" "$(pin setuptools)" "$(pin wheel)"
torch_index=()
[[ -n ${FLIGHTLINE_TORCH_INDEX:-} ]] && torch_index=(--index-url "$FLIGHTLINE_TORCH_INDEX")
"${PIP[@]}" install -q "${torch_index[@]}" "$(pin torch)"
torch_cuda() { .venv/bin/python -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)'; }
if [[ $cuda == 1 ]] && ! torch_cuda; then
  echo "install: torch without CUDA installed; reinstalling $(pin torch) with CUDA"
  "${PIP[@]}" uninstall -q -y torch  # a +cpu build satisfies the pin: pip would keep it
  "${PIP[@]}" install -q "${torch_index[@]}" "$(pin torch)"  # with the nvidia-* runtime it needs
  torch_cuda || { echo "install: the index has no CUDA build of $(pin torch); set FLIGHTLINE_TORCH_INDEX" \
                       "(e.g. https://download.pytorch.org/whl/cu130)" >&2; exit 1; }
fi

echo "install: requirements.txt (without horovod, built next)"
grep -vE '^(horovod|torch)==' requirements.txt > .venv/requirements-no-horovod.txt
"${PIP[@]}" install -q -r .venv/requirements-no-horovod.txt

# Horovod with NCCL: CMake needs a libnccl.so beside the wheel's libnccl.so.2, the GPUs'
# architectures, and CUDA's compiler. A CPU build in pip's cache must not be reused.
gpu_build=()
built=('\[X\] PyTorch')
if [[ $cuda == 1 ]]; then
  nvcc=$(command -v nvcc || compgen -G '/usr/local/cuda*/bin/nvcc' | head -1 || true)
  [[ -n $nvcc ]] || { echo "install: CUDA's compiler (nvcc) is needed to build horovod with NCCL" >&2; exit 1; }
  cuda_home=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$nvcc")")")}
  "${PIP[@]}" install -q "$(grep -E '^nvidia-nccl-cu13==' infra/requirements-images.txt)"
  nccl_pkg=$(.venv/bin/python -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))')
  mkdir -p .venv/nccl/lib
  ln -sfn "$nccl_pkg/include" .venv/nccl/include
  ln -sf "$nccl_pkg/lib/libnccl.so.2" .venv/nccl/lib/libnccl.so
  archs=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | tr -d ' .' | sort -u | paste -sd, -)
  gpu_build=(HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_INCLUDE="$ROOT/.venv/nccl/include"
             HOROVOD_NCCL_LIB="$ROOT/.venv/nccl/lib" HOROVOD_NCCL_LINK=SHARED
             HOROVOD_BUILD_CUDA_CC_LIST="$archs" CUDA_HOME="$cuda_home" PATH="$cuda_home/bin:$PATH")
  built+=('\[X\] NCCL')
fi
horovod_ok() {
  local check
  check=$(.venv/bin/horovodrun --check-build 2>/dev/null) || return 1
  for b in "${built[@]}"; do grep -q "$b" <<<"$check" || return 1; done
  horovod_torch_matches
}
# Horovod records the torch it was built against (horovod/metadata.json) and only warns when
# another torch is installed: after a torch upgrade it must be rebuilt.
horovod_torch_matches() {
  .venv/bin/python - <<'PY'
import json, pathlib, sys
import horovod, torch
meta = json.loads((pathlib.Path(horovod.__file__).parent / "metadata.json").read_text())
if meta.get("pytorch") != torch.__version__:
    print(f"install: horovod was built against torch {meta.get('pytorch')}, torch {torch.__version__} is installed",
          file=sys.stderr)
    sys.exit(1)
PY
}
if ! horovod_ok; then
  echo "install: building $(pin horovod) against torch$([[ $cuda == 1 ]] && echo ' with NCCL') (several minutes)"
  "${PIP[@]}" uninstall -q -y horovod 2>/dev/null || true
  # Never a wheel from pip's cache: it was built against whatever torch (CPU or CUDA) was
  # installed then, and pip keys it by horovod's version alone.
  env CXX="$ROOT/infra/cxx17.sh" CMAKE_POLICY_VERSION_MINIMUM=3.5 \
    HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
    HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 "${gpu_build[@]}" \
    "${PIP[@]}" install -q --no-build-isolation --no-cache-dir "$(pin horovod)"
fi

"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

echo "install: checking"
.venv/bin/horovodrun --check-build | tee .venv/horovod-check.txt
grep -q '\[X\] PyTorch' .venv/horovod-check.txt && grep -q '\[X\] Gloo' .venv/horovod-check.txt || {
  echo "install: horovod was built without PyTorch or Gloo" >&2; exit 1; }
horovod_torch_matches || exit 1
[[ $cuda == 0 ]] || grep -q '\[X\] NCCL' .venv/horovod-check.txt || {
  echo "install: horovod was built without NCCL" >&2; exit 1; }
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
