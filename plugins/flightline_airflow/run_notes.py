"""Run notes: a DAG run says, in the UI, what it processed and what it decided.

A task adds its line to its run's note through Airflow's public REST API (the supported way to
change a run from outside the scheduler), as the service user of the ``flightline_api``
connection (:class:`flightline_airflow.api.AirflowAPI`). Each task owns one section of the note,
named by its task id: a retry replaces its line, a later task adds its own. Without that
connection (``dag.test()``, a bare worker) the note is skipped with one log line: a note never
fails a task.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def write_run_note(context, text: str, *, section: str | None = None) -> bool:
    """Set this task's section (default: its task id) of its run's note; True when written."""
    from flightline_airflow.api import AirflowAPI

    ti = context["ti"]
    section = section or ti.task_id
    try:
        api = AirflowAPI.from_connection()
    except LookupError as exc:
        log.info("run note not written (%s): %s", exc, text)
        return False
    try:
        with api:
            api.set_note_section(ti.dag_id, ti.run_id, section, text)
    except Exception as exc:  # the API being down must not fail the work the task did
        log.warning("run note not written (%s %s): %s", api.base_url, exc, text)
        return False
    log.info("run note, %s: %s", section, text)
    return True


def training_note(decision: dict | None) -> str:
    """A training run's note: the promotion decision's verdict and its reason."""
    if not decision:
        return "No promotion decision: training did not produce a candidate (see the task logs)."
    verdict = "Promoted" if decision.get("promote") else "Not promoted"
    return f"{verdict}: {decision.get('challenger')}. {decision.get('reason')}"


def release_note(release: dict | None, failure: str | None = None) -> str:
    """The serving check's line of a training run's note (the decision has its own line)."""
    if failure:
        return f"NOT released: {failure}"
    f = (release or {}).get("figures", {})
    return (f"Released {release['bento']} after its serving check (parity "
            f"{f.get('max_abs_diff_batch', 0):.1g} over {f.get('rows')} rows, p99 "
            f"{f.get('p99_ms')} ms).")


def run_trigger(context) -> str:
    """Why a training run runs, for its note: a retrain request (with its reason), the weekly
    schedule, a backfill, or a person in the UI."""
    reasons = [ev.extra.get("reason") for events in (context.get("triggering_asset_events") or {}).values()
               for ev in events if (ev.extra or {}).get("reason")]
    if reasons:
        return f"[Retrain request: {reasons[-1]}]"
    run_type = str(getattr(context.get("dag_run"), "run_type", "") or "").lower()
    if "scheduled" in run_type:
        return "[Weekly schedule]"
    if "backfill" in run_type:
        return "[Backfill]"
    if "asset" in run_type:
        return "[Retrain request]"
    return "[Manual run]"
