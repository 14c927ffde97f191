"""The GPU path, run end to end on this machine's GPU (``bench/gpu_check.sh`` installs first).

1. The training flow with ``gpu=on``, through ``run_step`` as a trainer's pod runs it: XGBoost on
   CUDA and the Horovod trainer with NCCL, each registering a candidate whose card names the GPU.
2. The Horovod trainer's throughput on one GPU against the same trainer on the CPU (all cores),
   same data, same epochs: samples/s and the ratio.
3. XGBoost at 10M rows (the window's features replicated), GPU against CPU (all cores), the same
   fixed number of rounds from one ``QuantileDMatrix`` each, built apart from training: seconds
   and the ratio.

Figures are ratios measured in this one run. Options: ``--rows`` (10,000,000), ``--rounds`` (200),
``--epochs`` (2); ``--smoke`` runs every part on the CPU alone at a small size (the script's own
check on a machine without a GPU; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

FIRST, LAST = date(2013, 3, 1), date(2013, 3, 24)
GPU, CUDA = "on", "cuda"  # the trainers' gpu option and XGBoost's device (--smoke: off, cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()

    from tasks.training.hardware import gpu_names

    global GPU, CUDA
    gpus = gpu_names()
    if args.smoke:
        GPU, CUDA = "off", "cpu"
        args.rows, args.rounds, args.epochs = 200_000, 10, 1
        print("gpu_check --smoke: every part on the CPU, small")
    elif not gpus:
        print("gpu_check: no NVIDIA GPU visible (nvidia-smi); nothing to check")
        return 0
    else:
        print(f"gpu_check: {len(gpus)} GPU(s): {', '.join(gpus)}; {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory(prefix="flightline-gpu-check-") as work:
        settings = _features(Path(work))
        split = _flow(settings)
        _horovod(settings, split, Path(work), args.epochs)
        _xgboost_10m(settings, split, args.rows, args.rounds)
    return 0


def _features(work: Path):
    from tasks.flows.range_build import run_range
    from tasks.landing import land_day
    from tasks.settings import Settings

    s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(work / "data"),
                           "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml")})
    t = time.perf_counter()
    for i in range(-1, (LAST - FIRST).days + 1):
        land_day(FIRST + timedelta(days=i), s)
    out = run_range(FIRST, LAST, s)
    assert out["published"] == (LAST - FIRST).days + 1, out["failed"]
    print(f"features {FIRST}..{LAST}: {time.perf_counter() - t:.1f} s")
    return s


def _flow(s) -> dict:
    """Both trainers with gpu=on through run_step, as their pods run them."""
    from tasks.flows import training
    from tasks.flows.steps import run_step
    from tasks.storage import Store, join

    split = training.prepare_split(LAST, 24, s).to_dict()  # what the DAG's first task returns
    for family, task in (("xgboost", "train_xgboost"), ("torch-horovod", "train_torch_horovod")):
        t = time.perf_counter()
        cand = run_step(f"training.{task}", [split], s,
                        {"run_key": f"gpu-check-{family}", "gpu": GPU, "workers": 2})
        card = json.loads(Store(s).read_text(join(cand["uri"], "card.json")))
        hw = card.get("hardware", {})
        assert hw.get("gpu") or GPU == "off", f"{family}: the card names no GPU: {hw}"
        print(f"flow gpu={GPU} {family:14s} {time.perf_counter() - t:6.1f} s  test ROC AUC "
              f"{cand['metrics']['roc_auc']:.4f}  on {hw['gpu']} ({hw.get('workers', 1)} rank(s))")
    return split


def _frames(s, split: dict):
    from tasks.features.staging import read_features

    def days(key):
        return [date.fromisoformat(x) for x in split[key]]

    return read_features(days("train_days"), s), read_features(days("valid_days"), s)


def _horovod(s, split: dict, work: Path, epochs: int) -> None:
    from tasks.training import torch_train

    tr, va = _frames(s, split)
    sps = {}
    for name, device in (("gpu", CUDA), ("cpu", "cpu")):
        _, info = torch_train.train(tr, va, workdir=work / f"hvd-{name}", settings=s,
                                    checkpoint_uri=str(work / f"ckpt-{name}"), workers=1,
                                    gpu=device == "cuda", epochs=epochs)
        sps[name] = max(h["samples_per_s"] for h in info["history"])
    print(f"Horovod trainer, one rank: GPU {sps['gpu']:,.0f} samples/s, CPU ({os.cpu_count()} cores) "
          f"{sps['cpu']:,.0f} samples/s: {sps['gpu'] / sps['cpu']:.1f}x (target 5x)")


def _xgboost_10m(s, split: dict, rows: int, rounds: int) -> None:
    import numpy as np
    import xgboost

    from tasks.training.data import xy
    from tasks.training.xgb import DEFAULT_PARAMS

    tr, _ = _frames(s, split)
    X, y, _cats = xy(tr)
    reps = -(-rows // len(X))
    X = X.loc[np.tile(np.arange(len(X)), reps)[:rows]].reset_index(drop=True)
    y = np.tile(np.asarray(y), reps)[:rows]
    secs = {}
    for name, device in (("gpu", CUDA), ("cpu", "cpu")):
        t = time.perf_counter()
        dm = xgboost.QuantileDMatrix(X, label=y, enable_categorical=True, max_bin=256)
        build = time.perf_counter() - t
        params = {**DEFAULT_PARAMS, "device": device, "nthread": os.cpu_count(),
                  "objective": "binary:logistic", "tree_method": "hist"}
        params.pop("n_estimators", None)
        params.pop("early_stopping_rounds", None)
        t = time.perf_counter()
        xgboost.train(params, dm, num_boost_round=rounds)
        secs[name] = time.perf_counter() - t
        print(f"XGBoost {rows:,} rows, {rounds} rounds on {device}: QuantileDMatrix {build:.1f} s, "
              f"training {secs[name]:.1f} s")
    print(f"XGBoost {rows:,} rows: GPU {secs['cpu'] / secs['gpu']:.1f}x CPU ({os.cpu_count()} cores; "
          "target 20x)")


if __name__ == "__main__":
    sys.exit(main())
