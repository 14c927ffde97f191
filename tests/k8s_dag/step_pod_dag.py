"""One heavy step as its pod task, run by ``dag.test()``: what the Kubernetes lifecycle tests
start as a subprocess (so they can SIGTERM it the way a worker's task is killed), with this
folder as the DAG folder.

The operator is the one the DAGs get (:func:`flightline_airflow.k8s_operators.pod_operator_for`)
with the settings from the environment. ``FLIGHTLINE_TEST_STEP`` names the step,
``FLIGHTLINE_TEST_INPUTS`` its inputs (JSON list), ``FLIGHTLINE_TEST_TASK_KWARGS`` the task's
extra arguments (JSON: retries, short start-up limits and polls, ``gpu``, ``capacity``);
``FLIGHTLINE_TEST_PREPARE`` (a model family) takes the training DAG's own per-attempt setup
(spot or on-demand, the run key, the notice) and its Params. Run as a script it prints
``STATE <task state>`` and ``RESULT <the task's XCom as JSON>`` at the end."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags")]

from flightline_airflow.k8s_operators import pod_operator_for  # noqa: E402

from tasks.settings import Settings  # noqa: E402

STEP = os.environ.get("FLIGHTLINE_TEST_STEP", "score_day")
KWARGS = {"retries": 0, **json.loads(os.environ.get("FLIGHTLINE_TEST_TASK_KWARGS", "{}"))}
if "retry_delay" in KWARGS:
    KWARGS["retry_delay"] = timedelta(seconds=KWARGS["retry_delay"])
PARAMS = {}
if os.environ.get("FLIGHTLINE_TEST_PREPARE"):
    from flightline_training import PARAMS, _prepare  # the training DAG's own

    KWARGS["prepare"] = _prepare(os.environ["FLIGHTLINE_TEST_PREPARE"])

with DAG(dag_id=f"k8s_{STEP}", schedule=None, start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
         catchup=False, params=PARAMS) as dag:
    pod_operator_for(STEP, json.loads(os.environ.get("FLIGHTLINE_TEST_INPUTS", "[]")),
                     settings=Settings.from_env(), **KWARGS)


if __name__ == "__main__":
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dr = dag.test(logical_date=pendulum.now("UTC"))
    ti = dr.get_task_instance(STEP)
    print("STATE", ti.state, flush=True)
    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=dr.run_id, task_id=STEP,
                                                 key="return_value").one_or_none()
        print("RESULT", json.dumps(row.value if row is not None else None), flush=True)
        print("RUN", dr.run_id, flush=True)
