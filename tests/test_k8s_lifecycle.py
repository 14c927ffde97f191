"""Pods that change state: the step pod operator, the Spark step and the MPIJob operator against a
Kubernetes API server on loopback (``tests/kube_api.py``), through ``dag.test()`` in a process of
its own, with the provider's operators and the real ``kubernetes`` client.

Each case scripts what the cluster does (a pod never scheduled, an image that cannot be pulled,
a spot node reclaimed, a worker that dies) and checks what the user sees in the task's log and
state, and that nothing is left behind: no pod, MPIJob or executor pod in the API server and no
container process, once the task has ended or been killed. Each case is a fresh Airflow
process (about 10 s); the happy path runs in ``make test-fast``, the rest are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kube_api import Cluster, Script

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "k8s_dag" / "step_pod_dag.py"
SPOT = {"instance_type": "g5.xlarge", "zone": "us-east-1b", "capacity_type": "spot",
        "hourly_usd": 0.42, "on_demand_usd": 1.006, "reason": "cheapest spot"}
#: Short polls, as a test can afford (the defaults suit a cluster: seconds to minutes).
FAST = {"startup_check_interval_seconds": 1, "poll_interval": 1}
SPLIT = [{"split": "2013-03-01..2013-03-24"}]


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path / "cluster") as c:
        yield c


class Task:
    """``dag.test()`` of one step's pod task, in a subprocess."""

    def __init__(self, cluster: Cluster, tmp_path: Path, step: str, inputs: list, *,
                 kwargs: dict | None = None, env: dict | None = None, prepare: str = ""):
        self.cluster, self.root = cluster, tmp_path / "data"
        full = {**os.environ, **cluster.connection_env(),
                "AIRFLOW__CORE__DAGS_FOLDER": str(RUNNER.parent),
                "FLIGHTLINE_TEST_STEP": step, "FLIGHTLINE_TEST_INPUTS": json.dumps(inputs),
                "FLIGHTLINE_TEST_TASK_KWARGS": json.dumps(kwargs or {}),
                "FLIGHTLINE_TEST_PREPARE": prepare,
                "FLIGHTLINE_DATA_ROOT": str(self.root), "FLIGHTLINE_K8S_DATA_MOUNT": str(self.root),
                "FLIGHTLINE_K8S_SPARK_EXECUTORS": "0", **(env or {})}
        self.log = tmp_path / f"{step}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, str(RUNNER)], env=full, cwd=ROOT,
                                     stdout=self._out, stderr=subprocess.STDOUT)

    def finish(self, timeout: float = 240) -> tuple[str, object, str]:
        """The task's state, its XCom and the whole output (the task log included)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._out.close()
        out = self.log.read_text()
        lines = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] for ln in out.splitlines()
                 if ln.startswith(("STATE ", "RESULT ", "RUN "))}
        assert "STATE" in lines, out[-4000:]
        return lines["STATE"], json.loads(lines["RESULT"]), out


def created_pods(cluster: Cluster) -> int:
    return sum(1 for m, p in cluster.requests if m == "POST" and p.endswith("/pods"))


def nothing_left(cluster: Cluster) -> None:
    """No pod, job or container process left (deletion may take the grace period)."""
    try:
        cluster.wait_for(lambda: not cluster.left() or None, timeout=30)
    except AssertionError:
        pass
    assert cluster.left() == []


# ------------------------------------------------------------------------------ the happy path
def test_a_step_pod_streams_its_log_to_the_task_and_its_result_to_xcom(cluster, tmp_path):
    cluster.scripts["score-day"] = Script(run="scripted", logs=["scoring 2013-03-02", "scored 812 flights"],
                                          result={"day": "2013-03-02", "rows": 812})
    state, result, out = Task(cluster, tmp_path, "score_day", [{"day": "2013-03-02"}], kwargs=FAST).finish()
    assert state == "success", out[-4000:]
    assert result == {"day": "2013-03-02", "rows": 812}
    assert "[base] scoring 2013-03-02" in out and "[base] scored 812 flights" in out
    nothing_left(cluster)


@pytest.mark.slow
def test_a_step_that_fails_in_its_pod_fails_the_task_with_its_log(cluster, tmp_path):
    cluster.scripts["score-day"] = Script(run="scripted", logs=["FileNotFoundError: no scored day"],
                                          exit_code=1)
    state, result, out = Task(cluster, tmp_path, "score_day", [{"day": "2013-03-02"}], kwargs=FAST).finish()
    assert state == "failed" and result is None
    assert "[base] FileNotFoundError: no scored day" in out
    assert "returned a failure" in out
    nothing_left(cluster)  # a failed pod goes too; its states and events are in the task log


@pytest.mark.slow  # Spark in the pod's process
def test_the_features_step_runs_its_own_command_in_the_pod(cluster, tmp_path):
    """The pod's own command (``flightline step daily.build_features``) with the pod's
    environment, as the kubelet would start it: its Spark log in the task log, its staged
    partitions as the XCom."""
    from datetime import date

    from tasks.flows import daily
    from tasks.landing import land_day
    from tasks.settings import Settings

    s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(tmp_path / "data")})
    for d in (date(2013, 3, 1), date(2013, 3, 2)):
        land_day(d, s)
    drop = daily.find_drop(date(2013, 3, 2), s).to_dict()
    state, result, out = Task(cluster, tmp_path, "build_features", [drop], kwargs=FAST).finish(600)
    assert state == "success", out[-6000:]
    assert result["rows"] > 500 and result["day"] == "2013-03-02"
    assert "[base]" in out
    nothing_left(cluster)


# ------------------------------------------------------------------------------ cannot start
@pytest.mark.slow
def test_a_pod_pending_past_its_start_up_limit_fails_with_the_schedulers_reason(cluster, tmp_path):
    reason = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    cluster.scripts["train-xgboost"] = Script(unschedulable=reason)
    task = Task(cluster, tmp_path, "train_xgboost", SPLIT,
                kwargs={**FAST, "startup_timeout_seconds": 5, "gpu": True, "capacity": SPOT})
    started = time.monotonic()
    state, _, out = task.finish()
    assert state == "failed"
    assert f"was not scheduled within 5 s: {reason}; the pod was deleted" in out
    assert "FailedScheduling" in out  # the pod's events, in the task log
    assert time.monotonic() - started < 5 + 30 + 20  # the limit, 30 s, and the process's start-up
    nothing_left(cluster)


@pytest.mark.slow
@pytest.mark.parametrize("why", ["ErrImagePull", "ImagePullBackOff"])
def test_an_image_that_cannot_be_pulled_fails_at_once_without_retries(cluster, tmp_path, why):
    cluster.scripts["score-day"] = Script(image_pull=why)
    state, _, out = Task(cluster, tmp_path, "score_day", [{"day": "2013-03-02"}],
                         kwargs={**FAST, "retries": 2, "retry_delay": 0},
                         env={"FLIGHTLINE_K8S_IMAGE": "ghcr.io/flightline/flightline:no-such-tag"}).finish()
    assert state == "failed"
    assert (f"image ghcr.io/flightline/flightline:no-such-tag cannot be pulled ({why}" in out)
    assert "not retried" in out
    assert created_pods(cluster) == 1  # no retry loop
    nothing_left(cluster)


# ------------------------------------------------------------------------------ spot
@pytest.mark.slow
@pytest.mark.parametrize("how", ["node reclaimed", "exit 75"])
def test_a_spot_interruption_is_retried_on_demand_after_the_limit(cluster, tmp_path, how):
    """The first attempt's pod is stopped by a spot reclaim (its node shut down) or exits 75
    (a notice, checkpointed): the task fails as interrupted, the ledger says so, and the retry
    (the training DAG's own per-attempt setup) asks for on-demand nodes once the run has had
    ``spot_max_interruptions`` of them; its result is the task's."""
    from tasks.cost.ledger import read_ledger
    from tasks.settings import Settings

    done = Script(run="scripted", logs=["round 20"], result={"version": "v0001"})
    if how == "node reclaimed":
        cluster.scripts["train-xgboost"] = Script(run="scripted", logs=["round 20"], hang=2,
                                                  result={"version": "v0001"}, reclaim_after=1.0)
    else:  # the first try's pod exits 75 (a notice, checkpointed), the second succeeds
        notice = Script(run="scripted", logs=["spot notice: checkpointed"], exit_code=75)
        cluster.scripts["train-xgboost"] = lambda pod: notice if pod["metadata"]["labels"].get(
            "try_number") == "1" else done
    task = Task(cluster, tmp_path, "train_xgboost", SPLIT, prepare="xgboost",
                kwargs={**FAST, "gpu": True, "capacity": SPOT, "retries": 2, "retry_delay": 0},
                env={"FLIGHTLINE_SPOT_MAX_INTERRUPTIONS": "1"})
    state, result, out = task.finish()
    assert state == "success", out[-6000:]
    assert result == {"version": "v0001"}
    assert created_pods(cluster) == 2
    expected = "was stopped with its node (Terminated" if how == "node reclaimed" \
        else "stopped by a spot interruption notice"
    assert expected in out
    assert "1 spot interruptions: g5.xlarge on demand" in out
    run_id = next(ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("RUN "))
    ledger = read_ledger(Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(task.root)}),
                         dag_id="k8s_train_xgboost", run_id=run_id)
    assert list(ledger.sort_values("try_number")["state"]) == ["interrupted", "success"]
    assert list(ledger.sort_values("try_number")["capacity_type"]) == ["spot", "on-demand"]
    nothing_left(cluster)


