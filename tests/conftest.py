"""Shared fixtures: isolated settings, a real moto S3/EC2 server on loopback, the project root."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))  # what Airflow does for DAG files
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# The hyperparameter search runs in every XGBoost fit; two trials keep it exercised everywhere
# without adding minutes (tests/test_model_quality.py tests the search itself).
os.environ.setdefault("FLIGHTLINE_TUNING_TRIALS", "2")
logging.getLogger("py4j").setLevel(logging.WARNING)  # no chatter at interpreter exit

from tasks.localhost import free_port  # noqa: E402
from tasks.settings import Settings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def bentoml_home(tmp_path_factory):
    """Every Bento the tests build lives in one temporary BENTOML_HOME, not the project's."""
    home = str(tmp_path_factory.mktemp("bentoml"))
    os.environ["FLIGHTLINE_BENTOML_HOME"] = home
    return home


@pytest.fixture(scope="session")
def history(tmp_path_factory, bentoml_home):
    """24 days of real published features, 2013-03-01..24 (range build through the features
    gate); shared: tests that write models copy or use it as their own data root."""
    from datetime import date, timedelta

    from tasks.flows.range_build import run_range
    from tasks.landing import land_day

    first, last = date(2013, 3, 1), date(2013, 3, 24)
    root = tmp_path_factory.mktemp("train") / "data"
    s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(root), "FLIGHTLINE_BENTOML_HOME": bentoml_home,
                           "FLIGHTLINE_TUNING_TRIALS": os.environ["FLIGHTLINE_TUNING_TRIALS"]})
    for i in range(-1, (last - first).days + 1):
        land_day(first + timedelta(days=i), s)
    out = run_range(first, last, s)
    assert out["published"] == 24, out["failed"]
    return s


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings on a fresh local data root; also exported so code reading the env agrees."""
    root = tmp_path / "data"
    monkeypatch.setenv("FLIGHTLINE_DATA_ROOT", str(root))
    for var in ("FLIGHTLINE_S3_ENDPOINT_URL", "FLIGHTLINE_REPLAY_YEAR", "FLIGHTLINE_SPARK_MASTER"):
        monkeypatch.delenv(var, raising=False)
    return Settings.from_env()


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server process (S3 and EC2 endpoints) on loopback; yields its URL."""
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("moto server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_settings(moto_server, monkeypatch, tmp_path) -> Settings:
    """Settings whose data root is a fresh bucket on the moto server."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"flightline-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    monkeypatch.setenv("FLIGHTLINE_DATA_ROOT", f"s3://{bucket}/lake")
    monkeypatch.setenv("FLIGHTLINE_S3_ENDPOINT_URL", moto_server)
    monkeypatch.delenv("FLIGHTLINE_REPLAY_YEAR", raising=False)
    return Settings.from_env()
