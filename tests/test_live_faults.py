"""Faults under the live scheduler: what users meet when a machine or a process dies mid-run.

One stack (``make airflow``'s supervisor, SQLite metadata DB, schedules on) on a temporary
Airflow home; each test injects one fault into real runs and then checks what the user would:
the run completes after Airflow's retries; no partition is half-written or published twice; the
monitoring DAG ran once per published day; the cost ledger holds every attempt once.

- a task process killed with SIGKILL while its Spark build runs;
- the scheduler killed with SIGKILL in the middle of a backfill;
- a training attempt killed with SIGKILL between epochs of the Horovod trainer.

Retries wait ``FLIGHTLINE_RETRY_DELAY_SECONDS`` (5 s here, 2 minutes by default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

from live_airflow import LiveAirflow  # noqa: E402

from tasks.flows import daily  # noqa: E402
from tasks.localhost import process_tree  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

BIN = Path(sys.executable).parent
HISTORY = ("2013-03-04", "2013-03-14")  # features the training window needs
SPARK_DAY = "2013-03-15"
BACKFILL = ("2013-03-16", "2013-03-19")  # run_after range: logical days 03-16 .. 03-18
BACKFILL_DAYS = ["2013-03-16", "2013-03-17", "2013-03-18"]


def _flightline(*args: str, env: dict) -> None:
    out = subprocess.run([str(BIN / "flightline"), *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    work = tmp_path_factory.mktemp("faults")
    data = work / "data"
    env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml"),
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "FLIGHTLINE_TRAINING_SCHEDULE": "off", "FLIGHTLINE_RETRY_DELAY_SECONDS": "5"}
    full = dict(os.environ, **env)
    _flightline("land", "--date", "2013-03-03", "--to", HISTORY[1], env=full)
    _flightline("features-range", "--from", HISTORY[0], "--to", HISTORY[1], env=full)
    af = LiveAirflow(work, env, schedules=True)
    try:
        af.start()
        af.data = data
        af.wait_dags("flightline_daily", "flightline_training", "flightline_monitoring")
        # Schedules on: the nightly run for "yesterday" starts at once; let it and its
        # monitoring run finish first, and keep the training DAG to the runs the tests start.
        af.request("PATCH", "/api/v2/dags/flightline_training", {"is_paused": True})
        af.wait_nightly()
        yield af
    finally:
        af.stop()


def _ti(af: LiveAirflow, dag_id: str, run_id: str, task_id: str) -> dict:
    return af.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
                             f"/taskInstances/{task_id}")


def _tries(af: LiveAirflow, dag_id: str, run_id: str, task_id: str) -> list[dict]:
    out = af.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
                            f"/taskInstances/{task_id}/tries")
    return sorted(out["task_instances"], key=lambda t: t["try_number"])


def _kill_when(af: LiveAirflow, dag_id: str, run_id: str, task_id: str, ready, timeout=600) -> int:
    """SIGKILL the process running ``task_id``'s first attempt once ``ready()`` holds; its pid."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ti = _ti(af, dag_id, run_id, task_id)
        if ti["state"] == "running" and ti.get("pid") and ready():
            proc = psutil.Process(ti["pid"])
            assert ti["pid"] in process_tree([af.proc.pid]), proc.cmdline()  # this stack's
            proc.kill()
            return ti["pid"]
        assert ti["state"] in (None, "scheduled", "queued", "running"), ti
        time.sleep(0.2)
    raise TimeoutError(f"{task_id} never reached the moment to kill it")


def _committed_once(data: Path, zone: str, day: str) -> None:
    """The day's partition is published (``_SUCCESS``), and nothing staged or half-moved is
    left beside it."""
    folder = data / zone
    assert (folder / f"dt={day}" / "_SUCCESS").exists(), sorted(p.name for p in folder.iterdir())
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(f".dt={day}")]
    assert leftovers == [], leftovers


def _ledger(af: LiveAirflow, dag_id: str, run_id: str, attempts: int | None = None):
    """The run's ledger rows; with ``attempts``, once it holds that many (the attempts that
    could not report are recorded by the scheduler after the run ends)."""
    from tasks.cost.ledger import read_ledger
    from tasks.settings import Settings

    settings = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(af.data)})
    deadline = time.monotonic() + 90
    while len(rows := read_ledger(settings, dag_id=dag_id, run_id=run_id)) < (attempts or 0):
        assert time.monotonic() < deadline, rows[["task_id", "try_number", "note"]]
        time.sleep(2)
    return rows


def test_task_killed_mid_spark_is_retried_and_publishes_once(live):
    run = live.trigger("flightline_daily", conf={"day": SPARK_DAY})
    rid = run["dag_run_id"]
    features = live.data / "features"

    def building() -> bool:  # the build's stage exists and Spark has not finished it yet
        stages = list(features.glob(f".dt={SPARK_DAY}.tmp-*")) if features.is_dir() else []
        return bool(stages) and not any((s / "_manifest.json").exists() for s in stages)

    _kill_when(live, "flightline_daily", rid, "build_features", building)
    done = live.wait_run("flightline_daily", rid, timeout=900)
    assert done["state"] == "success", done
    tries = _tries(live, "flightline_daily", rid, "build_features")
    assert [t["state"] for t in tries] == ["failed", "success"], tries
    states = {ti["task_id"]: ti["state"] for ti in live.task_instances("flightline_daily", rid)}
    assert states == dict.fromkeys(daily.FLOW.task_ids, "success"), states
    for zone in ("features", "raw"):
        _committed_once(live.data, zone, SPARK_DAY)
    live.monitored.append(SPARK_DAY)
    live.wait_monitoring(live.monitored)  # the day's one event: one monitoring run
    ledger = _ledger(live, "flightline_daily", rid, attempts=len(daily.FLOW.task_ids) + 1)
    rows = ledger[ledger["task_id"] == "build_features"]
    assert sorted(rows["try_number"]) == [1, 2], rows
    assert "killed" in rows[rows["try_number"] == 1]["note"].iloc[0], rows
    assert not ledger.duplicated(["task_id", "map_index", "try_number"]).any()


