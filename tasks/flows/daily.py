"""The daily data flow: one day's drop, from landing to published features.

Each step takes the result of the step before (and the settings) and returns its own; the DAG
``flightline_daily`` runs one task per step, under the step's name (:data:`STEPS`), and
:func:`run_day` runs them all in one process (the ``flightline features`` CLI, benchmarks, tests).

=================  ==================  ==================  ==========================================
task / step        takes               returns             does
=================  ==================  ==================  ==========================================
land_demo_drop     day                 Landed              the demo source serves the day and the
                                                           day before (look-back) into landing/
wait_for_drop      day                 Drop                :func:`find_drop`: the day's complete
                                                           drop, or DropMissing (the sensor pokes)
raw_gate           Drop                GateResult          GE suites over the drop; quarantined on
                                                           failure
build_features     Drop                StagedFeatures      Spark: the typed raw partition, staged
                                                           features
features_gate      StagedFeatures      GateResult          GE suite over the staged partition;
                                                           quarantined on failure
publish_features   StagedFeatures      Published           atomic rename into features/dt=...
=================  ==================  ==================  ==========================================
"""

from __future__ import annotations

import time
from datetime import date

from tasks.features.build import build_features
from tasks.features.staging import Published, StagedFeatures, publish_features
from tasks.landing import Drop, find_drop, land_demo_drop
from tasks.quality.features import features_batch
from tasks.quality.gate import GateResult, gate
from tasks.quality.raw import raw_batch
from tasks.settings import Settings

__all__ = ["STEPS", "build_features", "features_gate", "find_drop", "land_demo_drop",
           "publish_features", "raw_gate", "run_day"]


def raw_gate(drop: Drop, settings: Settings) -> GateResult:
    """The raw gate over the drop the sensor found (:mod:`tasks.quality.raw`)."""
    return gate(raw_batch(drop, settings), settings)


def features_gate(staged: StagedFeatures, settings: Settings) -> GateResult:
    """The features gate over a staged partition (:mod:`tasks.quality.features`)."""
    return gate(features_batch(staged, settings), settings)


#: The DAG's task ids, in order, and the step each task runs.
STEPS = {
    "land_demo_drop": land_demo_drop,
    "wait_for_drop": find_drop,
    "raw_gate": raw_gate,
    "build_features": build_features,
    "features_gate": features_gate,
    "publish_features": publish_features,
}


def run_day(day: date, settings: Settings, *, land: bool = True, spark=None) -> dict:
    """Every step for ``day`` in one process; a summary with each step's seconds."""
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    if land:
        land_demo_drop(day, settings)
    drop = find_drop(day, settings)
    t = time.perf_counter()
    raw = raw_gate(drop, settings)
    seconds["raw_gate"] = time.perf_counter() - t
    t = time.perf_counter()
    staged = build_features(drop, settings, spark=spark)
    seconds["spark_features"] = time.perf_counter() - t
    t = time.perf_counter()
    checked = features_gate(staged, settings)
    seconds["features_gate"] = time.perf_counter() - t
    published: Published = publish_features(staged, settings)
    seconds["total"] = time.perf_counter() - t0
    return {
        "day": day.isoformat(),
        "features_uri": published.features_uri,
        "raw_uri": staged.raw_uri,
        "rows": staged.rows,
        "dropped": staged.dropped,
        "history_days": staged.history_days,
        "docs_uri": raw.docs_uri,
        "gates": {"raw": raw.suites, "features": checked.suites},
        "seconds": {**{k: round(v, 2) for k, v in seconds.items()}, **staged.seconds},
    }
