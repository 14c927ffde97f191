"""The monitored days in Evidently's own UI: a local Evidently workspace in the data root.

Each monitored day's drift and quality snapshots are added to the ``evidently`` zone (a local
Evidently workspace: ``evidently ui --workspace <zone>``, see ``flightline monitoring-ui``), in
one project per DAG (:data:`PROJECT`: the released model changes with retrains, and one project
keeps the days of every model version on one timeline; each run's metadata names its version).
The project is created once, with a dashboard of the drift share, the prediction's drift score
and ROC AUC over days. A snapshot's timestamp is its monitored day, so the dashboard's x-axis is
days, whatever order or time they were monitored at.

- **Idempotent**: a day monitored again replaces its run of that report (the earlier one is
  deleted), so each day has one point per panel.
- **Concurrent**: the drift and quality steps of a day, and the days of a backfill, may add runs
  at once; every change to the workspace holds an exclusive lock on ``<zone>/.flightline.lock``,
  so the project is created once and no two writers interleave.
- **Local only**: Evidently's local workspace and the lock need a local file system. With the
  data root on S3 the snapshot is not added (one log line says so); the reports zone keeps the
  HTML and JSON reports either way.

Evidently's local workspace reads every run of the workspace when it is opened (as its UI does
when it starts), about 1 MB of JSON per drift run: the workspace keeps the last
``FLIGHTLINE_EVIDENTLY_WORKSPACE_DAYS`` (90) days, so adding a day stays bounded through a year
of backfill. Every day's reports stay in the reports zone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from tasks.settings import Settings

log = logging.getLogger(__name__)

#: The project's name: the monitoring DAG's id.
PROJECT = "flightline_monitoring"
#: The reports a day adds, as their snapshots' ``report`` metadata and tag.
REPORTS = ("drift", "quality")
LOCK = ".flightline.lock"


def workspace_dir(settings: Settings) -> Path | None:
    """The local workspace folder (the ``evidently`` zone), or None on an S3 data root."""
    from tasks.flows.steps import flows

    if settings.is_s3:
        return None
    flows()  # the zone is the monitoring steps' declaration (writes=), read from the flows
    return Path(settings.zone("evidently"))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the workspace's exclusive lock (blocking) while the body runs."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _panels():
    """The dashboard's panels: drift share, prediction drift, ROC AUC, each over days."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    from tasks.monitoring.reports import COLUMN_DRIFT_METRIC, FEATURE_DRIFT_METRIC
    from tasks.monitoring.scoring import PREDICTION

    return [
        line_plot_panel(
            "Drift share", [PanelMetric(legend="share of model features drifted", tags=["drift"],
                                        metric=FEATURE_DRIFT_METRIC,
                                        metric_labels={"value_type": "share"})],
            "Share of the counted model features (calendar columns left out) past the model "
            "version's calibrated thresholds, against its reference sample", size="full"),
        line_plot_panel(
            "Prediction drift", [PanelMetric(legend="prediction drift score", tags=["drift"],
                                             metric=COLUMN_DRIFT_METRIC,
                                             metric_labels={"feature": PREDICTION,
                                                            "column": "score"})],
            "Drift score of the model's P(late) against its scores on the reference sample "
            "(the test Evidently chose: see each run)", size="half"),
        line_plot_panel(
            "ROC AUC", [PanelMetric(legend="ROC AUC of the day", tags=["quality"],
                                    metric="evidently:metric_v2:RocAuc")],
            "ROC AUC of the released model on the day's labels", size="half"),
    ]


def _project(ws):
    """The project (created with its dashboard on first use; the caller holds the lock)."""
    found = ws.search_project(PROJECT)
    if found:
        project = found[0]
    else:
        project = ws.create_project(
            PROJECT, description="Flightline's daily monitoring: drift and quality of the "
                                 "released model, one run per report and monitored day")
    have = {p.title for p in project.dashboard.model().panels}
    for panel in _panels():  # also completes a dashboard a crash left half made
        if panel.title not in have:
            project.dashboard.add_panel(panel)
    return project


def open_workspace(settings: Settings):
    """The Evidently workspace of the data root (``evidently.ui.workspace.Workspace``)."""
    from evidently.ui.workspace import Workspace

    folder = workspace_dir(settings)
    if folder is None:
        raise ValueError(f"the Evidently workspace is local only: the data root "
                         f"{settings.data_root} is on S3")
    folder.mkdir(parents=True, exist_ok=True)
    return Workspace.create(str(folder))


def add_snapshot(snapshot, report: str, day: date, settings: Settings) -> str | None:
    """Add ``report``'s snapshot of ``day`` to the workspace's project, replacing the day's
    earlier run of that report; returns the run's id (None on an S3 data root: not added)."""
    if report not in REPORTS:
        raise ValueError(f"report {report!r}: the workspace takes {', '.join(REPORTS)}")
    folder = workspace_dir(settings)
    if folder is None:
        log.info("Evidently workspace skipped for the %s snapshot of %s: it is local only and "
                 "the data root %s is on S3", report, day, settings.data_root)
        return None
    with _locked(folder):
        ws = open_workspace(settings)
        project = _project(ws)
        earlier = [run for run in ws.list_runs(project.id)
                   if _is(ws.get_run(project.id, run), report, day)]
        ref = ws.add_run(project.id, snapshot, include_data=False, name=f"{report} {day}")
        for run in earlier:
            ws.delete_run(project.id, run)
        _expire(ws, project.id, day, settings.evidently_workspace_days)
    return str(ref.id)


def _expire(ws, project_id, day: date, keep_days: int) -> int:
    """Delete the runs of days more than ``keep_days`` before ``day`` (the newest day kept
    decides: a backfilled older day does not remove newer ones); how many were deleted."""
    from datetime import timedelta

    runs = {run: ws.get_run(project_id, run) for run in ws.list_runs(project_id)}
    days = [date.fromisoformat(r.metadata["day"]) for r in runs.values()
            if r is not None and r.metadata.get("day")]
    if not days:
        return 0
    oldest = max(days) - timedelta(days=keep_days - 1)
    old = [run for run, r in runs.items() if r is not None and r.metadata.get("day")
           and date.fromisoformat(r.metadata["day"]) < oldest]
    for run in old:
        ws.delete_run(project_id, run)
    return len(old)


def _is(run, report: str, day: date) -> bool:
    return run is not None and run.metadata.get("report") == report and \
        run.metadata.get("day") == day.isoformat()
