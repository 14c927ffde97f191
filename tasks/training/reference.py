"""The reference that monitoring compares a model against.

Each registry version keeps ``reference.parquet``: a fixed-size, seeded sample of the model's
training rows (its training window's published features, key and label included) with the
model's own prediction on each row (``prediction``). Drift reports compare a day's features and
predictions with it; the sample is the same on every rerun of the same training, because the
training frame's row order is fixed (partitions in day order, rows in flight order) and the seed
is.

Beside it, ``drift_thresholds.json``: each monitored column's drift threshold, calibrated on the
training window's days against the sample (:mod:`tasks.monitoring.calibration`), which the
daily drift report uses.
"""

from __future__ import annotations

from pathlib import Path

from tasks.feature_contract import ROW_ORDER
from tasks.settings import Settings

REFERENCE_FILE = "reference.parquet"
PREDICTION = "prediction"
SEED = 2013


def reference_sample(model, train_df, rows: int, seed: int = SEED):
    """``rows`` training rows drawn without replacement (all of them when there are fewer),
    in flight order, with the model's prediction."""
    if rows < 1:
        raise ValueError(f"reference sample size must be at least 1 row, got {rows}")
    if train_df.empty:
        raise ValueError("no training rows to draw a reference sample from")
    n = min(rows, len(train_df))
    sample = train_df.sample(n=n, random_state=seed) if n < len(train_df) else train_df.copy()
    sample = sample.sort_values(["flight_date", *ROW_ORDER], kind="stable").reset_index(drop=True)
    sample[PREDICTION] = model.predict_proba(sample)
    return sample


def save_reference(model, train_df, folder: Path, settings: Settings) -> dict:
    """Write the sample and its calibrated drift thresholds into a version folder; returns what
    the model card records of them."""
    import time

    from tasks.monitoring.calibration import calibrate, save_thresholds

    sample = reference_sample(model, train_df, settings.reference_rows)
    sample.to_parquet(Path(folder) / REFERENCE_FILE, index=False)
    started = time.perf_counter()
    days = train_df.assign(**{PREDICTION: model.predict_proba(train_df)})
    thresholds = save_thresholds(calibrate(sample, days), folder)
    thresholds["seconds_with_scoring"] = round(time.perf_counter() - started, 3)
    return {"file": REFERENCE_FILE, "rows": len(sample), "seed": SEED,
            "drawn_from": "training rows", "of_rows": len(train_df), "thresholds": thresholds}


def read_reference(version: str, settings: Settings):
    """A registry version's reference sample as a pandas frame."""
    import io

    import pandas as pd

    from tasks.storage import Store, join
    from tasks.training import registry

    uri = join(registry.show(version, settings)["uri"], REFERENCE_FILE)
    store = Store(settings)
    if not store.exists(uri):
        raise LookupError(f"model version {version} has no reference sample ({uri}); "
                          "it was trained before versions kept one")
    return pd.read_parquet(io.BytesIO(store.read_bytes(uri)))
