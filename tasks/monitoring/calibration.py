"""Per-column drift thresholds calibrated on the model's own training days.

Evidently's default thresholds (0.1 on a normed Wasserstein distance or a Jensen-Shannon
distance) assume the current data is a sample of the reference's world. One day is not: it holds
one day's weather and one weekday's schedule, against a reference drawn from weeks. Compared
that way, about half the features "drifted" on ordinary days, even on days inside the training
window. So each model version keeps, next to its reference sample, a threshold per column: the
``QUANTILE`` of that column's score on every day of its training window against the reference
(what an ordinary day of the world the model learned looks like). A day drifts in a column when
its score is above what 19 in 20 of the model's own days reached.

The score is Evidently's own statistic, computed here directly (numpy and scipy, no report: 48 ms a
training day against 4.6 s for Evidently's drift step, ``bench/drift_replay.py``), with the same method per column as the
daily report uses: the method is fixed at calibration (:func:`column_method`) and passed to
Evidently with the threshold, so calibration and report never choose differently.
``tests/test_monitoring.py`` checks that these scores are Evidently's numbers on real days.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from pathlib import Path

from tasks.feature_contract import CATEGORICAL_FEATURES, DRIFT_EXCLUDED, MODEL_FEATURES
from tasks.settings import Settings

THRESHOLDS_FILE = "drift_thresholds.json"
#: The share of a column's in-window day scores at or below its threshold.
QUANTILE = 0.95
#: A threshold is never below this: a column equal on every training day (score 0) would
#: otherwise breach on any difference at all.
FLOOR = 0.001
WASSERSTEIN, JENSENSHANNON = "wasserstein", "jensenshannon"
#: Numeric columns with this many distinct reference values or fewer are compared as
#: categories (Jensen-Shannon on value shares), as Evidently does by default.
FEW_VALUES = 5
#: The column of the model's P(late) in the reference and the scored days.
PREDICTION = "prediction"


def drift_columns(columns: Iterable[str] = MODEL_FEATURES) -> list[str]:
    """The model features whose drift counts (the calendar columns of
    :data:`tasks.feature_contract.DRIFT_EXCLUDED` left out)."""
    return [c for c in columns if c not in DRIFT_EXCLUDED]


def column_type(column: str) -> str:
    return "cat" if column in CATEGORICAL_FEATURES else "num"


def _clean(values):
    """The values as a numpy array without missing (and, for numbers, infinite) values, as
    Evidently drops them before a test."""
    import numpy as np
    import pandas as pd

    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        arr = arr.astype(float)
        return arr[np.isfinite(arr)]
    return arr[pd.notna(arr)]


def column_method(reference) -> str:
    """The method for a column (``reference``: its reference values, with the column's name):
    a normed Wasserstein distance for numbers with more than ``FEW_VALUES`` values, else the
    Jensen-Shannon distance, as Evidently chooses for a reference over 1,000 rows (fixed here
    whatever the size, so a smaller reference is not tested with p-values instead)."""
    if column_type(str(reference.name)) == "cat":
        return JENSENSHANNON
    return WASSERSTEIN if len(set(_clean(reference).tolist())) > FEW_VALUES else JENSENSHANNON


def score(method: str, reference, current, kind: str) -> float:
    """Evidently 0.7's drift score of ``current`` against ``reference`` (pandas series, missing
    and infinite values dropped as Evidently does): ``legacy.calculations.stattests``'
    ``_wasserstein_distance_norm`` and ``_jensenshannon`` (``kind``: "num" or "cat")."""
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    ref, cur = _clean(reference), _clean(current)
    if method == WASSERSTEIN:
        return float(stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))
    if method != JENSENSHANNON:
        raise ValueError(f"unknown drift method {method!r}")
    ref_values, ref_counts = np.unique(ref, return_counts=True)
    if kind == "num" and len(ref_values) > 20:  # Evidently's get_binned_data: Sturges bins
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        p = np.histogram(ref, bins)[0] / len(ref)
        q = np.histogram(cur, bins)[0] / len(cur)
    else:  # the share of each value seen on either side
        cur_values, cur_counts = np.unique(cur, return_counts=True)
        keys = sorted(set(ref_values.tolist()) | set(cur_values.tolist()))
        rc = dict(zip(ref_values.tolist(), ref_counts.tolist(), strict=True))
        cc = dict(zip(cur_values.tolist(), cur_counts.tolist(), strict=True))
        p = np.array([rc.get(k, 0) for k in keys]) / len(ref)
        q = np.array([cc.get(k, 0) for k in keys]) / len(cur)
    return float(distance.jensenshannon(p, q))


def _quantile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.quantile(np.asarray(values, dtype=float), q))


def calibrate(reference, rows, *, day_column: str = "flight_date",
              quantile: float = QUANTILE) -> dict:
    """Thresholds from the training window: each column's score on every day of ``rows``
    (the training rows, with the model's ``prediction``) against ``reference``; the threshold
    is the ``quantile`` of a column's day scores (at least ``FLOOR``). Returns the thresholds
    document (what :data:`THRESHOLDS_FILE` holds): per column its method, threshold and day
    scores, the days, the quantile and the seconds it took."""
    started = time.perf_counter()
    columns = [c for c in [*drift_columns(), PREDICTION] if c in reference and c in rows]
    methods = {c: column_method(reference[c]) for c in columns if _clean(reference[c]).size}
    refs = {c: _clean(reference[c]) for c in methods}
    days: list[str] = []
    scores: dict[str, dict[str, float]] = {c: {} for c in methods}
    for day, frame in rows.groupby(rows[day_column].astype(str), sort=True):
        days.append(str(day))
        for c, method in methods.items():
            cur = _clean(frame[c].to_numpy())
            if cur.size:  # a calm day has no gust at all: not tested, as in the report
                scores[c][str(day)] = round(score(method, refs[c], cur, column_type(c)), 6)
    out = {}
    for c, method in methods.items():
        values = list(scores[c].values())
        if not values:
            continue
        out[c] = {"method": method, "threshold": round(max(_quantile(values, quantile), FLOOR), 6),
                  "median": round(_quantile(values, 0.5), 6), "max": max(values),
                  "days": scores[c]}
    return {"quantile": quantile, "days": days, "excluded": list(DRIFT_EXCLUDED),
            "reference_rows": int(len(reference)), "columns": out,
            "seconds": round(time.perf_counter() - started, 3)}


def save_thresholds(document: dict, folder: Path) -> dict:
    """Write the thresholds next to the reference sample; returns what the model card records."""
    (Path(folder) / THRESHOLDS_FILE).write_text(json.dumps(document, indent=1), encoding="utf-8")
    return {"file": THRESHOLDS_FILE, "quantile": document["quantile"],
            "days": len(document["days"]), "first_day": document["days"][0] if document["days"] else None,
            "last_day": document["days"][-1] if document["days"] else None,
            "columns": len(document["columns"]), "seconds": document["seconds"]}


def read_thresholds(version: str, settings: Settings) -> dict | None:
    """A registry version's calibrated thresholds, or None for a version trained before they
    were kept (its drift report falls back to Evidently's defaults)."""
    from tasks.storage import Store, join
    from tasks.training import registry

    uri = join(registry.show(version, settings)["uri"], THRESHOLDS_FILE)
    store = Store(settings)
    if not store.exists(uri):
        return None
    doc = json.loads(store.read_text(uri))
    if not isinstance(doc.get("columns"), dict):
        return None
    return doc


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
