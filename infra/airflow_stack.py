"""Run the local Airflow stack: api-server, execution API, scheduler, dag-processor and triggerer,
supervised.

Used by ``make airflow``, the live end-to-end test and the live benchmark, instead of
``airflow standalone``, which neither restarts a component that dies nor reliably stops on one
Ctrl-C. This supervisor:

- starts each component in its own process group, with the caller's environment
  (``AIRFLOW_HOME``, ``FLIGHTLINE_*``), logging to ``$AIRFLOW_HOME/logs/stack/<name>.log``;
- restarts a component that exits (at most ``--max-restarts`` times each), saying so;
- on SIGINT or SIGTERM asks every component to stop (SIGTERM to its group), waits up to
  ``--grace`` seconds, then kills whatever is left, including task processes that started
  their own session, so no process outlives it;
- with ``--spark-connect`` (``make airflow``'s default) also runs a warm Spark Connect server
  on loopback and points the tasks' Spark step at it (``FLIGHTLINE_SPARK_MASTER=sc://...``),
  unless ``FLIGHTLINE_SPARK_MASTER`` is already set: a task then pays no JVM start;
- serves the task execution API from its own API server process (``--apps execution``, on a
  free loopback port; ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` points the tasks at it), apart
  from the UI and REST API (``--apps core``). In one process, on SQLite, the two could block each
  other for the whole lock timeout: the REST API's audit log commits on the event loop, and
  waited there for the write lock of an execution-API request whose own commit needed that loop
  (60 s with every task and the scheduler stalled, found in a 30-day backfill);
- prints where the login is (the simple auth manager's password file, kept 0600; never the
  password itself) once the API answers;
- runs the scheduler and the triggerer without their log servers (``airflow serve-logs`` binds
  every interface and takes no host setting): the API server reads task logs from their files;
- with ``--db postgres`` (``make airflow DB=postgres``) runs the local PostgreSQL server of
  ``infra/local_postgres.py`` first, starts the rest once it accepts connections, and stops it
  last (fast shutdown), after every component that used it.

The standard library, psutil (an Airflow dependency), tasks.settings and tasks.localhost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tasks.localhost import free_port, process_tree

COMPONENTS = ("api-server", "execution-api", "scheduler", "dag-processor", "triggerer")
SPARK_CONNECT = "spark-connect"
EXECUTION_API = "execution-api"
POSTGRES = "postgres"


def spark_connect_command(bin_dir: Path, port: int) -> list[str]:
    """A Spark Connect server (local mode, loopback only) from the installed pyspark."""
    from tasks.settings import Settings

    settings = Settings.from_env()
    return [
        str(bin_dir / "spark-submit"),
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master", settings.spark_connect_master,
        "--driver-memory", settings.spark_driver_memory,
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.session.timeZone=UTC",
        "--conf", "spark.driver.extraJavaOptions=-Dlog4j2.level=WARN",
        "--name", "flightline-spark-connect",
        "spark-internal",
    ]


def _group_members(pgids: list[int]) -> set[int]:
    """Live processes in any of these process groups (orphans of an exited component)."""
    import psutil

    found: set[int] = set()
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in pgids:
                found.add(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return found


def _alive(pids: set[int]) -> set[int]:
    import psutil

    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


class Stack:
    def __init__(self, home: Path, airflow: str, components: tuple[str, ...], grace: float,
                 max_restarts: int):
        self.home = home
        self.airflow = airflow
        self.components = components
        self.grace = grace
        self.max_restarts = max_restarts
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts = dict.fromkeys(components, 0)
        self.stopping = False
        self.spark_connect_port = 0
        self.execution_api_port = 0
        self.helpers: list[subprocess.Popen] = []  # one-off jobs (the Spark warm-up)
        #: Process groups of components that exited and were restarted: what they left running
        #: (a dead scheduler's idle LocalExecutor workers) is stopped with the rest.
        self.old_groups: list[int] = []
        self.logs = home / "logs" / "stack"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.postgres = None  # the local_postgres.Cluster with --db postgres

    def command(self, name: str) -> list[str]:
        if name == POSTGRES:
            return self.postgres.server_command()
        if name == SPARK_CONNECT:
            return spark_connect_command(Path(self.airflow).parent, self.spark_connect_port)
        if name == "api-server":  # the UI, the REST API and the plugin's apps
            return [self.airflow, "api-server", "--apps", "core"]
        if name == EXECUTION_API:  # what task processes talk to, in a process of its own
            return [self.airflow, "api-server", "--apps", "execution", "--port",
                    str(self.execution_api_port)]
        if name in ("scheduler", "triggerer"):
            # Their log servers (airflow serve-logs) bind every interface and take no host
            # setting; the API server reads this machine's task logs from their files instead.
            return [self.airflow, name, "--skip-serve-logs"]
        return [self.airflow, name]

    def start(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115  (kept open for the child)
        self.procs[name] = subprocess.Popen(
            self.command(name), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=os.environ.copy())
        log.close()

    def stop(self) -> int:
        """Stop every component and every process they started; returns how many were killed.
        The metadata DB's server goes last, once nothing uses it."""
        killed = self._stop({n: p for n, p in self.procs.items() if n != POSTGRES})
        if POSTGRES in self.procs:
            self.postgres.stop(self.procs[POSTGRES], timeout=self.grace)
        return killed

    def _stop(self, procs: dict[str, subprocess.Popen]) -> int:
        self.stopping = True
        for helper in self.helpers:  # disposable: stop it first
            if helper.poll() is None:
                helper.kill()
        tracked = process_tree([p.pid for p in procs.values()] + [h.pid for h in self.helpers])
        tracked |= _group_members(self.old_groups)
        groups = [p.pid for p in procs.values() if p.poll() is None] + self.old_groups
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            for proc in procs.values():
                proc.poll()
            # Children started after the first snapshot (a task launched at the last moment).
            tracked |= process_tree([p.pid for p in procs.values() if p.poll() is None])
            if not _alive(tracked):
                return 0
            time.sleep(0.2)
        import psutil

        left = _alive(tracked)
        for pid in left:
            try:
                name = " ".join(psutil.Process(pid).cmdline()[:4])
                os.kill(pid, signal.SIGKILL)
                print(f"stack: killed {pid} ({name}) after {self.grace:.0f} s", flush=True)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        for proc in procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 5  # return once the killed are gone, not while they die
        while _alive(left) and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(left)

    def watch(self) -> None:
        while not self.stopping:
            for helper in self.helpers:  # reap a finished one-off job (no zombie left)
                helper.poll()
            for name, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or self.stopping:
                    continue
                if self.restarts[name] >= self.max_restarts:
                    print(f"stack: {name} exited ({code}) {self.restarts[name]} times; giving up "
                          f"(see {self.logs / (name + '.log')})", flush=True)
                    raise SystemExit(1)
                self.restarts[name] += 1
                self.old_groups.append(proc.pid)  # its own group (start_new_session)
                print(f"stack: {name} exited ({code}); restarting "
                      f"({self.restarts[name]}/{self.max_restarts})", flush=True)
                self.start(name)
            time.sleep(0.5)


