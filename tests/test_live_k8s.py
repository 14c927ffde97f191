"""A pod task under the live scheduler: the daily DAG with ``build_features`` as a Kubernetes pod
(``FLIGHTLINE_K8S_STEPS``), against the Kubernetes API server of ``tests/kube_api.py``.

The user clears the running task in the UI (the REST call the UI makes): Airflow stops the
task's process, the operator deletes its pod within 30 s, and the task runs again as a new try,
whose pod runs the step's own command (Spark, local in the pod); its log reaches the task log in
the UI, its result the XCom, and the run publishes the day. Nothing is left in the cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from kube_api import Cluster, Script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

from live_airflow import LiveAirflow  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

BIN = Path(sys.executable).parent
DAY = "2013-03-05"


def test_clearing_a_running_pod_task_deletes_its_pod_and_the_rerun_publishes(tmp_path):
    work = tmp_path
    data = work / "data"
    busy = Script(run="scripted", logs=["spark: stage 0"], hang=900)
    with Cluster(work / "cluster") as cluster:
        # try 1 is busy until cleared; the try after it runs the pod's own command. The data
        # volume is "mounted" where the data root is, as on a cluster both see the same files.
        cluster.scripts["build-features"] = lambda pod: busy if pod["metadata"]["labels"].get(
            "try_number") == "1" else Script()
        env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml"),
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
               "FLIGHTLINE_TRAINING_SCHEDULE": "off", "FLIGHTLINE_RETRY_DELAY_SECONDS": "5",
               "FLIGHTLINE_K8S_STEPS": "build_features", "FLIGHTLINE_K8S_DATA_MOUNT": str(data),
               "FLIGHTLINE_K8S_SPARK_EXECUTORS": "0", **cluster.connection_env()}
        land = subprocess.run([str(BIN / "flightline"), "land", "--date", "2013-03-04"],
                              env=dict(os.environ, **env), capture_output=True, text=True)
        assert land.returncode == 0, land.stderr[-3000:]
        af = LiveAirflow(work, env, spark_connect=False)
        try:
            af.start()
            af.wait_dags("flightline_daily")
            run_id = af.trigger("flightline_daily", logical_date=f"{DAY}T00:00:00Z")["dag_run_id"]
            first = cluster.wait_for(lambda: [n for n, p in cluster.pods().items()
                                              if p["status"].get("phase") == "Running"] or None,
                                     timeout=400)[0]
            time.sleep(3)  # the task follows the pod's log
            cleared = time.monotonic()
            af.request("POST", "/api/v2/dags/flightline_daily/clearTaskInstances", {
                "dry_run": False, "dag_run_id": run_id, "task_ids": ["build_features"],
                "only_failed": False, "only_running": False, "include_downstream": False,
                "include_upstream": False, "reset_dag_runs": False})
            cluster.wait_for(lambda: first in cluster.deleted or None, timeout=60)
            assert cluster.deleted[first] - cleared <= 30, cluster.deleted[first] - cleared
            run = af.wait_run("flightline_daily", run_id, timeout=600)
            assert run["state"] == "success", af.task_instances("flightline_daily", run_id)
            ti = next(t for t in af.task_instances("flightline_daily", run_id)
                      if t["task_id"] == "build_features")
            assert ti["try_number"] >= 2 and ti["state"] == "success"
            rid = quote(run_id, safe="")
            base = f"/api/v2/dags/flightline_daily/dagRuns/{rid}/taskInstances/build_features"
            log = af.request("GET", f"{base}/logs/{ti['try_number']}", params={"full_content": True})
            text = str(log)
            assert "[base]" in text and "Deleting pod" in text
            staged = af.request("GET", f"{base}/xcomEntries/return_value")["value"]
            assert "2013-03-05" in str(staged)
            assert list((data / "features" / f"dt={DAY}").rglob("*.parquet"))  # published
            assert len([m for m, p in cluster.requests if m == "POST" and p.endswith("/pods")]) == 2
            cluster.wait_for(lambda: not cluster.left() or None, timeout=30)
            assert cluster.left() == []
        finally:
            af.stop()
