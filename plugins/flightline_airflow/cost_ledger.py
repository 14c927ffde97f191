"""The cost ledger's Airflow side: a listener that prices every task attempt, and the run's
cost note.

- **Task attempts** (worker side): when an attempt ends (success, failure, retry, skip), its
  duration is priced at the capacity it ran on and recorded in the ledger
  (:mod:`tasks.cost.ledger`). A task that runs on capacity the spot step chose says so with
  :func:`use_capacity` while it runs; every other attempt is priced as the local machine.
  Recording never fails a task: an error is logged and the attempt is left out.
- **Attempts that could not report** (scheduler side, when the run finishes): an attempt whose
  process was killed (SIGKILL, out of memory, its machine gone) runs no listener, and one that
  ended while the data root was unreachable could not write its row. The run's
  tries, as Airflow recorded them, are compared with the ledger, and each missing attempt is
  priced from Airflow's start and end at the local rate (its capacity died with it), with a
  note saying so. So the ledger has every attempt once.
- **The run's note** (scheduler side): when a run finishes, its cost line becomes the note's
  ``cost`` section through the REST API, from a short-lived thread, so the scheduler neither waits
  on HTTP nor opens a metadata-DB session of its own.

Every task's **Cost** button (a link registered by the plugin, resolved in the API server
from the run's id alone) opens the run's ledger page on the login-protected reports app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

#: Capacity declared by the running task (one task per process; keyed by the attempt's id).
_CAPACITY: dict[str, dict] = {}
#: Milliseconds each recording took in this process (the benchmark reads them).
RECORD_MS: list[float] = []
#: Errors that mean "spot capacity was reclaimed" rather than a failure (by class name).
INTERRUPTION_ERRORS = {"SpotInterrupted"}


def use_capacity(context, capacity: dict) -> None:
    """Declare that the running attempt runs on ``capacity`` (a Capacity dict)."""
    _CAPACITY[str(context["ti"].id)] = capacity


def _record(task_instance, state: str, error=None) -> None:
    t0 = time.perf_counter()
    try:
        if type(task_instance).__name__ != "RuntimeTaskInstance":
            return  # a state set through the API: nothing ran
        from flightline_airflow import logical_day
        from tasks.cost.ledger import price_attempt, record
        from tasks.settings import Settings

        ti = task_instance
        end = getattr(ti, "end_date", None) or datetime.now(UTC)
        start = getattr(ti, "start_date", None) or end
        note = ""
        if error is not None and type(error).__name__ in INTERRUPTION_ERRORS:
            state, note = "interrupted", str(error)[:300]
        elif error is not None:
            note = f"{type(error).__name__}: {error}"[:300]
        try:
            run_day = logical_day(ti.get_template_context())
        except Exception:
            run_day = None
        attempt = price_attempt(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
                                map_index=ti.map_index if ti.map_index is not None else -1,
                                try_number=ti.try_number, state=state, start=start, end=end,
                                capacity=_CAPACITY.pop(str(ti.id), None),
                                settings=Settings.from_env(), run_day=run_day, note=note)
        record(attempt, Settings.from_env())
        RECORD_MS.append((time.perf_counter() - t0) * 1000)
        del RECORD_MS[:-1000]
        log.info("cost ledger: %s try %s %s %.1f s on %s at $%.4f/h: $%.6f (%.0f ms to record)",
                 ti.task_id, ti.try_number, state, attempt.seconds, attempt.instance_type,
                 attempt.hourly_usd, attempt.cost_usd, (time.perf_counter() - t0) * 1000)
    except Exception:
        log.exception("cost ledger: this attempt was not recorded")


@hookimpl
def on_task_instance_success(previous_state, task_instance):
    _record(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error):
    state = getattr(task_instance, "state", None)
    _record(task_instance, str(getattr(state, "value", state) or "failed"), error)


@hookimpl
def on_task_instance_skipped(previous_state, task_instance):
    _record(task_instance, "skipped")


#: What a recovered attempt's ledger row says.
UNREPORTED = ("ended without reporting its cost (its process was killed, or the ledger was "
              "unreachable); priced at the local rate")


#: A task's own listener writes its row just after Airflow marks the attempt ended (it runs
#: after the state is sent): a missing row is only taken as unreported this long after the end.
GRACE_S = 15.0


def _tries(api, run_path: str) -> Iterator[dict]:
    """Every try Airflow recorded for the run's task instances (mapped ones included)."""
    from urllib.parse import quote

    tis = api.request("GET", f"{run_path}/taskInstances", params={"limit": 1000})
    for ti in tis["task_instances"]:
        if (ti.get("try_number") or 0) < 2:
            yield ti
            continue
        index = ti.get("map_index")
        mapped = f"/{index}" if index is not None and index >= 0 else ""
        yield from api.request("GET", f"{run_path}/taskInstances/"
                                      f"{quote(ti['task_id'], safe='')}{mapped}/tries")["task_instances"]


