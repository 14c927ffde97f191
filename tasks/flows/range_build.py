"""The range build flow: many days of history in one Spark job (``flightline features-range``).

The fast path for bootstrapping history (training needs months of partitions). Every partition
equals what the daily flow publishes for its day: the same transform, the same staged write, the
same features gate and publish (:mod:`tasks.flows.daily`). A day that fails the gate is
quarantined and reported; the others are published.

It is a batch job, not a DAG: :func:`tasks.landing.find_drops` finds every day's drop (and
the day before, for look-back); :func:`tasks.features.build.build_features_range` runs one Spark
job that stages each day as the daily build stages it; then, per day, the daily flow's
``features_gate`` and ``publish_features`` steps.
"""

from __future__ import annotations

import time
from datetime import date

from tasks.features.build import build_features_range
from tasks.features.staging import publish_features
from tasks.flows.daily import features_gate
from tasks.landing import find_drops
from tasks.quality.gate import QualityGateFailed
from tasks.settings import Settings
from tasks.storage import Store


def run_range(first: date, last: date, settings: Settings, *, spark=None) -> dict:
    """Build, gate and publish every day in ``[first, last]``; a summary of what was published."""
    drops = find_drops(first, last, settings)
    t0 = time.perf_counter()
    staged = build_features_range(drops, first, last, settings, spark=spark)
    spark_seconds = time.perf_counter() - t0
    published, failed, rows = 0, {}, 0
    for day in staged:
        try:
            features_gate(day, settings)
        except QualityGateFailed as exc:
            failed[day.day.isoformat()] = exc.result.summary()
            Store(settings).delete_tree(day.raw_staged)
            continue
        rows += publish_features(day, settings).rows
        published += 1
    return {"first": first.isoformat(), "last": last.isoformat(), "published": published,
            "rows": rows, "failed": failed,
            "seconds": {"spark": round(spark_seconds, 2),
                        "total": round(time.perf_counter() - t0, 2)}}
