"""The features gate's batch: a staged features partition, validated by ``expectations/features.json``."""

from __future__ import annotations

from pathlib import Path

from tasks.features.staging import StagedFeatures
from tasks.quality.gate import Batch, expected_source_day
from tasks.settings import Settings
from tasks.storage import join


def features_batch(staged: StagedFeatures, settings: Settings) -> Batch:
    """The staged rows as the features gate validates them; the staged folder is quarantined to
    ``quarantine/dt=D/features`` on failure (nothing is published)."""
    import pandas as pd

    data = Path(staged.features_uri) / "data"
    if not data.is_dir():
        raise ValueError(f"features gate: nothing staged at {staged.features_uri} "
                         f"for {staged.day.isoformat()}")
    df = pd.read_parquet(data)
    df["flight_date"] = df["flight_date"].astype(str)
    df["sched_dep_utc"] = df["sched_dep_utc"].astype(str)
    src = expected_source_day(staged.day, settings)
    return Batch(gate="features", day=staged.day, frames={"features": df},
                 params={"flight_dates": [src.isoformat()]}, source=staged.features_uri,
                 quarantine_uri=join(settings.partition("quarantine", staged.day), "features"))
