"""The features gate's batch: a staged features partition, validated by ``expectations/features.json``."""

from __future__ import annotations

from datetime import date

from tasks.features.staging import StagedFeatures
from tasks.quality.gate import Batch, expected_source_day
from tasks.settings import Settings
from tasks.storage import Store, join


def features_batch(staged: StagedFeatures, settings: Settings) -> Batch:
    """The staged rows as the features gate validates them; the staged folder is quarantined to
    ``quarantine/dt=D/features`` on failure (nothing is published)."""
    import tempfile

    import pandas as pd

    store = Store(settings)
    data = join(staged.features_uri, "data")
    if not store.is_folder(data):
        raise ValueError(f"features gate: nothing staged at {staged.features_uri} "
                         f"for {staged.day.isoformat()}")
    with tempfile.TemporaryDirectory(prefix="flightline-gate-") as scratch:
        df = pd.read_parquet(store.local_folder(data, scratch))
    return frame_batch(staged.day, df, staged.features_uri, settings)


def frame_batch(day: date, df, source: str, settings: Settings) -> Batch:
    """The features gate's batch of ``day``'s rows ``df`` (read from ``source``, the folder
    quarantined on failure)."""
    df["flight_date"] = df["flight_date"].astype(str)
    df["sched_dep_utc"] = df["sched_dep_utc"].astype(str)
    src = expected_source_day(day, settings)
    return Batch(gate="features", day=day, frames={"features": df},
                 params={"flight_dates": [src.isoformat()]}, source=source,
                 quarantine_uri=join(settings.partition("quarantine", day), "features"))
