"""Listener: when a training run ends, its DAG run note says what the gate decided and why.

Runs where DAG run states change (the scheduler, or the process running ``dag.test``), reads the
gate task's return value from the metadata DB and writes it as the run's note in the UI.
"""

from __future__ import annotations

import logging

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)
TRAINING_DAG, GATE_TASK = "flightline_training", "gate_champion"


def note_for(decision: dict | None) -> str:
    if not decision:
        return "No gate decision: training did not produce a candidate (see the task logs)."
    verdict = "Promoted" if decision.get("promote") else "Not promoted"
    return f"{verdict}: {decision.get('challenger')}. {decision.get('reason')}"


def _write_note(dag_run) -> None:
    if dag_run.dag_id != TRAINING_DAG:
        return
    try:
        from airflow.models.dagrun import DagRun
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            xcom = session.scalars(select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
                XComModel.task_id == GATE_TASK, XComModel.key == "return_value")).first()
            decision = XComModel.deserialize_value(xcom) if xcom is not None else None
            run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_run.dag_id,
                                                       DagRun.run_id == dag_run.run_id)).one()
            run.note = note_for(decision)
    except Exception:  # a note must never break the scheduler
        log.exception("flightline: could not write the training run note")


@hookimpl
def on_dag_run_success(dag_run, msg: str) -> None:
    _write_note(dag_run)


@hookimpl
def on_dag_run_failed(dag_run, msg: str) -> None:
    _write_note(dag_run)
