"""The serving request schema, generated from the feature contract (no second list of fields).

The API takes the **feature row** (the columns of a published features partition that the model
reads), not raw flight fields: a third of the features are windowed aggregates over *other*
flights (delays at the origin in the last 3 hours, the carrier's late share, the plane's previous
leg), which Spark computes for the whole day; one raw flight on its own cannot produce them. A
client sends what the daily features partition holds for the flight (the feature pipeline is the
one place those values are computed, for training and serving alike).

Every model feature must be present (``null`` where the contract allows it); numbers must be
finite JSON numbers, not strings, booleans, NaN or infinity; no unknown fields; a category with
a closed domain (carrier, origin) must be one of its values. An open category (dest, plane
attributes) may take a value the model never saw: like the offline model, it then counts as
missing. The flight's key columns are optional and go to the prediction log only (to join
labels later).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tasks.feature_contract import (
    CATEGORICAL_FEATURES,
    CATEGORY_DOMAINS,
    MODEL_FEATURES,
    NOT_NULL_FEATURES,
    NUMERIC_FEATURES,
)

Number = Annotated[float, Field(allow_inf_nan=False)]
Category = Annotated[str, Field(min_length=1, max_length=64)]


def _feature_fields() -> dict:
    fields: dict = {}
    for name in MODEL_FEATURES:
        kind = Number if name in NUMERIC_FEATURES else Category
        if name in CATEGORY_DOMAINS:
            kind = Literal[tuple(CATEGORY_DOMAINS[name])]
        assert name in NUMERIC_FEATURES or name in CATEGORICAL_FEATURES
        if name in NOT_NULL_FEATURES:
            fields[name] = (kind, Field(..., description=f"{name} (required, not null)"))
        else:
            fields[name] = (kind | None, Field(..., description=f"{name} (required, may be null)"))
    # the flight's key (optional): logged with the prediction, never a model input
    fields["flight_date"] = (date | None, Field(None, description="the flight's date (log only)"))
    fields["flight"] = (Annotated[int, Field(ge=1, le=9999)] | None,
                        Field(None, description="flight number (log only)"))
    fields["tailnum"] = (Annotated[str, Field(max_length=16)] | None,
                         Field(None, description="plane tail number (log only)"))
    fields["sched_dep_utc"] = (Annotated[str, Field(max_length=32)] | None,
                               Field(None, description="scheduled departure, UTC (log only)"))
    return fields


FeatureRow: type[BaseModel] = create_model(
    "FeatureRow", __config__=ConfigDict(extra="forbid", strict=True), **_feature_fields())
FeatureRow.__doc__ = "One flight's feature row, as its published features partition holds it."


REQUEST_COLUMNS = MODEL_FEATURES + ["flight_date", "flight", "tailnum", "sched_dep_utc"]


def to_requests(df) -> list[dict]:
    """Rows of a features frame as request bodies' rows (JSON-ready: ISO dates, null for NaN)."""
    import pandas as pd

    out = df[[c for c in REQUEST_COLUMNS if c in df.columns]].copy()
    if "flight_date" in out:
        out["flight_date"] = out["flight_date"].map(lambda d: None if pd.isna(d) else str(d)[:10])
    if "sched_dep_utc" in out:
        out["sched_dep_utc"] = out["sched_dep_utc"].map(
            lambda t: None if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if "flight" in out:
        out["flight"] = out["flight"].astype("Int64")
    out = out.astype(object).where(out.notna(), None)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
            for rec in out.to_dict("records")]
