"""The range build flow: many days of history in one Spark job (``flightline features-range``).

The fast path for bootstrapping history (training needs months of partitions). Every partition
equals what the daily flow publishes for its day: the same transform, the same staged write, the
same features gate and publish (:mod:`tasks.flows.daily`). A day that fails the gate is
quarantined and reported; the others are published.

It is a batch job, not a DAG: :func:`tasks.landing.find_drops` finds every day's drop (and
the day before, for look-back); :func:`tasks.features.build.build_features_range` runs one Spark
job that stages each day as the daily build stages it; then the features gate over every staged
day in one pass (:mod:`tasks.quality.range_gate`: the days it cannot clear go through the daily
flow's gate itself, with its quarantine and Data Docs), and ``publish_features`` per day.
"""

from __future__ import annotations

import time
from datetime import date

from tasks.features.build import build_features_range
from tasks.features.staging import publish_features
from tasks.landing import find_drops
from tasks.quality.features import features_batch
from tasks.quality.gate import QualityGateFailed, gate
from tasks.quality.range_gate import screen
from tasks.settings import Settings
from tasks.storage import Store


def run_range(first: date, last: date, settings: Settings, *, spark=None) -> dict:
    """Build, gate and publish every day in ``[first, last]``; a summary of what was published."""
    drops = find_drops(first, last, settings)
    t0 = time.perf_counter()
    staged = build_features_range(drops, first, last, settings, spark=spark)
    spark_seconds = time.perf_counter() - t0
    published, failed, rows = 0, {}, 0
    t1 = time.perf_counter()
    batches = [features_batch(day, settings) for day in staged]
    flagged, screened = screen(batches)
    for day, batch in zip(staged, batches, strict=True):
        if day.day in flagged:  # the daily gate itself: its verdict, quarantine, Data Docs
            try:
                gate(batch, settings)
            except QualityGateFailed as exc:
                failed[day.day.isoformat()] = exc.result.summary()
                Store(settings).delete_tree(day.raw_staged)
                continue
        rows += publish_features(day, settings).rows
        published += 1
    return {"first": first.isoformat(), "last": last.isoformat(), "published": published,
            "rows": rows, "failed": failed,
            "gate": {"one_pass_days": len(staged) - len(flagged), "gated_alone": screened["flagged"],
                     "why": screened["why"], "screen_seconds": screened["seconds"]},
            "seconds": {"spark": round(spark_seconds, 2),
                        "gate_and_publish": round(time.perf_counter() - t1, 2),
                        "total": round(time.perf_counter() - t0, 2)}}
