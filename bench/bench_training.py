"""Training on one year of features (2 cores): XGBoost time and AUC, Horovod scaling.

Uses the features under FLIGHTLINE_DATA_ROOT when the 2013 year is published there, else
lands and builds it first (`features-range`, ~5 minutes, untimed). Split as the reference point
was measured: train Jan-Aug, validate Sep, test Oct-Dec.
- XGBoost with native categorical splits vs the same model on one-hot columns (time, test AUC),
  beside the two baselines (historical late rate; logistic regression);
- Horovod samples/s with 1 and 2 workers (same data, 2 epochs) and the scaling efficiency.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from tasks.settings import Settings


def days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def main() -> None:
    from tasks.features.staging import read_features
    from tasks.flows.range_build import run_range
    from tasks.landing import land_day
    from tasks.storage import Store

    s = Settings.from_env()
    year = days(date(2013, 1, 1), date(2013, 12, 31))
    if not all(Store(s).is_committed(s.partition("features", d)) for d in year):
        for d in [date(2012, 12, 31), *year]:
            land_day(d, s)
        run_range(year[0], year[-1], s)
    tr = read_features(days(date(2013, 1, 1), date(2013, 8, 31)), s)
    va = read_features(days(date(2013, 9, 1), date(2013, 9, 30)), s)
    te = read_features(days(date(2013, 10, 1), date(2013, 12, 31)), s)
    print(f"Training on one year of features: train {len(tr):,} (Jan-Aug), valid {len(va):,} "
          f"(Sep), test {len(te):,} rows (Oct-Dec); 2 cores")
    with tempfile.TemporaryDirectory(prefix="flightline-bench-training-") as work:
        _measure(Path(work), tr, va, te, s)


def _measure(tmp: Path, tr, va, te, s: Settings) -> None:
    import xgboost

    from tasks.training import torch_train, xgb
    from tasks.training.data import xy
    from tasks.training.evaluate import HistoricalRateBaseline, logistic_baseline, metrics
    from tasks.training.xgb import XGBModel

    y = te["label_late15"].to_numpy()
    res = {}
    for mode in ("native", "onehot"):
        t = time.perf_counter()
        booster, cats, info = xgb.train(tr, va, categorical=mode)
        secs = time.perf_counter() - t
        if mode == "native":
            XGBModel(booster, cats).save(tmp / "m")
            auc = metrics(y, XGBModel.load(tmp / "m").predict_proba(te))["roc_auc"]
        else:
            X, _, _ = xy(te, cats)
            X = xgb._onehot(X, cats)
            p = booster.predict(xgboost.DMatrix(X), iteration_range=(0, booster.best_iteration + 1))
            auc = metrics(y, p)["roc_auc"]
        res[mode] = (secs, auc, info["best_iteration"])
    base = res["native"][0]
    for mode, (secs, auc, it) in res.items():
        print(f"  XGBoost, {mode:6s} categoricals   {secs:6.1f} s  {secs / base:4.2f}x   "
              f"test ROC AUC {auc:.4f} ({it + 1} trees)")
    hist = HistoricalRateBaseline().fit(tr, tr["label_late15"].to_numpy())
    X_tr, y_tr, cats = xy(tr)
    X_te, _, _ = xy(te, cats)
    print(f"  baseline: historical late rate     test ROC AUC {metrics(y, hist.predict_proba(te))['roc_auc']:.4f}")
    print(f"  baseline: logistic regression      test ROC AUC {metrics(y, logistic_baseline(X_tr, y_tr)(X_te))['roc_auc']:.4f}")
    sps = {}
    for workers in (1, 2):
        _, info = torch_train.train(tr, va, workdir=tmp / f"h{workers}", checkpoint_uri=str(tmp / f"c{workers}"),
                                    settings=s, workers=workers, epochs=2)
        sps[workers] = max(h["samples_per_s"] for h in info["history"])
        print(f"  Horovod {workers} worker(s): {sps[workers]:10,.0f} samples/s "
              f"(best valid AUC {max(h['valid_auc'] for h in info['history']):.4f})")
    print(f"  Horovod scaling efficiency 1 -> 2 workers: {sps[2] / (2 * sps[1]):.0%}")


if __name__ == "__main__":
    main()
