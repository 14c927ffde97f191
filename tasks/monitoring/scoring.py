"""Batch scoring: the released model scores one published day of features.

The model is the one the ``released`` alias serves (its registry version), or the champion
before anything was released. Every row of the day's published features gets its probability
and the model version, written as ``predictions/scored/dt=<day>/`` (published atomically; a
rerun with the same model writes the same rows). Rows the server logged for the day
(:mod:`tasks.serving.prediction_log`) are counted as the production view.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from tasks.settings import Settings
from tasks.storage import Store, join
from tasks.training import registry

PREDICTION = "prediction"


class NoModel(LookupError):
    """Nothing to monitor yet: no released model and no champion."""


@dataclass
class Scored:
    """The scoring step's result: which model scored which day, and where the rows are."""

    day: str
    version: str
    model_source: str  # "released" or "champion"
    uri: str
    rows: int
    served_rows: int  # rows the serving prediction log holds for the day

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Scored:
        return cls(**d)


def scored_uri(day: date, settings: Settings) -> str:
    return join(settings.zone("predictions"), "scored", f"dt={day.isoformat()}")


def monitored_version(settings: Settings) -> tuple[str, str]:
    """(version, source): the released model's version, else the champion's."""
    rel = registry.released(settings)
    if rel:
        return rel["version"], "released"
    champ = registry.champion(settings)
    if champ:
        return champ["version"], "champion"
    raise NoModel("no released model and no champion yet: train one first (flightline_training)")


def score_day(day: date, settings: Settings) -> Scored:
    """Score the day's published features with the monitored model (see the module doc)."""
    from tasks.features.staging import read_features
    from tasks.serving.prediction_log import read_prediction_log

    version, source = monitored_version(settings)
    store = Store(settings)
    if not store.is_committed(settings.partition("features", day)):
        raise LookupError(f"no published features for {day} ({settings.partition('features', day)}):"
                          " its data did not pass its gates, or the day has not run")
    df = read_features([day], settings)
    df[PREDICTION] = registry.load_model(version, settings).predict_proba(df)
    df["model_version"] = version
    uri = scored_uri(day, settings)
    with tempfile.TemporaryDirectory(prefix="flightline-scored-") as tmp:
        folder = Path(tmp) / "part"
        folder.mkdir()
        df.to_parquet(folder / "part-0.parquet", index=False)
        store.publish_folder(folder, uri)
    return Scored(day=day.isoformat(), version=version, model_source=source, uri=uri,
                  rows=len(df), served_rows=len(read_prediction_log(day, settings)))


def read_scored(day: date, settings: Settings):
    """The day's scored rows (features, label, prediction, model version)."""
    import io

    import pandas as pd

    store = Store(settings)
    uri = scored_uri(day, settings)
    if not store.is_committed(uri):
        raise LookupError(f"{day} has not been scored ({uri})")
    return pd.concat([pd.read_parquet(io.BytesIO(store.read_bytes(join(uri, n))))
                      for n in store.list(uri) if n.endswith(".parquet")], ignore_index=True)
