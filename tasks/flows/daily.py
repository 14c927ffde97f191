"""The daily data flow: one day's drop, from landing to published features.

Each step takes the result of the step before (and the settings) and returns its own; the DAG
``flightline_daily`` runs one task per step under the step's name, and :func:`run_day` runs them
all in one process (the ``flightline features`` CLI, benchmarks, tests). The steps, as
:data:`FLOW` declares them:

"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from tasks.features.build import build_features
from tasks.features.staging import Published, StagedFeatures, publish_features
from tasks.flows.steps import Flow, Pod, step
from tasks.landing import Drop, find_drop, land_demo_drop
from tasks.quality.features import features_batch
from tasks.quality.gate import GateResult, gate
from tasks.quality.raw import raw_batch
from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store, join


def raw_gate(drop: Drop, settings: Settings) -> GateResult:
    """The raw gate over the drop the sensor found (:mod:`tasks.quality.raw`)."""
    return gate(raw_batch(drop, settings), settings)


def features_gate(staged: StagedFeatures, settings: Settings) -> GateResult:
    """The features gate over a staged partition (:mod:`tasks.quality.features`)."""
    return gate(features_batch(staged, settings), settings)


@dataclass(frozen=True)
class DaySummary(Result):
    """What ``summarize_day`` wrote: the day's flights by origin and how many arrived late."""

    day: date
    uri: str
    rows: int
    late_share: float
    by_origin: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        """The run note's line (the DAG task adds it; see ``flow_task``)."""
        return (f"{self.day.isoformat()}: {self.rows} flights "
                f"({', '.join(f'{k} {v}' for k, v in self.by_origin.items())}), "
                f"{self.late_share:.0%} arrived 15+ min late")


def summarize_day(published: Published, settings: Settings) -> DaySummary:
    """A light step, the guide's worked example (docs/adding-a-task.md): the published day's
    flights by origin and its late share, as ``summaries/dt=DAY/summary.json``."""
    from tasks.feature_contract import LABEL
    from tasks.features.staging import read_features

    df = read_features([published.day], settings)
    summary = DaySummary(day=published.day,
                         uri=join(settings.partition("summaries", published.day), "summary.json"),
                         rows=len(df), late_share=round(float(df[LABEL].mean()), 4) if len(df) else 0.0,
                         by_origin={str(k): int(v) for k, v in sorted(df["origin"].value_counts().items())})
    Store(settings).write_text(summary.uri, json.dumps(summary.to_dict(), indent=2))  # atomic
    return summary


FLOW = Flow("daily", dag="flightline_daily", steps=[
    step(land_demo_drop, "the demo source lands the day and the day before (look-back)",
         writes=("landing",)),
    step(find_drop, "the day's complete drop with its look-back drop, or DropMissing (the "
         "sensor pokes)", name="wait_for_drop"),
    step(raw_gate, "GE suites over the drop; quarantined on failure", writes=("quarantine",)),
    step(build_features, "Spark: the typed raw partition and the features, staged",
         pod=Pod(cpu="1", memory="3Gi", spark=True)),
    step(features_gate, "GE suite over the staged features; quarantined on failure",
         writes=("quarantine",)),
    step(publish_features, "raw and features published by atomic rename",
         writes=("raw", "features")),
    step(summarize_day, "the day's flights by origin and late share; a run note line",
         writes=("summaries",)),
])
__doc__ += FLOW.table()


def run_day(day: date, settings: Settings, *, land: bool = True, spark=None) -> dict:
    """Every step of :data:`FLOW` for ``day`` in one process; a summary with each step's seconds."""
    import time

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    results = FLOW.run(settings, day=day, seconds=seconds, skip=() if land else ("land_demo_drop",),
                       options={"build_features": {"spark": spark}})
    staged: StagedFeatures = results["build_features"]
    published: Published = results["publish_features"]
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return {
        "day": day.isoformat(),
        "features_uri": published.features_uri,
        "raw_uri": staged.raw_uri,
        "rows": staged.rows,
        "dropped": staged.dropped,
        "history_days": staged.history_days,
        "docs_uri": results["raw_gate"].docs_uri,
        "gates": {"raw": results["raw_gate"].suites, "features": results["features_gate"].suites},
        "results": {name: r.to_dict() for name, r in results.items()
                    if r is not None and name not in ("land_demo_drop",)},
        "seconds": {**seconds, **staged.seconds},
    }
