"""Batch scoring: the released model scores one published day of features.

The model is the one the ``released`` alias serves (its registry version), or the champion
before anything was released. Every row of the day's published features gets its probability
and the model version, written as ``predictions/scored/dt=<day>/`` (published atomically; a
rerun with the same model writes the same rows). Rows the server logged for the day
(:mod:`tasks.serving.prediction_log`) are counted as the production view.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store, join
from tasks.training import registry

PREDICTION = "prediction"
#: How the served and batch views of a flight are matched.
SERVED_KEY = ["carrier", "origin", "flight", "sched_dep_utc"]
#: Served and batch probabilities of one flight by one model further apart than this are skew.
SKEW_TOLERANCE = 1e-6


class NoModel(LookupError):
    """Nothing to monitor yet: no released model and no champion."""


@dataclass
class Scored(Result):
    """The scoring step's result: which model scored which day, and where the rows are."""

    day: str
    version: str
    model_source: str  # "released" or "champion"
    uri: str
    rows: int
    served_rows: int  # rows the serving prediction log holds for the day
    served: dict = field(default_factory=dict)  # the production view: see served_summary


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
    served = read_prediction_log(day, settings)
    return Scored(day=day.isoformat(), version=version, model_source=source, uri=uri,
                  rows=len(df), served_rows=len(served),
                  served=served_summary(served, df, version) if len(served) else {})


def _key_frame(df):
    import pandas as pd

    out = df[SERVED_KEY].copy()
    out["sched_dep_utc"] = pd.to_datetime(out["sched_dep_utc"], utc=True, errors="coerce")
    out["flight"] = pd.to_numeric(out["flight"], errors="coerce").astype("Int64")
    out["carrier"], out["origin"] = out["carrier"].astype(str), out["origin"].astype(str)
    return out


def served_summary(served, scored, version: str) -> dict:
    """The served rows against the batch-scored day: how many are flights of the day, how many
    the same model version scored both ways, and how many of those disagree (skew)."""
    left = _key_frame(served)
    left["served"] = served["late_probability"].to_numpy()
    left["served_version"] = served["model_version"].to_numpy()
    right = _key_frame(scored).assign(batch=scored[PREDICTION].to_numpy()).drop_duplicates(SERVED_KEY)
    joined = left.merge(right, on=SERVED_KEY, how="left")
    matched = joined["batch"].notna()
    same = matched & (joined["served_version"] == version)
    diff = (joined.loc[same, "served"] - joined.loc[same, "batch"]).abs()
    skewed = joined.loc[same][diff > SKEW_TOLERANCE]
    return {"rows": len(served), "matched": int(matched.sum()), "compared": int(same.sum()),
            "skewed": int(len(skewed)),
            "max_abs_diff": float(diff.max()) if len(diff) else None,
            "versions": sorted(str(v) for v in served["model_version"].dropna().unique()),
            "skewed_examples": [{"carrier": r.carrier, "flight": int(r.flight),
                                 "sched_dep_utc": str(r.sched_dep_utc), "served": r.served,
                                 "batch": r.batch} for r in skewed.head(5).itertuples()]}


def served_frame(day: date, settings: Settings):
    """The day's served rows as a scored-like frame (features and ``PREDICTION``)."""
    from tasks.serving.prediction_log import read_prediction_log

    return read_prediction_log(day, settings).rename(columns={"late_probability": PREDICTION})


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