def _record_unreported(api, dag_id: str, run_id: str, settings) -> int:
    """Record the run's attempts that ended without a ledger row (their process was killed
    before the listener could run, or the ledger was unreachable), from Airflow's own record
    of the tries; how many. Tasks that never ran (skipped or upstream-failed by the scheduler:
    try 0, no process) have none."""
    from tasks.cost.ledger import attempt_uri, price_attempt, record
    from tasks.storage import Store

    def when(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    store, added = Store(settings), 0
    run_path = api.run_path(dag_id, run_id)
    run = api.request("GET", run_path)
    run_day = when(run["logical_date"]).date() if run.get("logical_date") else None
    for t in _tries(api, run_path):
        if (t.get("try_number") or 0) < 1 or not (t.get("start_date") and t.get("end_date")):
            continue
        attempt = price_attempt(
            dag_id=dag_id, run_id=run_id, task_id=t["task_id"], map_index=t["map_index"],
            try_number=t["try_number"], state=str(t.get("state") or "failed"),
            start=when(t["start_date"]), end=when(t["end_date"]), capacity=None,
            settings=settings, run_day=run_day, note=UNREPORTED)
        uri = attempt_uri(attempt, settings)
        if store.exists(uri):
            continue
        wait = GRACE_S - (datetime.now(UTC) - when(t["end_date"])).total_seconds()
        if wait > 0:  # its own listener may still be writing it
            time.sleep(wait)
            if store.exists(uri):
                continue
        record(attempt, settings)
        added += 1
        log.info("cost ledger: %s try %s recorded at the run's end: %s", t["task_id"],
                 t["try_number"], UNREPORTED)
    return added


def _note_cost(dag_id: str, run_id: str) -> None:
    """Record the run's unreported attempts, then set its ``cost`` note section (REST API, as
    the service user)."""
    try:
        from flightline_airflow.api import AirflowAPI
        from tasks.cost.ledger import run_summary, summary_line
        from tasks.settings import Settings

        try:
            api = AirflowAPI.from_connection(env_only=True)
        except LookupError as exc:
            log.info("cost note not written (%s)", exc)
            return
        settings = Settings.from_env()
        with api:
            _record_unreported(api, dag_id, run_id, settings)
            summary = run_summary(dag_id, run_id, settings)
            if not summary["attempts"]:
                return
            api.set_note_section(dag_id, run_id, "cost", summary_line(summary))
        log.info("cost note for %s %s: %s", dag_id, run_id, summary_line(summary))
    except Exception as exc:
        log.warning("cost note for %s %s not written: %s", dag_id, run_id, exc)


def _on_run_end(dag_run) -> None:
    dag_id, run_id = dag_run.dag_id, dag_run.run_id  # read now: the ORM object stays here
    threading.Thread(target=_note_cost, args=(dag_id, run_id), name="flightline-cost-note",
                     daemon=True).start()


@hookimpl
def on_dag_run_success(dag_run, msg):
    _on_run_end(dag_run)


@hookimpl
def on_dag_run_failed(dag_run, msg):
    _on_run_end(dag_run)
