#!/usr/bin/env bash
# The GPU path in one command, on a machine with an NVIDIA GPU: install with CUDA (torch with
# CUDA, Horovod built with NCCL: infra/install.sh with FLIGHTLINE_CUDA=1), then bench/gpu_check.py
# (the training flow with gpu=on through run_step as a pod runs it; Horovod GPU against CPU;
# XGBoost at 10M rows GPU against CPU). Arguments go to gpu_check.py (--rows, --rounds, --epochs).
# Without a GPU it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(nvidia-smi -L 2>/dev/null || true) != *"GPU "* ]]; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi lists none): nothing to check"
  exit 0
fi
nvidia-smi -L
FLIGHTLINE_CUDA=1 bash infra/install.sh
.venv/bin/horovodrun --check-build | grep -E 'PyTorch|NCCL'
exec env GX_ANALYTICS_ENABLED=false .venv/bin/python bench/gpu_check.py "$@"
