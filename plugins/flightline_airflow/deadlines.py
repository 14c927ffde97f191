"""Deadline alerts: a nightly day whose features are not published in time, a training run over
its time budget.

Airflow's own deadlines (``DeadlineAlert``): the scheduler stores each run's deadline when the run
is queued, drops it when the run succeeds, and when it passes first queues :func:`missed`,
which the triggerer runs (no worker slot). The alert goes through the same notifier as retrain
requests (:func:`flightline_airflow.notifiers.send`: log, email or Slack).

The reference is the run's *queued* time: a scheduled nightly run is queued as its interval ends,
so its deadline is that many minutes after the interval end; a backfilled or manual run gets the
same time from when it was queued (a reference at the logical date would alert at once for every
2013 day replayed). A run that fails is not a success, so its deadline still alerts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

log = logging.getLogger("flightline.deadlines")


def _tolerate_dag_test() -> None:
    """Work around apache/airflow#73428 (Airflow 3.3.2; fix proposed upstream in #73430):
    ``dag.test()`` (and ``airflow dags test``) keeps the DAG's deadline alerts serialized, and
    when the run succeeds ``DagRun.update_state`` looks those dicts up as alert ids and crashes,
    so a successful test run exits with an error. Here a dict is read for its reference type, as
    the upstream fix does; an id still goes to the table as before. Patched only in a process
    that has already imported Airflow's ORM model (the ``dags test`` CLI, a test's ``DagBag``),
    never in a task process, and only once."""
    import sys
    import types

    model = getattr(sys.modules.get("airflow.models.deadline_alert"), "DeadlineAlert", None)
    if model is None or getattr(model.get_by_id, "_flightline_73428", False):
        return
    by_id = model.get_by_id

    def get_by_id(alert_id, **kwargs):
        if isinstance(alert_id, dict):
            data = alert_id.get("__var", alert_id)
            return types.SimpleNamespace(reference_class=model.reference_class.fget(
                types.SimpleNamespace(reference=data.get("reference") or {})))
        return by_id(alert_id, **kwargs)

    get_by_id._flightline_73428 = True
    model.get_by_id = get_by_id


def deadline(what: str, minutes: float):
    """The ``DeadlineAlert`` a DAG takes: ``minutes`` after its run is queued, alerting that
    ``what`` did not happen in time."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    _tolerate_dag_test()

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                         interval=timedelta(minutes=minutes),
                         callback=AsyncCallback(missed, kwargs={"what": what, "minutes": minutes}),
                         name=f"flightline: {what}")


def message(what: str, minutes: float, context: dict) -> str:
    """The alert's text: which run, what was late, by when it was due."""
    run = (context or {}).get("dag_run") or {}
    due = ((context or {}).get("deadline") or {}).get("deadline_time")
    day = (run.get("conf") or {}).get("day") or str(run.get("logical_date") or "")[:10] or "no day"
    now = datetime.now(UTC).isoformat()
    return (f"Flightline deadline missed: {run.get('dag_id')} run {run.get('dag_run_id')} "
            f"({day}, state {run.get('state')}): {what} within {minutes:g} minutes of being "
            f"queued (due {due}; alerted {now})")


async def missed(what: str, minutes: float, context: dict | None = None) -> str:
    """Run by the triggerer when a deadline passes: tell people (never raises)."""
    import asyncio

    from flightline_airflow.notifiers import send

    text = message(what, minutes, context or {})
    where = await asyncio.to_thread(send, "Flightline: deadline missed", text, logger=log)
    return f"alerted ({where}): {text}"
