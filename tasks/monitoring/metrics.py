"""The monitoring metrics table: one row per day and model version, accumulated.

``reports/monitoring/metrics.parquet`` is rewritten whole (atomically) on each update; a day
monitored again replaces its row. The monitoring DAG runs one day at a time
(``max_active_runs=1``), so updates do not race.
"""

from __future__ import annotations

import io
from datetime import date

from tasks.settings import Settings
from tasks.storage import Store, join

COLUMNS = ["day", "model_version", "rows", "drift_share", "drifted_features", "drifted",
           "prediction_drift_score", "prediction_drift_threshold", "prediction_drifted",
           "thresholds", "roc_auc", "registry_auc", "auc_drop",
           "window_auc", "window_auc_drop", "ece", "drift_breach", "breach", "served_rows",
           "served_drift_share", "served_skewed", "retrain", "retrain_reason", "recorded_at"]


def metrics_uri(settings: Settings) -> str:
    return join(settings.zone("reports"), "monitoring", "metrics.parquet")


def read_metrics(settings: Settings):
    """The table as a pandas frame sorted by day (empty, with its columns, before any row)."""
    import pandas as pd

    store = Store(settings)
    uri = metrics_uri(settings)
    if not store.exists(uri):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    df = pd.read_parquet(io.BytesIO(store.read_bytes(uri)))
    df["day"] = pd.to_datetime(df["day"]).dt.date
    return df.sort_values(["day", "recorded_at"]).reset_index(drop=True)


def with_row(df, row: dict, *, keep_time: bool = False):
    """``df`` with the row of (day, model_version) added or replaced (in memory); the row's
    ``recorded_at`` is now, or the replaced row's with ``keep_time``."""
    from datetime import UTC, datetime

    import pandas as pd

    same = (df["day"] == row["day"]) & (df["model_version"] == row["model_version"])
    stamp = (df[same]["recorded_at"].iloc[-1] if keep_time and same.any()
             else datetime.now(UTC).isoformat())
    new = pd.DataFrame([{c: row.get(c) for c in COLUMNS} | {"recorded_at": stamp}])
    out = pd.concat([df[~same], new], ignore_index=True) if (~same).any() else new
    return out.sort_values(["day", "recorded_at"]).reset_index(drop=True)


def write(df, settings: Settings) -> None:
    """Publish the table (one atomic write of the whole file)."""
    import pandas as pd

    out = df.copy()
    out["day"] = pd.to_datetime(out["day"])
    buf = io.BytesIO()
    out.to_parquet(buf, index=False)
    Store(settings).write_bytes(metrics_uri(settings), buf.getvalue())


def day_row(df, day: date):
    """The latest row recorded for ``day`` (any model version), or None."""
    rows = df[df["day"] == day]
    return None if rows.empty else rows.iloc[-1]
