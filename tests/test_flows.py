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


def test_every_dag_runs_exactly_the_steps_its_flow_declares(dagbag):
    """Each flow that names a DAG: the DAG's task ids are the declared steps, in the declared
    order of dependencies (a step declared but not wired, or a task with no declaration, fails);
    every Flightline DAG is some flow's."""
    from tasks.flows.steps import flows

    wired = {f.dag: f for f in flows().values() if f.dag}
    assert set(wired) == {d for d in dagbag.dag_ids if d.startswith("flightline_")}
    for dag_id, flow in wired.items():
        dag = dagbag.get_dag(dag_id)
        assert sorted(t.task_id for t in dag.tasks) == sorted(flow.task_ids), dag_id
        for s in flow:  # a task runs after the tasks whose results its step takes
            upstream = dag.get_task(s.name).get_flat_relative_ids(upstream=True)
            for _, producers in flow.sources(s):
                assert set(producers) <= upstream, (dag_id, s.name, producers)


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
     "tasks.flows.monitoring", "tasks.flows.cost", "tasks.flows.steps", "tasks.cli"],
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
