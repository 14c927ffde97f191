"""The S3 endpoint unreachable for 60 s in the middle of a daily run, under the live scheduler.

The stack (SQLite, schedules on) keeps its data root in a bucket of a real moto server on
loopback, reached through a TCP relay that the test can take down: while it is down, every
connection to "S3" is refused and the open ones are cut, as when an endpoint or its network goes
away; moto keeps its objects. The run must come through on Airflow's retries (30 to 60 s,
then 60 to 120 s here: Airflow spreads each exponential wait), with nothing half-published, the day monitored once, and every attempt in the cost ledger
once (the attempts that could not write their row while S3 was away are recorded when the run
ends).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

from live_airflow import LiveAirflow  # noqa: E402

from tasks.flows import daily  # noqa: E402
from tasks.localhost import free_port  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

BIN = Path(sys.executable).parent
DAY = "2013-03-15"
OUTAGE_S = 60


class Relay:
    """A TCP relay on loopback to ``target``; :meth:`down` refuses and cuts connections."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.is_down = False
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listen()

    def _listen(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(64)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed: down
            if self.is_down:  # one that raced the close: refused all the same
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        self.is_down = True
        try:  # wakes the thread blocked in accept() (close alone does not) and frees the port
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def up(self) -> None:
        self._listen()
        self.is_down = False


@pytest.fixture(scope="module")
def live(tmp_path_factory, moto_server):
    import boto3

    work = tmp_path_factory.mktemp("s3-outage")
    moto_port = int(moto_server.rsplit(":", 1)[1])
    relay = Relay(moto_port)
    endpoint = f"http://127.0.0.1:{relay.port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"}
    bucket = "flightline-outage"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    env = {**creds, "FLIGHTLINE_DATA_ROOT": f"s3://{bucket}/lake",
           "FLIGHTLINE_S3_ENDPOINT_URL": endpoint,
           "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml"),
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true",
           "FLIGHTLINE_TRAINING_SCHEDULE": "off", "FLIGHTLINE_RETRY_DELAY_SECONDS": "30"}
    full = dict(os.environ, **env)
    out = subprocess.run([str(BIN / "flightline"), "land", "--date", "2013-03-14", "--to", DAY],
                         env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    af = LiveAirflow(work, env, schedules=True)
    try:
        af.start()
        af.relay, af.bucket, af.settings_env = relay, bucket, full
        af.wait_dags("flightline_daily", "flightline_monitoring")
        af.request("PATCH", "/api/v2/dags/flightline_training", {"is_paused": True})
        af.wait_nightly()
        yield af
    finally:
        if relay.is_down:
            relay.up()
        af.stop()


def test_s3_unreachable_for_a_minute_mid_run(live, monkeypatch):
    from tasks.cost.ledger import read_ledger
    from tasks.settings import Settings
    from tasks.storage import Store

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(var, live.settings_env[var])  # this process reads the bucket too

    settings = Settings.from_env(live.settings_env)
    store = Store(settings)
    run = live.trigger("flightline_daily", conf={"day": DAY})
    rid = run["dag_run_id"]
    path = f"/api/v2/dags/flightline_daily/dagRuns/{quote(rid, safe='')}/taskInstances"
    deadline = time.monotonic() + 600
    while live.request("GET", f"{path}/raw_gate")["state"] != "running":  # mid-run
        assert time.monotonic() < deadline, "raw_gate never ran"
        time.sleep(0.2)
    live.relay.down()
    time.sleep(OUTAGE_S)
    live.relay.up()
    done = live.wait_run("flightline_daily", rid, timeout=900)
    assert done["state"] == "success", done
    tis = live.task_instances("flightline_daily", rid)
    assert {t["task_id"]: t["state"] for t in tis} == dict.fromkeys(daily.FLOW.task_ids, "success")
    retried = {t["task_id"]: t["try_number"] for t in tis if t["try_number"] > 1}
    assert retried, "no task met the outage"
    # What the failed attempts said: the storage error, naming the endpoint, never bad data.
    for task_id in retried:
        log = live.request("GET", f"{path}/{task_id}/logs/1", params={"full_content": "true"})
        text = str(log)
        assert "StorageError" in text and "not missing or bad data" in text, text[-3000:]
        assert "QualityGateFailed" not in text
    # Published once, nothing staged left behind, nothing quarantined.
    for zone in ("raw", "features"):
        final = settings.partition(zone, date.fromisoformat(DAY))
        assert store.is_committed(final), final
        parent, name = final.rsplit("/", 1)
        assert [e for e in store.list(parent) if e.startswith(f".{name}.")] == []
    assert store.list(settings.partition("quarantine", date.fromisoformat(DAY))) == []
    live.monitored.append(DAY)
    runs = live.wait_monitoring(live.monitored)  # the day's one event: one monitoring run
    assert {r["state"] for r in runs} == {"success"}, runs
    # Every attempt in the ledger once: those that could not write their row while S3 was
    # away were recorded when the run ended.
    deadline = time.monotonic() + 60
    expected = sum(t["try_number"] for t in tis)
    while len(ledger := read_ledger(settings, dag_id="flightline_daily", run_id=rid)) < expected:
        assert time.monotonic() < deadline, ledger[["task_id", "try_number", "note"]]
        time.sleep(2)
    assert len(ledger) == expected
    assert not ledger.duplicated(["task_id", "map_index", "try_number"]).any()
