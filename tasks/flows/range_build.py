"""The range build flow: many days of history in one Spark job (``flightline features-range``).

The fast path for bootstrapping history (training needs months of partitions). Every partition
equals what the daily flow publishes for its day: the same transform, the same staged write, the
same features gate and publish (:mod:`tasks.flows.daily`). A day that fails the gate is
quarantined and reported; the others are published.

==================  =======================  ======================  ================================
step                takes                    returns                 does
==================  =======================  ======================  ================================
find_drops          first, last              {day: Drop}             every day's drop (and the day
                                                                     before, for look-back)
build_features_     {day: Drop}              [StagedFeatures]        one Spark job; each day staged
range                                                                as the daily build stages it
features_gate       StagedFeatures           GateResult              per day, as in the daily flow
publish             StagedFeatures           Published               the day's raw and features
==================  =======================  ======================  ================================
"""

from __future__ import annotations

import shutil
import time
from datetime import date

from tasks.features.build import build_features_range, publish_staged_raw
from tasks.features.staging import Published, StagedFeatures, publish_features
from tasks.flows.daily import features_gate
from tasks.landing import find_drops
from tasks.quality.gate import QualityGateFailed
from tasks.settings import Settings


def publish(staged: StagedFeatures, settings: Settings) -> Published:
    """Publish a day that passed the gate: its typed raw partition, then its features."""
    publish_staged_raw(staged, settings)
    return publish_features(staged, settings)


STEPS = {
    "find_drops": find_drops,
    "build_features_range": build_features_range,
    "features_gate": features_gate,
    "publish": publish,
}


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
            shutil.rmtree(day.raw_staged, ignore_errors=True)
            continue
        rows += publish(day, settings).rows
        published += 1
    return {"first": first.isoformat(), "last": last.isoformat(), "published": published,
            "rows": rows, "failed": failed,
            "seconds": {"spark": round(spark_seconds, 2),
                        "total": round(time.perf_counter() - t0, 2)}}