def test_scheduler_killed_mid_backfill_loses_no_day(live):
    import psutil

    stack = psutil.Process(live.proc.pid)
    live.backfill("flightline_daily", *BACKFILL, max_active_runs=2)
    deadline = time.monotonic() + 300
    while not any(ti["state"] == "running" for r in live.runs("flightline_daily")
                  if r["run_type"] == "backfill"
                  for ti in live.task_instances("flightline_daily", r["dag_run_id"])):
        assert time.monotonic() < deadline, "the backfill never started a task"
        time.sleep(0.5)
    scheduler = next(p for p in stack.children()
                     if p.status() != psutil.STATUS_ZOMBIE and "scheduler" in " ".join(p.cmdline()))
    exits = live.stack_output().count("scheduler exited")
    scheduler.kill()
    while live.stack_output().count("scheduler exited") <= exits:
        time.sleep(0.5)
    runs = [r for r in live.runs("flightline_daily") if r["run_type"] == "backfill"]
    assert len(runs) == 3, [r["dag_run_id"] for r in runs]
    finished = live.wait_runs("flightline_daily", [r["dag_run_id"] for r in runs], timeout=900)
    assert {r["state"] for r in finished} == {"success"}, [(r["dag_run_id"], r["state"]) for r in finished]
    assert sorted(r["logical_date"][:10] for r in finished) == BACKFILL_DAYS
    assert "restarting" in live.stack_output()
    assert live.health()["scheduler"]["status"] == "healthy"
    for day in BACKFILL_DAYS:
        for zone in ("features", "raw"):
            _committed_once(live.data, zone, day)
    live.monitored += BACKFILL_DAYS
    live.wait_monitoring(live.monitored)  # each day once, none lost, none twice
    for r in finished:
        tries = sum(ti["try_number"] for ti in live.task_instances("flightline_daily", r["dag_run_id"]))
        ledger = _ledger(live, "flightline_daily", r["dag_run_id"], attempts=tries)
        assert not ledger.duplicated(["task_id", "map_index", "try_number"]).any(), ledger
        assert set(daily.FLOW.task_ids) <= set(ledger["task_id"]), ledger


def test_training_killed_mid_epoch_resumes_from_its_checkpoint(live):
    live.request("PATCH", "/api/v2/dags/flightline_training", {"is_paused": False})
    run = live.trigger("flightline_training", logical_date=f"{SPARK_DAY}T12:00:00Z",
                       conf={"window_days": 14, "model_family": "torch-horovod",
                             "horovod_workers": 2, "budget_minutes": 10})
    rid = run["dag_run_id"]
    checkpoints = live.data / "models" / "checkpoints"

    def between_epochs() -> bool:  # an epoch is checkpointed, training goes on
        return any(checkpoints.glob("*/latest.json")) if checkpoints.is_dir() else False

    killed = _kill_when(live, "flightline_training", rid, "train_torch_horovod", between_epochs)
    import psutil

    # The trainer's ranks die with the attempt (none goes on writing the checkpoint).
    def ranks() -> list[int]:
        out = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if ("tasks.training.hvd_train" in " ".join(p.info["cmdline"] or [])
                        and p.environ().get("AIRFLOW_HOME") == str(live.home)):
                    out.append(p.pid)
            except psutil.Error:
                pass
        return out

    # (the retry starts its own ranks no sooner than its 5 s delay and its start-up)
    deadline = time.monotonic() + 4
    while left := ranks():
        assert time.monotonic() < deadline, f"ranks of the killed attempt {killed} left: {left}"
        time.sleep(0.2)
    done = live.wait_run("flightline_training", rid, timeout=1200)
    assert done["state"] == "success", done
    tries = _tries(live, "flightline_training", rid, "train_torch_horovod")
    assert [t["state"] for t in tries][-1] == "success" and tries[0]["state"] == "failed", tries
    assert killed == tries[0]["pid"] or tries[0]["pid"] is None
    result = live.request("GET", f"/api/v2/dags/flightline_training/dagRuns/{quote(rid, safe='')}"
                                 "/taskInstances/train_torch_horovod/xcomEntries/return_value")
    value = result["value"] if isinstance(result["value"], dict) else json.loads(result["value"])
    from tasks.settings import Settings
    from tasks.training import registry

    card = registry.show(value["version"], Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(live.data)}))
    assert card["trainer"]["resumed_from"] is not None, card["trainer"]  # from the killed epoch
    ledger = _ledger(live, "flightline_training", rid, attempts=len(tries))
    rows = ledger[ledger["task_id"] == "train_torch_horovod"]
    assert sorted(rows["try_number"]) == [t["try_number"] for t in tries], rows
