"""The shape of tasks/: each DAG task runs one step of its flow; the contract needs no Spark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.mark.parametrize("dag_id,flow", [("flightline_daily", "daily"),
                                         ("flightline_training", "training"),
                                         ("flightline_monitoring", "monitoring")])
def test_every_dag_task_is_one_step_of_its_flow(dagbag, dag_id, flow):
    import importlib

    steps = importlib.import_module(f"tasks.flows.{flow}").STEPS
    dag = dagbag.get_dag(dag_id)
    assert sorted(t.task_id for t in dag.tasks) == sorted(steps), (dag_id, list(steps))
    assert all(callable(step) for step in steps.values())


PROBE = r"""
import json, sys
for name in sys.argv[1:]:
    __import__(name)
heavy = {"pyspark", "pandas", "torch", "xgboost", "great_expectations", "airflow", "sklearn"}
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""


@pytest.mark.parametrize("modules", [
    ["tasks.feature_contract"],  # what training, serving and monitoring read
    ["tasks.flows.daily", "tasks.flows.range_build", "tasks.flows.training", "tasks.flows.serving",
     "tasks.flows.monitoring", "tasks.flows.cost", "tasks.cli"],
])
def test_importing_steps_loads_no_heavy_library_and_no_airflow(modules):
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_probe_sees_a_heavy_import():
    out = subprocess.run([sys.executable, "-c", PROBE, "pandas"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["pandas"]
