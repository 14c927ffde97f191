"""XGBoost at 10M training rows on CPU, inside the default time budget, the matrix build apart.

The 2013 demo year holds 218k training rows (Jan-Aug); ``--rows`` (default 10M) of training rows
are made of replicas of them, every numeric feature of every replica but the first moved by
seeded noise (2% of the column's spread), so the sketch and the splits see 10M distinct rows;
the validation (Sep) and test (Oct-Dec) days are the real ones. The figures are measured in one
process, the build's memory as the peak resident memory above what the process held before it:

1. **matrix build, whole** (the baseline, what the trainer did before): the model matrix of the
   whole frame (:func:`tasks.training.data.xy`) then one ``QuantileDMatrix``;
2. **matrix build, in batches** (what the trainer does): ``QuantileDMatrix`` from an iterator over
   500k-row batches (:func:`tasks.training.xgb.matrix`), against the whole build as a ratio;
3. **the trainer as the training flow calls it** (``xgb.fit``, the default settings and the
   default time budget of 60 minutes): build, search (trials on a 500k-row sample), final fit
   on every row, and the steps the flow runs after it (calibration, evaluation with the
   baselines, the reference sample); test ROC AUC on the real Oct-Dec days.

    .venv/bin/python bench/bench_training_scale.py [--rows 10000000] [--no-fit]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import threading
import time
from pathlib import Path

from tasks.settings import Settings

BUDGET_MINUTES = 60  # the training flow's default time budget


class PeakMemory:
    """Peak resident memory of this process while the block runs, above what it held before."""

    def __enter__(self):
        import psutil

        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.gib = (self.peak - self.base) / 2**30


def replicas(tr, rows: int):
    """``rows`` training rows: replicas of ``tr``, numerics moved by seeded noise."""
    import numpy as np
    import pandas as pd

    from tasks.feature_contract import NUMERIC_FEATURES

    rng = np.random.default_rng(2013)
    spread = {c: float(np.nanstd(tr[c].to_numpy(dtype="float64"))) or 1.0
              for c in NUMERIC_FEATURES}
    parts, have = [], 0
    for r in range(-(-rows // len(tr))):
        part = tr.iloc[: rows - have].copy()
        if r:
            for c in NUMERIC_FEATURES:
                v = part[c].to_numpy(dtype="float64")
                part[c] = v + rng.normal(0, 0.02 * spread[c], len(v))
        parts.append(part)
        have += len(part)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    import psutil
    import xgboost as xgb
    from bench_training import year_split  # the same fixed split (this folder is on the path)

    from tasks.feature_contract import LABEL
    from tasks.training.data import categories, xy
    from tasks.training.xgb import BATCH_ROWS, DEFAULT_PARAMS, matrix

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--no-fit", action="store_true", help="the two builds only")
    args = ap.parse_args()
    s = Settings.from_env()
    tr, va, te = year_split(s)
    t = time.perf_counter()
    big = replicas(tr, args.rows)
    del tr
    print(f"XGBoost at {len(big):,} training rows (replicas of the 2013 Jan-Aug rows, made in "
          f"{time.perf_counter() - t:.0f} s); valid {len(va):,} (Sep), test {len(te):,} (Oct-Dec); "
          f"the process holds {psutil.Process().memory_info().rss / 2**30:.1f} GiB with it; 2 cores",
          flush=True)
    cats = categories(big)
    gc.collect()

    with PeakMemory() as whole_mem:
        t = time.perf_counter()
        X, y, _ = xy(big, cats)
        dm = xgb.QuantileDMatrix(X, y, enable_categorical=True, max_bin=DEFAULT_PARAMS["max_bin"])
        whole_s = time.perf_counter() - t
    del X, y, dm
    gc.collect()
    with PeakMemory() as batch_mem:
        t = time.perf_counter()
        dm = matrix(big, cats, max_bin=DEFAULT_PARAMS["max_bin"])
        batch_s = time.perf_counter() - t
    del dm
    gc.collect()
    print("\n| matrix build | seconds | peak memory above the frame, GiB | vs whole |")
    print("|---|---|---|---|")
    print(f"| whole frame, then QuantileDMatrix (before) | {whole_s:.1f} | {whole_mem.gib:.2f} | 1.00x |")
    print(f"| QuantileDMatrix from {BATCH_ROWS:,}-row batches (now) | {batch_s:.1f} | "
          f"{batch_mem.gib:.2f} | {batch_s / whole_s:.2f}x time, "
          f"{batch_mem.gib / whole_mem.gib:.2f}x memory |", flush=True)
    if not args.no_fit:
        fit_as_the_flow_does(big, va, te, s, LABEL)


def fit_as_the_flow_does(big, va, te, s: Settings, label: str) -> None:
    from tasks.training.calibration import calibrate
    from tasks.training.evaluate import evaluate, metrics
    from tasks.training.models import FitOptions, fit
    from tasks.training.reference import save_reference

    budget = BUDGET_MINUTES * 60
    with tempfile.TemporaryDirectory(prefix="flightline-bench-scale-") as work:
        start = time.perf_counter()
        with PeakMemory() as mem:
            fitted = fit("xgboost", big, va, FitOptions(
                workdir=Path(work), settings=s, time_budget_s=budget,
                checkpoint_uri=str(Path(work) / "ckpt")))
        t = time.perf_counter()
        model, account = calibrate(fitted.model, va)
        folder = Path(work) / "version"
        model.save(folder)
        evaluation = evaluate(model, big, te, folder)
        save_reference(model, big, folder, s)
        after_s = time.perf_counter() - t
        total = time.perf_counter() - start
    info = fitted.info
    tuning = info.get("tuning") or {}
    # the fit's own share of the budget is what the search left (the trimmed booster keeps only
    # its best rounds, so the round count cannot tell why boosting ended)
    early = info["train_seconds"] < budget - tuning.get("seconds", 0) - 5
    test = metrics(te[label].to_numpy(), model.predict_proba(te))
    print(f"\nThe trainer as the flow calls it (default settings, time budget {BUDGET_MINUTES} min):")
    print("| part | seconds |")
    print("|---|---|")
    print(f"| matrices (train in batches, validation) | {info['matrix_seconds']:.0f} |")
    print(f"| search: {tuning.get('trials', 0)} trials finished, {tuning.get('pruned', 0)} pruned, "
          f"on a {tuning.get('rows', 0):,}-row sample | "
          f"{tuning.get('seconds', 0):.0f} |")
    print(f"| final fit on {info['rows']['train']:,} rows: {info['rounds']} rounds, best "
          f"{info['best_iteration']}, ended by {'early stopping' if early else 'the time budget'} | "
          f"{info['train_seconds']:.0f} |")
    print(f"| calibration ({account['method']}), evaluation with baselines, reference | {after_s:.0f} |")
    print(f"| **total** | **{total:.0f}** ({total / budget:.0%} of the budget) |")
    print(f"Peak memory of the fit above the frame: {mem.gib:.2f} GiB. Test ROC AUC "
          f"{test['roc_auc']:.4f} (logistic baseline {evaluation.baselines['logistic_regression']:.4f}), "
          f"ECE {test['ece']:.4f}; parameters {info['params']}", flush=True)


if __name__ == "__main__":
    main()