def _warm_spark_connect(stack: Stack, port: int) -> None:
    """Once the Spark Connect server listens, run one real feature build on it (see
    ``tasks.features.build.warm_up``), so the first task does not pay the server's first-use cost."""
    import socket

    for _ in range(240):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        return
    if stack.stopping:
        return
    with open(stack.logs / "spark-connect-warm-up.log", "ab") as log:
        stack.helpers.append(subprocess.Popen(
            [sys.executable, "-m", "tasks.features.build"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=os.environ.copy()))


def _port() -> int:
    return int(os.environ.get("AIRFLOW__API__PORT", "8080"))


def _announce(home: Path) -> None:
    url = f"http://localhost:{_port()}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2).read()
            break
        except Exception:
            time.sleep(0.5)
    else:
        print("stack: the API server did not answer within 2 minutes", flush=True)
        return
    pwfile = home / "simple_auth_manager_passwords.json.generated"
    # The password stays in its 0600 file: a console is often logged or shared.
    print(f"\n  Flightline UI: {url}   user: admin, password: in {pwfile}\n"
          "  (stop with Ctrl-C)\n", flush=True)


def _service_connection(home: Path) -> None:
    """Give tasks the ``flightline_api`` connection (the service user that writes run notes),
    through the environment only: the password stays in the 0600 file, never in a config."""
    if os.environ.get("AIRFLOW_CONN_FLIGHTLINE_API"):
        return
    pwfile = home / "simple_auth_manager_passwords.json.generated"
    try:
        password = json.loads(pwfile.read_text())["flightline"]
    except (OSError, ValueError, KeyError):
        print(f"stack: no 'flightline' user in {pwfile}: run notes are off "
              "(run `make airflow-init`)", flush=True)
        return
    os.environ["AIRFLOW_CONN_FLIGHTLINE_API"] = json.dumps({
        "conn_type": "http", "host": f"http://127.0.0.1:{_port()}", "login": "flightline",
        "password": password})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grace", type=float, default=10.0,
                    help="seconds to wait for a clean stop before killing (default 10)")
    ap.add_argument("--max-restarts", type=int, default=5)
    ap.add_argument("--components", default=",".join(COMPONENTS))
    ap.add_argument("--spark-connect", action=argparse.BooleanOptionalAction, default=True,
                    help="run a warm Spark Connect server for the tasks' Spark step (default on)")
    ap.add_argument("--spark-connect-port", type=int, default=15002)
    ap.add_argument("--execution-api-port", type=int, default=0,
                    help="the task execution API's port on loopback (default: a free one)")
    ap.add_argument("--quiet", action="store_true", help="do not print the login")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                    help="postgres: run the local PostgreSQL server first (after "
                         "`infra/airflow-init.sh postgres`)")
    args = ap.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    airflow = str(Path(sys.executable).with_name("airflow"))
    components = tuple(args.components.split(","))
    from tasks.settings import Settings

    if args.spark_connect and "spark_master" not in Settings.from_env().model_fields_set:
        components = (SPARK_CONNECT, *components)
        os.environ["FLIGHTLINE_SPARK_MASTER"] = f"sc://127.0.0.1:{args.spark_connect_port}"
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if not os.environ.get("SPARK_HOME"):
            import importlib.util

            spec = importlib.util.find_spec("pyspark")
            os.environ["SPARK_HOME"] = str(Path(spec.origin).parent)
    stack = Stack(home, airflow, components, args.grace, args.max_restarts)
    stack.spark_connect_port = args.spark_connect_port
    if EXECUTION_API in components:
        stack.execution_api_port = args.execution_api_port or free_port()
        os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = \
            f"http://127.0.0.1:{stack.execution_api_port}/execution/"

    def on_signal(signum, _frame):
        if stack.stopping:
            return
        stack.stopping = True

    _service_connection(home)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.db == "postgres":
        from local_postgres import Cluster

        stack.postgres = Cluster(home)
        if not stack.postgres.exists():
            print("stack: no local PostgreSQL cluster: run `make airflow-init DB=postgres`",
                  flush=True)
            return 2
        stack.components = (POSTGRES, *stack.components)
        stack.restarts[POSTGRES] = 0
        stack.start(POSTGRES)
        stack.postgres.wait_ready(proc=stack.procs[POSTGRES])
    for name in stack.components:
        if name not in stack.procs:
            stack.start(name)
    print(f"stack: started {', '.join(stack.components)} (logs in {stack.logs})", flush=True)
    import threading

    if not args.quiet:
        threading.Thread(target=_announce, args=(home,), daemon=True).start()
    if SPARK_CONNECT in components:
        threading.Thread(target=_warm_spark_connect, daemon=True,
                         args=(stack, args.spark_connect_port)).start()
    code = 0
    try:
        stack.watch()
    except SystemExit as exc:
        code = int(exc.code or 1)
    t = time.monotonic()
    print("stack: stopping ...", flush=True)
    killed = stack.stop()
    print(f"stack: stopped in {time.monotonic() - t:.1f} s"
          + (f" ({killed} process(es) killed after {args.grace:.0f} s)" if killed else ""),
          flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
