"""The Spark step runs unchanged on a standalone cluster (master + worker on loopback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tasks.features.staging import read_features
from tasks.flows.daily import build_features, publish_features
from tasks.landing import land_day
from tasks.localhost import free_port
from tasks.settings import Settings

DAY = date(2013, 3, 10)


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    spark_class = spark_home / "bin" / "spark-class"
    port, worker_port = free_port(), free_port()
    logs = tmp_path_factory.mktemp("spark-logs")
    env = dict(os.environ, SPARK_HOME=str(spark_home), SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_PYTHON=sys.executable, SPARK_WORKER_DIR=str(logs / "work"))
    master = subprocess.Popen(
        [str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(free_port())],
        env=env, stdout=open(logs / "master.log", "w"), stderr=subprocess.STDOUT,
    )
    _wait_port(port)
    url = f"spark://127.0.0.1:{port}"
    worker = subprocess.Popen(
        [str(spark_class), "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
         "--port", str(worker_port), "--webui-port", str(free_port()), "--cores", "2",
         "--memory", "2g"],
        env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT,
    )
    _wait_port(worker_port)
    time.sleep(2)  # registration with the master
    yield url, logs
    for p in (worker, master):
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.mark.slow
def test_one_day_through_a_standalone_master_and_worker(tmp_path, standalone_cluster, monkeypatch):
    url, logs = standalone_cluster
    root = tmp_path / "data"
    local = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(root / "local")})
    cluster = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(root / "cluster"),
                                 "FLIGHTLINE_SPARK_MASTER": url})
    results = {}
    for name, s in (("local", local), ("cluster", cluster)):
        land_day(DAY - timedelta(days=1), s)
        drop = land_day(DAY, s)
        res = build_features(drop, s)  # each builds and stops its own session
        publish_features(res, s)
        results[name] = read_features([DAY], s).sort_values(["carrier", "flight", "origin"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(results["local"], results["cluster"])
    # The work really ran on the cluster's executor, not in the driver.
    app_dirs = list((logs / "work").glob("app-*"))
    assert app_dirs, "no application ran on the standalone worker"