# ------------------------------------------------------------------------------ killed
def _running(cluster: Cluster, **labels):
    def running():
        pods = cluster.pods(**labels)
        return pods if pods and all(p["status"].get("phase") == "Running" for p in pods.values()) else None
    return running


@pytest.mark.slow
@pytest.mark.parametrize("what", ["step pod", "spark driver and executors", "mpijob"])
def test_a_killed_task_leaves_no_pod_behind(cluster, tmp_path, what):
    """SIGTERM to the task's process (what Airflow sends when a task is killed, marked failed or
    cleared in the UI while it runs): the operator's ``on_kill`` deletes what it started within
    30 s, and the garbage collector takes their dependents (Spark's executor pods, owned by the
    driver pod its conf names; an MPIJob's launcher and workers)."""
    busy = Script(run="scripted", logs=["working"], hang=300)
    if what == "step pod":
        cluster.scripts["score-day"] = busy
        task = Task(cluster, tmp_path, "score_day", [{"day": "2013-03-02"}], kwargs=FAST)
        expect = 1
    elif what == "spark driver and executors":
        cluster.scripts["build-features"] = Script(run="scripted", logs=["stage 0"], hang=300, spark_executors=2)
        task = Task(cluster, tmp_path, "build_features", [{"drop": "x"}], kwargs=FAST,
                    env={"FLIGHTLINE_K8S_SPARK_EXECUTORS": "2"})
        expect = 3
    else:
        cluster.scripts["launcher"] = cluster.scripts["worker"] = busy
        task = Task(cluster, tmp_path, "train_torch_horovod", SPLIT, kwargs={"poll_s": 1},
                    env={"FLIGHTLINE_HOROVOD_NODES": "2"})
        expect = 3
    try:
        pods = cluster.wait_for(_running(cluster), timeout=120)
        assert cluster.wait_for(lambda: len(cluster.pods()) == expect or None, timeout=30)
        if what == "spark driver and executors":
            driver = next(n for n in pods if "exec" not in n)
            owners = {n: [r["name"] for r in p["metadata"].get("ownerReferences", [])]
                      for n, p in cluster.pods(**{"spark-role": "executor"}).items()}
            assert len(owners) == 2 and all(o == [driver] for o in owners.values()), owners
        time.sleep(2)  # the task is in its wait
        killed = time.monotonic()
        task.proc.send_signal(signal.SIGTERM)
        cluster.wait_for(lambda: not cluster.left() or None, timeout=30)
        took = max(cluster.deleted.values()) - killed
        print(f"{what}: everything deleted {took:.1f} s after the SIGTERM")
        assert took <= 30
        assert cluster.left() == []
        state, _, out = task.finish(120)
        assert state != "success"
    finally:
        if task.proc.poll() is None:
            task.proc.kill()
            task.proc.wait()
        task._out.close()


