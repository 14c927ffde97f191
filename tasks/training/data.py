"""Training data: a trailing window of published feature partitions, split by date.

Never a random split: same-day rows share weather and congestion, so a random split leaks
(0.806 vs 0.679 ROC AUC on the same rows). Test is the most recent days, validation the days
before them, train the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from tasks.feature_contract import CATEGORICAL_FEATURES, LABEL, MODEL_FEATURES, NUMERIC_FEATURES
from tasks.features.staging import read_features
from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store


@dataclass
class Split(Result):
    """The training flow's first result: the window's days, by role, and the exact partitions."""

    end: str
    window_days: int
    train_days: list[str]
    valid_days: list[str]
    test_days: list[str]
    partitions: list[str] = field(default_factory=list)  # lineage: the exact partitions used


class NotEnoughHistory(ValueError):
    """The training window holds too few published feature days: a state to wait out (backfill
    more days), not a failure of the run."""


def available_days(settings: Settings, end: date, window_days: int) -> list[date]:
    """Published (committed) feature days in ``(end - window_days, end]``."""
    store = Store(settings)
    days = []
    for i in range(window_days):
        d = end - timedelta(days=i)
        if store.is_committed(settings.partition("features", d)):
            days.append(d)
    return sorted(days)


def newest_published(settings: Settings, up_to: date) -> date | None:
    """The newest committed feature day on or before ``up_to`` (None: none at all)."""
    store = Store(settings)
    days = []
    for name in store.list(settings.zone("features")):
        try:
            day = date.fromisoformat(name.removeprefix("dt="))
        except ValueError:
            continue  # hidden staging folders, anything else
        if name.startswith("dt=") and day <= up_to:
            days.append(day)
    for day in sorted(days, reverse=True):
        if store.is_committed(settings.partition("features", day)):
            return day
    return None


def split_days(days: list[date], valid_frac: float = 0.15, test_frac: float = 0.15) -> tuple:
    """Chronological split of days into train / validation / test (each at least one day)."""
    if len(days) < 3:
        raise NotEnoughHistory(
            f"need at least 3 published feature days to train (train/validation/test), "
            f"found {len(days)}"
        )
    days = sorted(days)
    n_test = max(1, round(len(days) * test_frac))
    n_valid = max(1, round(len(days) * valid_frac))
    n_train = len(days) - n_test - n_valid
    if n_train < 1:
        n_train, n_valid = 1, len(days) - n_test - 1
    return days[:n_train], days[n_train : n_train + n_valid], days[n_train + n_valid :]


def prepare_split(end: date, window_days: int, settings: Settings) -> Split:
    """The trailing window's date split and the exact partitions it uses (lineage)."""
    if not 3 <= window_days <= 3660:
        raise ValueError(f"window_days must be between 3 and 3660, got {window_days}")
    days = available_days(settings, end, window_days)
    train, valid, test = split_days(days)
    return Split(
        end=end.isoformat(), window_days=window_days,
        train_days=[d.isoformat() for d in train],
        valid_days=[d.isoformat() for d in valid],
        test_days=[d.isoformat() for d in test],
        partitions=[settings.partition("features", d) for d in days],
    )


def frames(split: Split, settings: Settings):
    """The split's (train, validation, test) feature frames."""
    def read(days: list[str]):
        return read_features([date.fromisoformat(d) for d in days], settings)

    return read(split.train_days), read(split.valid_days), read(split.test_days)


def categories(df) -> dict[str, list[str]]:
    """Each categorical feature's values in ``df``, sorted: the codes every split shares."""
    return {c: sorted(map(str, df[c].dropna().unique())) for c in CATEGORICAL_FEATURES}


def xy(df, cats: dict[str, list[str]] | None = None):
    """Model matrix: numeric features as float32, categoricals as pandas ``category`` with a
    fixed category list (from training), so every split and the served model agree on codes."""
    import pandas as pd

    X = df[MODEL_FEATURES].copy()
    for c in NUMERIC_FEATURES:
        X[c] = pd.to_numeric(X[c], errors="coerce").astype("float32")
    cats = cats or categories(df)
    for c in CATEGORICAL_FEATURES:
        X[c] = pd.Categorical(X[c].astype("object").where(X[c].notna(), None), categories=cats[c])
    y = df[LABEL].astype("int8").to_numpy() if LABEL in df else None
    return X, y, cats
