"""Strict rules every DAG file obeys; a new DAG file is checked by simply existing in dags/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = ["pandas", "pyspark", "torch", "xgboost", "great_expectations", "evidently", "bentoml",
         "horovod", "sklearn", "pyarrow", "matplotlib"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_there_are_dag_files():
    assert DAG_FILES, "dags/ holds no DAG file"


def test_every_dag_file_imports_cleanly(dagbag):
    assert dagbag.import_errors == {}
    files = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert files == {p.name for p in DAG_FILES}, "every file in dags/ defines at least one DAG"


def test_every_dag_has_tags_owner_docs_and_retries(dagbag):
    assert dagbag.dags
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id}: doc_md missing or empty"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id}: no owner"
            assert t.retries >= 2, f"{dag_id}.{t.task_id}: retries={t.retries} < 2"


PROBE = r"""
import json, sys
from unittest import mock
calls = []
def refuse(kind):
    def fn(*a, **k):
        calls.append(f"{kind}{a[:1]}")
        raise RuntimeError(f"{kind} looked up at parse time")
    return fn
import airflow.sdk
with mock.patch.object(airflow.sdk.Variable, "get", refuse("Variable.get")), \
     mock.patch.object(airflow.sdk.Connection, "get", refuse("Connection.get")), \
     mock.patch("airflow.sdk.BaseHook.get_connection", refuse("BaseHook.get_connection")):
    before = set(sys.modules)
    import importlib.util
    spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
heavy = json.loads(sys.argv[2])
loaded = sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(heavy))
already = sorted({m.split(".")[0] for m in before} & set(heavy))
print(json.dumps({"loaded": loaded, "already": already, "calls": calls}))
"""


@pytest.mark.parametrize("pods", ["", "all"], ids=["local-steps", "pod-steps"])
@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_time_imports_nothing_heavy_and_looks_nothing_up(path, pods):
    """Import the DAG file in a fresh interpreter and inspect sys.modules afterwards; with the
    heavy steps as local tasks and as Kubernetes pods."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
               FLIGHTLINE_K8S_STEPS=pods)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), json.dumps(HEAVY)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["already"] == [], f"airflow itself imported {report['already']}"
    assert report["loaded"] == [], f"{path.name} imports {report['loaded']} at parse time"
    assert report["calls"] == []


def test_the_probe_catches_a_heavy_import(tmp_path):
    """The parse-time probe must be able to fail: a DAG importing pandas at top level is caught."""
    bad = tmp_path / "bad_dag.py"
    bad.write_text("import pandas\nfrom airflow.sdk import dag\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins"))
    out = subprocess.run([sys.executable, "-c", PROBE, str(bad), json.dumps(HEAVY)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert "pandas" in json.loads(out.stdout.strip().splitlines()[-1])["loaded"]


def test_the_probe_catches_a_variable_lookup(tmp_path):
    bad = tmp_path / "bad_dag.py"
    bad.write_text("from airflow.sdk import Variable\nX = Variable.get('x')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins"))
    out = subprocess.run([sys.executable, "-c", PROBE, str(bad), json.dumps(HEAVY)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0 and "Variable.get looked up at parse time" in out.stderr


PLUGIN_PROBE = r"""
import json, sys
from pathlib import Path
folder = Path(sys.argv[1]).resolve()
before = set(sys.modules)
# What every task process runs at start (the task runner's listener manager): each .py file
# under the plugins folder not listed in its .airflowignore is imported, as a top-level module.
from airflow.sdk._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory
plugins, errors = _load_plugins_from_plugin_directory(str(folder))
new = set(sys.modules) - before
stray = sorted(n for n in new if not n.startswith(("flightline_airflow", "flightline_plugin"))
               and str(getattr(sys.modules[n], "__file__", "") or "").startswith(str(folder)))
print(json.dumps({"plugins": sorted(type(p).__name__ for p in plugins), "errors": errors,
                  "k8s_provider": bool({"airflow.providers.cncf.kubernetes.operators.pod",
                                        "kubernetes_asyncio"} & new), "stray": stray}))
"""


def _load_plugins(folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PLUGIN_PROBE, str(folder)], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(folder)), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_each_task_loads_the_plugin_alone():
    """A task process loads the plugins folder before it runs. Only the plugin module is
    scanned: the package beside it is not imported a second time under stray top-level names,
    and the Kubernetes provider (its pod operators) stays out of a local task."""
    report = _load_plugins(ROOT / "plugins")
    assert report["plugins"] == ["FlightlinePlugin"] and report["errors"] == {}
    assert report["stray"] == [], f"plugin files imported as top-level modules: {report['stray']}"
    assert not report["k8s_provider"], "loading the plugins imported the Kubernetes provider"


def test_the_plugin_probe_catches_a_scanned_package(tmp_path):
    """Without the plugins folder's .airflowignore, the scan imports the package's files."""
    import shutil

    folder = tmp_path / "plugins"
    shutil.copytree(ROOT / "plugins", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".airflowignore").unlink()
    report = _load_plugins(folder)
    assert report["plugins"] == ["FlightlinePlugin"]
    assert "k8s_operators" in report["stray"] and report["k8s_provider"]


def test_ruff_air3_is_clean():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "AIR3", "--preview", "--no-cache",
         "dags", "plugins"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dag_files_stay_thin():
    """A DAG file wires steps: no function in dags/ over 80 lines (logic lives in tasks/)."""
    import ast

    long = []
    for path in DAG_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert long == []
