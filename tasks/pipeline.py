"""One day through the whole data path, in-process: what the daily DAG does task by task.

Used by the ``flightline features`` CLI, by benchmarks and tests. The DAG runs the same steps
as separate tasks (so each shows its own log, retries and extra link).
"""

from __future__ import annotations

import time
from datetime import date

from tasks.settings import Settings


def run_day(day: date, settings: Settings | None = None, *, land: bool = True, spark=None) -> dict:
    """Land (demo source), gate the raw drop, build features, gate them, publish."""
    from tasks.features import build_features, publish_features
    from tasks.landing import find_drop, land_day
    from tasks.quality import gate_features, gate_raw_drop

    settings = settings or Settings.from_env()
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    if land:
        land_day(day, settings)
        land_day(day.fromordinal(day.toordinal() - 1), settings)  # look-back day, if served
    find_drop(day, settings)
    t = time.perf_counter()
    raw_gate = gate_raw_drop(day, settings)
    seconds["raw_gate"] = time.perf_counter() - t
    t = time.perf_counter()
    feats = build_features(day, settings, spark=spark)
    seconds["spark_features"] = time.perf_counter() - t
    t = time.perf_counter()
    feat_gate = gate_features(day, feats.features_uri, settings)
    seconds["features_gate"] = time.perf_counter() - t
    published = publish_features(day, feats.features_uri, settings)
    seconds["total"] = time.perf_counter() - t0
    return {
        "day": day.isoformat(),
        "features_uri": published,
        "raw_uri": feats.raw_uri,
        "rows": feats.rows,
        "dropped": feats.dropped,
        "history_days": feats.history_days,
        "docs_uri": raw_gate.docs_uri,
        "gates": {"raw": raw_gate.suites, "features": feat_gate.suites},
        "seconds": {**{k: round(v, 2) for k, v in seconds.items()}, **feats.seconds},
    }
