"""Monitoring on 2 cores: one day's run, and the drift report at scale against a scipy floor.

Data: 20 days of real features (2013-06-01..20) built into a temporary data root (untimed), an
XGBoost model trained on the first 14 (its reference sample: 5,000 rows).
- one day's monitoring run (scoring, the drift report, the quality report and the decision),
  the median of 3 days, each step timed;
- the drift report alone (Evidently, HTML and JSON written) with 100k and 1M current rows
  (the 20 days' rows resampled) against the 5,000-row reference, beside the same per-column
  statistics computed directly with scipy in the same run (the floor): each column by the test
  Evidently chose for it (normed Wasserstein distance, Jensen-Shannon distance of value
  frequencies, or the Kolmogorov-Smirnov p-value), and the largest difference between the two.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

FIRST, LAST = date(2013, 6, 1), date(2013, 6, 20)


def _prepare(root: Path):
    from tasks.flows.range_build import run_range
    from tasks.flows.training import decide_promotion, prepare_split, train_candidate
    from tasks.landing import land_day
    from tasks.settings import Settings

    s = Settings.from_env({**os.environ, "FLIGHTLINE_DATA_ROOT": str(root / "data"),
                           "FLIGHTLINE_BENTOML_HOME": str(root / "bentoml")})
    for i in range(-1, (LAST - FIRST).days + 1):
        land_day(FIRST + timedelta(days=i), s)
    run_range(FIRST, LAST, s)
    split = prepare_split(FIRST + timedelta(days=13), 14, s)
    decide_promotion([train_candidate("xgboost", split, run_key="bench", settings=s)], s, force=True)
    return s


def _scipy_floor(cur, ref, methods: dict[str, str]) -> dict:
    """Each column's statistic with scipy, by the method Evidently chose for it: normed
    Wasserstein distance, Jensen-Shannon distance of value frequencies (categories, and numbers
    with few distinct values), or the Kolmogorov-Smirnov p-value."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import ks_2samp, wasserstein_distance

    out = {}
    for c, method in methods.items():
        r, k = ref[c].dropna(), cur[c].dropna()
        if method.startswith("Wasserstein"):
            out[c] = wasserstein_distance(r.to_numpy(float), k.to_numpy(float)) / (np.std(r.to_numpy(float)) or 1.0)
        elif method.startswith("Jensen"):
            keys = sorted(set(r) | set(k))
            rp = r.value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
            cp = k.value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
            out[c] = float(jensenshannon(rp, cp))
        elif "K-S" in method:
            out[c] = float(ks_2samp(r.to_numpy(float), k.to_numpy(float)).pvalue)
    return out


def main() -> None:
    import pandas as pd

    from tasks.features.staging import read_features
    from tasks.flows.monitoring import decide_retrain, drift_report, quality_report, score_day
    from tasks.monitoring.scoring import PREDICTION
    from tasks.training import registry
    from tasks.training.reference import read_reference

    with tempfile.TemporaryDirectory(prefix="flightline-bench-monitoring-") as work:
        s = _prepare(Path(work))
        runs = []
        for day in (LAST - timedelta(days=2), LAST - timedelta(days=1), LAST):
            t = [time.perf_counter()]
            scored = score_day(day, s)
            t.append(time.perf_counter())
            drift = drift_report(scored, s)
            t.append(time.perf_counter())
            quality = quality_report(scored, s)
            t.append(time.perf_counter())
            decide_retrain(drift, quality, s)
            t.append(time.perf_counter())
            runs.append([b - a for a, b in zip(t, t[1:], strict=False)] + [t[-1] - t[0]])
        med = [statistics.median(r[i] for r in runs) for i in range(5)]
        print("One day's monitoring run (median of 3 days, 2 cores), seconds:")
        for name, v in zip(["score_day", "drift_report", "quality_report", "decide_retrain",
                            "whole day"], med, strict=True):
            print(f"  {name:16s} {v:6.2f}" + ("   (target: 30 or less)" if name == "whole day" else ""))

        version = registry.champion(s)["version"]
        ref = read_reference(version, s)
        pool = read_features([FIRST + timedelta(days=i) for i in range(20)], s)
        pool[PREDICTION] = registry.load_model(version, s).predict_proba(pool)
        print(f"\nDrift report alone, {len(ref):,} reference rows, 36 features + prediction:")
        print(f"  {'current rows':>12s} {'Evidently s':>12s} {'scipy floor s':>14s} {'ratio':>7s} {'max |diff|':>11s}")
        for n in (100_000, 1_000_000):
            cur = pool.sample(n=n, replace=True, random_state=1).reset_index(drop=True)
            t0 = time.perf_counter()
            result = drift_report(scored, s, current=cur)
            ev = time.perf_counter() - t0
            t0 = time.perf_counter()
            methods = {c: e["method"] for c, e in result.features.items() if e["score"] is not None}
            floor = _scipy_floor(cur, ref, methods)
            sp = time.perf_counter() - t0
            diffs = [abs(result.features[c]["score"] - v) for c, v in floor.items()]
            print(f"  {n:12,d} {ev:12.2f} {sp:14.2f} {ev / sp:6.1f}x {max(diffs):11.2g}"
                  + ("   (target: 3x or less)" if n == 100_000 else ""))
            del cur
        pd.set_option("display.width", 120)


if __name__ == "__main__":
    main()
