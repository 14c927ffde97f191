"""Run notes: a DAG run says, in the UI, what it processed and what it decided.

A task sets its run's note through Airflow's public REST API (``PATCH .../dagRuns/{run_id}``),
the supported way to change a run from outside the scheduler, authenticating as a service user
whose credentials come from the Airflow connection ``flightline_api`` (``AIRFLOW_CONN_FLIGHTLINE_API``
or any secrets backend; ``make airflow`` provides it for the local stack). Without that connection
(``dag.test()``, a bare worker) the note is skipped with one log line: a note never fails a task.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

log = logging.getLogger(__name__)
API_CONN_ID = "flightline_api"
NOTE_LIMIT = 1000  # Airflow keeps at most 1000 characters of a note


def api_base(conn) -> str:
    """The API server's base URL from the connection (host may carry the scheme)."""
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    return host


def write_run_note(context, text: str) -> bool:
    """Set the note of the run ``context`` belongs to; True when the API accepted it."""
    import httpx
    from airflow.sdk import BaseHook

    text = text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 3] + "..."
    try:
        conn = BaseHook.get_connection(API_CONN_ID)
    except Exception:  # AirflowNotFoundException: no service credentials here
        log.info("run note not written (no %r connection): %s", API_CONN_ID, text)
        return False
    ti = context["ti"]
    base = api_base(conn)
    try:
        with httpx.Client(base_url=base, timeout=20) as http:
            token = http.post("/auth/token", json={"username": conn.login,
                                                   "password": conn.password})
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            url = f"/api/v2/dags/{quote(ti.dag_id, safe='')}/dagRuns/{quote(ti.run_id, safe='')}"
            resp = http.patch(url, params={"update_mask": "note"}, json={"note": text},
                              headers=headers)
            resp.raise_for_status()
    except Exception as exc:  # the API being down must not fail the work the task did
        log.warning("run note not written (%s %s): %s", base, exc, text)
        return False
    log.info("run note: %s", text)
    return True


def training_note(decision: dict | None) -> str:
    """A training run's note: the promotion decision's verdict and its reason."""
    if not decision:
        return "No promotion decision: training did not produce a candidate (see the task logs)."
    verdict = "Promoted" if decision.get("promote") else "Not promoted"
    return f"{verdict}: {decision.get('challenger')}. {decision.get('reason')}"


def release_note(decision: dict | None, release: dict | None, failure: str | None = None) -> str:
    """The training run's note once the serving flow ran: the decision, then the release."""
    note = training_note(decision)
    if failure:
        return f"{note} NOT released: {failure}"
    if release:
        f = release.get("figures", {})
        return (f"{note} Released {release['bento']} after its serving check (parity "
                f"{f.get('max_abs_diff_batch', 0):.1g} over {f.get('rows')} rows, p99 "
                f"{f.get('p99_ms')} ms).")
    return note


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
