"""Training on one year of features (2 cores): the results table, the ablation, Horovod scaling.

Uses the features under FLIGHTLINE_DATA_ROOT when the 2013 year is published there, else
lands and builds it first (`features-range`, untimed). The fixed year split: train Jan-Aug,
validate Sep, test Oct-Dec. One run prints:

- **the results table**: each model family as the training flow fits it (XGBoost with its
  bounded search; XGBoost with the default parameters; the PyTorch model trained data-parallel
  with Horovod, 2 workers), each calibrated on the validation days as the flow does, beside the
  two baselines (historical late rate; logistic regression): ROC AUC, PR AUC, log loss, ECE
  (and the ECE before calibration), training seconds (search, fit and calibration);
- **the ablation**: XGBoost with the default parameters (learning rate 0.15, to keep its 11
  fits short), each feature family (``FEATURE_FAMILIES``) removed in turn (its columns blanked:
  a tree cannot split on them), the test ROC AUC and its change against all families;
- Horovod samples/s with 1 and 2 workers (2 epochs) and the scaling efficiency.

    .venv/bin/python bench/bench_training.py [--no-ablation]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from tasks.settings import Settings


def days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def year_split(s: Settings):
    """The fixed year split's (train Jan-Aug, valid Sep, test Oct-Dec) feature frames; lands
    and builds the 2013 year first (untimed) when it is not published under ``s``."""
    from tasks.features.staging import read_features
    from tasks.flows.range_build import run_range
    from tasks.landing import land_day
    from tasks.storage import Store

    year = days(date(2013, 1, 1), date(2013, 12, 31))
    if not all(Store(s).is_committed(s.partition("features", d)) for d in year):
        for d in [date(2012, 12, 31), *year]:
            land_day(d, s)
        run_range(year[0], year[-1], s)
    return (read_features(days(date(2013, 1, 1), date(2013, 8, 31)), s),
            read_features(days(date(2013, 9, 1), date(2013, 9, 30)), s),
            read_features(days(date(2013, 10, 1), date(2013, 12, 31)), s))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    args = ap.parse_args()
    s = Settings.from_env()
    tr, va, te = year_split(s)
    print(f"Training on one year of features: train {len(tr):,} (Jan-Aug), valid {len(va):,} "
          f"(Sep), test {len(te):,} rows (Oct-Dec); 2 cores")
    with tempfile.TemporaryDirectory(prefix="flightline-bench-training-") as work:
        results(Path(work), tr, va, te, s)
        if not args.no_ablation:
            ablation(tr, va, te)
        if not args.no_scaling:
            scaling(Path(work), tr, va, s)


def results(tmp: Path, tr, va, te, s: Settings) -> None:
    from tasks.feature_contract import LABEL
    from tasks.training.calibration import calibrate
    from tasks.training.data import xy
    from tasks.training.evaluate import HistoricalRateBaseline, logistic_baseline, metrics
    from tasks.training.models import FitOptions, fit

    y = te[LABEL].to_numpy()
    rows = []
    runs = [
        ("XGBoost, bounded search", "xgboost", s, {}),
        ("XGBoost, default parameters", "xgboost", s.with_overrides(tuning_trials=0), {}),
        ("PyTorch + Horovod, 2 workers", "torch-horovod", s, {}),
    ]
    for name, family, settings, params in runs:
        t = time.perf_counter()
        fitted = fit(family, tr, va, FitOptions(
            workers=2, workdir=tmp / family, checkpoint_uri=str(tmp / f"ckpt-{name}"),
            params=params, settings=settings, time_budget_s=3600))
        model, account = calibrate(fitted.model, va)
        secs = time.perf_counter() - t
        raw = metrics(y, fitted.model.predict_proba(te))
        m = metrics(y, model.predict_proba(te))
        tuning = fitted.info.get("tuning") or {}
        note = (f"{tuning['trials']} trials in {tuning['seconds']:.0f} s" if tuning.get("trials")
                else "") + (", " if tuning.get("trials") else "") + f"calibration: {account['method']}"
        rows.append((name, m, raw["ece"], secs, note))
        print(f"  {name}: calibration {account}", flush=True)
    prior = HistoricalRateBaseline().fit(tr, tr[LABEL].to_numpy())
    rows.append(("Baseline: historical late rate", metrics(y, prior.predict_proba(te)), None,
                 None, "carrier x origin x hour"))
    t = time.perf_counter()
    X_tr, y_tr, cats = xy(tr)
    logistic = logistic_baseline(X_tr, y_tr)
    secs = time.perf_counter() - t
    rows.append(("Baseline: logistic regression", metrics(y, logistic(xy(te, cats)[0])), None,
                 secs, "all features"))
    print("\n| model | ROC AUC | PR AUC | log loss | ECE | ECE uncalibrated | training s | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m, raw_ece, secs, note in rows:
        print(f"| {name} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {m['log_loss']:.4f} | "
              f"{m['ece']:.4f} | {'' if raw_ece is None else f'{raw_ece:.4f}'} | "
              f"{'' if secs is None else f'{secs:.0f}'} | {note} |", flush=True)


def ablation(tr, va, te) -> None:
    from tasks.feature_contract import CATEGORICAL_FEATURES, FEATURE_FAMILIES, LABEL
    from tasks.training import xgb
    from tasks.training.evaluate import metrics
    from tasks.training.xgb import XGBModel

    y = te[LABEL].to_numpy()

    def auc(blank: list[str]) -> float:
        # a blanked number is missing everywhere, a blanked category one value everywhere:
        # either way no tree can split on it
        frames = [df.assign(**{c: ("-" if c in CATEGORICAL_FEATURES else None) for c in blank})
                  for df in (tr, va, te)]
        booster, cats, _ = xgb.train(frames[0], frames[1], params={"learning_rate": 0.15})
        return metrics(y, XGBModel(booster, cats).predict_proba(frames[2]))["roc_auc"]

    full = auc([])
    print(f"\nAblation (XGBoost, default parameters but a learning rate of 0.15 to keep 11 fits "
          f"short; all families: test ROC AUC {full:.4f})")
    print("| family removed | columns | test ROC AUC | change |")
    print("|---|---|---|---|")
    for family, columns in FEATURE_FAMILIES.items():
        a = auc(columns)
        print(f"| {family} | {len(columns)} | {a:.4f} | {a - full:+.4f} |", flush=True)


def scaling(tmp: Path, tr, va, s: Settings) -> None:
    from tasks.training import torch_train

    sps = {}
    for workers in (1, 2):
        _, info = torch_train.train(tr, va, workdir=tmp / f"h{workers}",
                                    checkpoint_uri=str(tmp / f"c{workers}"), settings=s,
                                    workers=workers, epochs=2)
        sps[workers] = max(h["samples_per_s"] for h in info["history"])
        print(f"  Horovod {workers} worker(s): {sps[workers]:10,.0f} samples/s")
    print(f"  Horovod scaling efficiency 1 -> 2 workers: {sps[2] / (2 * sps[1]):.0%}")


if __name__ == "__main__":
    main()