# ------------------------------------------------------------------------------ MPIJob
@pytest.mark.slow
def test_an_mpijob_runs_and_its_launchers_result_is_the_tasks(cluster, tmp_path):
    cluster.scripts["launcher"] = Script(run="scripted", logs=["epoch 1: loss 0.52", "epoch 2: loss 0.49"],
                                         result={"version": "v0007", "family": "torch-horovod"})
    cluster.scripts["worker"] = Script(run="scripted", hang=300)  # sshd until the job ends
    state, result, out = Task(cluster, tmp_path, "train_torch_horovod", SPLIT, kwargs={"poll_s": 1},
                              env={"FLIGHTLINE_HOROVOD_NODES": "2"}).finish()
    assert state == "success", out[-6000:]
    assert result == {"version": "v0007", "family": "torch-horovod"}
    assert "epoch 2: loss 0.49" in out  # the launcher's log in the task log
    nothing_left(cluster)


@pytest.mark.slow
def test_a_dying_mpijob_worker_fails_the_task_with_that_workers_reason(cluster, tmp_path):
    cluster.scripts["launcher"] = Script(run="scripted", logs=["epoch 1"], hang=300)
    cluster.scripts["worker"] = Script(run="scripted", hang=1, exit_code=137, reason="OOMKilled")
    state, _, out = Task(cluster, tmp_path, "train_torch_horovod", SPLIT, kwargs={"poll_s": 1},
                         env={"FLIGHTLINE_HOROVOD_NODES": "2"}).finish()
    assert state == "failed"
    assert "ended Failed" in out
    assert "-worker-0 (worker) OOMKilled, exit 137" in out
    nothing_left(cluster)
