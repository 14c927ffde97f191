"""A live local Airflow for tests and benchmarks: a fresh Airflow home, the supervised stack
(``infra/airflow_stack.py``: api-server, scheduler, dag-processor, triggerer) on a free loopback
port, driven through the public REST API (:class:`flightline_airflow.api.AirflowAPI`, the client the
plugin's run notes use), logged in with the generated password.

    with LiveAirflow(tmp_path, env={"FLIGHTLINE_DATA_ROOT": ...}) as af:
        run = af.trigger("flightline_daily", conf={"day": "2013-03-15"})
        af.wait_run("flightline_daily", run["dag_run_id"])

The standard library, psutil and httpx (Airflow dependencies), tasks.localhost and the plugin's
API client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))  # as Airflow puts it, for the API client

from flightline_airflow.api import AirflowAPI  # noqa: E402

from tasks.localhost import free_port, process_tree  # noqa: E402

BIN = Path(sys.executable).parent
FINISHED = {"success", "failed"}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str, what: str):
        self.status = status
        super().__init__(f"{what}: HTTP {status}: {body[:500]}")


class LiveAirflow:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None, *,
                 schedules: bool = False, grace: float = 10.0, spark_connect: bool = True,
                 db: str = "sqlite"):
        self.workdir = Path(workdir)
        self.db = db  # sqlite, or postgres: a local PostgreSQL server of its own (removed on stop)
        self.home = self.workdir / "airflow-home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grace = grace
        self.spark_connect = spark_connect
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.env.update({
            "AIRFLOW_HOME": str(self.home),
            "PATH": f"{BIN}{os.pathsep}{self.env.get('PATH', '')}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "GX_ANALYTICS_ENABLED": "false",
        })
        if not schedules:
            # Only the runs a test asks for: no nightly run for "yesterday", no asset-triggered
            # run, so what it measures and asserts is deterministic. Manual runs and backfills
            # are scheduled as usual.
            self.env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
        self.proc: subprocess.Popen | None = None
        self.api = AirflowAPI(self.url, "admin", "", timeout=60)  # password: once the stack runs
        self.token = ""
        self.stop_seconds: float | None = None
        self.left_behind: list[int] = []
        self.refused = 0  # requests the API server refused with a 503 (then retried)
        self.monitored: list[str] = []  # days the monitoring DAG ran for (wait_nightly)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LiveAirflow:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def init(self) -> None:
        """A fresh Airflow home: config, secrets, login file, migrated metadata DB."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        init = subprocess.run(["bash", str(ROOT / "infra" / "airflow-init.sh"), self.db],
                              env=self.env, capture_output=True, text=True)
        if init.returncode:
            raise RuntimeError(f"airflow-init failed:\n{init.stdout}\n{init.stderr}")

    def start(self, timeout: float = 240) -> None:
        self.init()
        self.stack_log = open(self.workdir / "stack.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "infra" / "airflow_stack.py"), "--quiet",
             "--grace", str(self.grace), f"--spark-connect-port={free_port()}", "--db", self.db,
             "--spark-connect" if self.spark_connect else "--no-spark-connect"],
            env=self.env, stdout=self.stack_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.api.__enter__()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the stack exited early; see {self.workdir / 'stack.log'}")
            try:
                self.health()
                break
            except Exception:
                time.sleep(1)
        else:
            raise RuntimeError(f"the API server did not answer in {timeout} s")
        self.api.password = self.password("admin")
        self.token = self.api.login()

    def stop(self) -> None:
        """SIGINT to the supervisor, as Ctrl-C would; records how long it took and what was left."""
        if self.proc is None:
            self._drop_postgres()  # a start that failed after creating the cluster
            return
        import psutil

        tree = process_tree([self.proc.pid]) | {self.proc.pid}
        t = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=self.grace + 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.stop_seconds = time.monotonic() - t
        self.left_behind = sorted(pid for pid in tree if psutil.pid_exists(pid)
                                  and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        self.left_behind += [p.pid for p in psutil.process_iter(["environ"])
                             if p.pid not in self.left_behind and p.pid != os.getpid()
                             and (p.info.get("environ") or {}).get("AIRFLOW_HOME") == str(self.home)]
        self.stack_log.close()
        self.api.__exit__()
        self.proc = None
        self._drop_postgres()

    def _drop_postgres(self) -> None:
        if self.db == "postgres":  # this home's throwaway cluster
            from local_postgres import Cluster

            Cluster(self.home).destroy()

    def stack_output(self) -> str:
        return (self.workdir / "stack.log").read_text()

    def restarts(self, component: str = "scheduler") -> int:
        """How many times the supervisor saw ``component`` exit (and restarted it)."""
        return self.stack_output().count(f"{component} exited")

    # ------------------------------------------------------------------ HTTP
    def password(self, user: str) -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[user]

    def request(self, method: str, path: str, body=None, *, token: str | None = None,
                params: dict | None = None, raw: bool = False):
        """A REST call as admin (``token=""``: with no login); its JSON, or with ``raw`` the
        (status, body, headers) whatever the status. An error status raises :class:`ApiError`."""
        resp = self.api.send(method, path, auth=token != "", json=body, params=params)
        if raw:
            return resp.status_code, resp.content, dict(resp.headers)
        if resp.is_error:
            raise ApiError(resp.status_code, resp.text, f"{method} {path}")
        return resp.json() if resp.content else None

    def health(self) -> dict:
        return self.request("GET", "/api/v2/monitor/health", token="")

    def wait_dags(self, *dag_ids: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing and time.monotonic() < deadline:
            for dag_id in list(missing):
                try:
                    self.request("GET", f"/api/v2/dags/{dag_id}")
                    missing.remove(dag_id)
                except ApiError:
                    pass
            time.sleep(1)
        if missing:
            raise TimeoutError(f"DAGs not parsed in {timeout} s: {missing}")

    def wait_spark_warm(self, timeout: float = 300) -> str:
        """Wait for the stack's Spark Connect warm-up to finish; returns its log line."""
        log = self.home / "logs" / "stack" / "spark-connect-warm-up.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            if "spark warm-up:" in text or "Traceback" in text:
                return text.strip().splitlines()[-1]
            time.sleep(1)
        raise TimeoutError(f"no Spark warm-up in {timeout} s")

    # ------------------------------------------------------------------ runs
    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> dict:
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                            {"logical_date": logical_date, "conf": conf or {}})

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def runs(self, dag_id: str) -> list[dict]:
        """Every run of the DAG (the API answers at most its page limit, 100 by default, a call)."""
        out: list[dict] = []
        while True:
            page = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns",
                                params={"limit": 100, "offset": len(out), "order_by": "id"})
            out.extend(page["dag_runs"])
            if not page["dag_runs"] or len(out) >= page["total_entries"]:
                return out

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        rid = urllib.parse.quote(run_id, safe="")
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances")["task_instances"]

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict:
        rid = urllib.parse.quote(run_id, safe="")
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}/links")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} not finished in {timeout} s")

    def wait_nightly(self, timeout: float = 600) -> list[str]:
        """With schedules on (catchup off), the daily DAG's schedule starts one run at once, for
        yesterday: wait for it and for its monitoring run. Sets and returns ``monitored``, the
        days the monitoring DAG has run for so far (none if the nightly run failed)."""
        deadline = time.monotonic() + 300
        while not (nightly := [r for r in self.runs("flightline_daily")
                               if r["run_type"] == "scheduled"]):
            if time.monotonic() > deadline:
                raise TimeoutError("no scheduled run of flightline_daily")
            time.sleep(2)
        done = self.wait_run("flightline_daily", nightly[0]["dag_run_id"], timeout=timeout)
        self.monitored = [done["logical_date"][:10]] if done["state"] == "success" else []
        self.wait_monitoring(self.monitored)
        return self.monitored

    def post_features_event(self, day: str) -> dict:
        """The features Asset's event for ``day`` (partitioned by it), as ``publish_features``
        emits it: the monitoring DAG runs for that day."""
        assets = self.request("GET", "/api/v2/assets", params={"uri_pattern": "flightline://features"})
        asset_id = next(a["id"] for a in assets["assets"] if a["uri"].startswith("flightline://features"))
        return self.request("POST", "/api/v2/assets/events",
                            {"asset_id": asset_id, "partition_key": day, "extra": {"day": day}})

    def wait_monitoring(self, days: list[str], timeout: float = 900) -> list[dict]:
        """Wait until the monitoring DAG has exactly one finished run per day in ``days`` (its
        partition key) and no other; its runs."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs("flightline_monitoring")
            keys = sorted(r.get("partition_key") or "" for r in runs)
            if keys == sorted(days) and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"monitoring runs for {days}: "
                                   f"{[(r['partition_key'], r['state']) for r in runs]}")
            time.sleep(3)

    def backfill(self, dag_id: str, from_date: str, to_date: str, max_active_runs: int = 2,
                 reprocess: str = "none", attempts: int = 10) -> dict:
        """Create a backfill. On SQLite, Airflow answers 503 ("Database is locked") while the
        scheduler holds the write lock: that is transient, so it is retried, as a user would."""
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date,
                "max_active_runs": max_active_runs, "reprocess_behavior": reprocess,
                "run_backwards": False, "dag_run_conf": {}}
        for attempt in range(attempts):
            try:
                return self.request("POST", "/api/v2/backfills", body)
            except ApiError as exc:
                if exc.status == 503:
                    self.refused += 1
                if exc.status != 503 or attempt == attempts - 1:
                    raise
                time.sleep(min(2 + attempt, 10))
        raise AssertionError("unreachable")

    def wait_runs(self, dag_id: str, run_ids: list[str], timeout: float = 900) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = {r["dag_run_id"]: r for r in self.runs(dag_id)}
            got = [runs[i] for i in run_ids if i in runs]
            if len(got) == len(run_ids) and all(r["state"] in FINISHED for r in got):
                return got
            time.sleep(3)
        raise TimeoutError(f"{dag_id}: runs not finished in {timeout} s")


def task_seconds(tis: list[dict]) -> dict[str, float]:
    """Each task instance's duration, and the run's span from first start to last end."""
    from datetime import datetime

    out, starts, ends = {}, [], []
    for ti in tis:
        if ti.get("start_date") and ti.get("end_date"):
            s, e = (datetime.fromisoformat(ti[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
            out[ti["task_id"]] = round((e - s).total_seconds(), 1)
            starts.append(s)
            ends.append(e)
    if starts:
        out["span"] = round((max(ends) - min(starts)).total_seconds(), 1)
    return out
