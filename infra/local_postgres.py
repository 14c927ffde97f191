"""A PostgreSQL server as the local stack's metadata DB, from the distribution's package (Debian's
``postgresql``, which ``infra/install.sh`` installs when it is missing), without Docker.

- One cluster per Airflow home. Its folder is ``$AIRFLOW_HOME/postgres``; ``cluster.json``
  there records the data folder, the port (chosen once, free on loopback) and the socket folder.
- The same database, user and driver as the compose file and the Helm values: database and
  user ``airflow``, ``postgresql+psycopg2``. The password is generated once and kept 0600 in
  ``$AIRFLOW_HOME/.postgres_password``.
- It listens on 127.0.0.1 only (password auth, scram-sha-256); its Unix socket folder is 0700.
- PostgreSQL refuses to run as root. Under root the cluster belongs to the unprivileged
  ``postgres`` system user (the package creates it) and every server command runs as that user
  (``runuser``). When that user cannot reach the Airflow home (a 0700 temporary folder), the
  data folder lives in a folder of its own under the system's temporary folder instead.

Commands (``python infra/local_postgres.py ...``): ``init`` (create the cluster; safe to run
again), ``url`` (print the SQLAlchemy URL), ``run -- CMD...`` (start the server, run CMD, stop),
``destroy`` (stop it and remove its data). :func:`server_command` is what the stack supervisor
runs in the foreground.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.localhost import free_port  # noqa: E402

OWNER = "postgres"  # the unprivileged system user that runs the server when we are root
DB = USER = "airflow"


def bin_dir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise SystemExit("local_postgres: no PostgreSQL server installed "
                     "(apt-get install postgresql, or run `make install` as root)")


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", OWNER, "--", *cmd] if os.geteuid() == 0 else cmd


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OWNER, OWNER)


def _owner_can_reach(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    return subprocess.run(_as_owner(["test", "-x", str(path)]), capture_output=True).returncode == 0


class Cluster:
    def __init__(self, home: Path):
        self.home = Path(home).resolve()
        self.dir = self.home / "postgres"
        self.meta_file = self.dir / "cluster.json"
        self.password_file = self.home / ".postgres_password"

    # -- layout ----------------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        return json.loads(self.meta_file.read_text())

    @property
    def data(self) -> Path:
        return Path(self.meta["data"])

    @property
    def sockets(self) -> Path:
        return Path(self.meta["sockets"])

    @property
    def port(self) -> int:
        return int(self.meta["port"])

    def url(self) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql+psycopg2://{USER}:{password}@127.0.0.1:{self.port}/{DB}"

    def exists(self) -> bool:
        return self.meta_file.exists() and (self.data / "PG_VERSION").exists()

    # -- lifecycle ---------------------------------------------------------------------------
    def init(self) -> None:
        """Create the cluster and its database once; later calls keep it."""
        if self.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            with open(os.open(self.password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
                fh.write(secrets.token_urlsafe(24) + "\n")
        if _owner_can_reach(self.dir):
            base = self.dir
        else:  # e.g. a test's 0700 temporary Airflow home: the server's user cannot enter it
            tag = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
            base = Path(tempfile.gettempdir()) / f"flightline-postgres-{tag}"
            base.mkdir(mode=0o700, exist_ok=True)
            _chown(base)
        data, sockets = base / "data", base / "run"
        for folder in (data, sockets):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _chown(folder)
        pwfile = base / "initdb-password"
        pwfile.write_text(self.password_file.read_text())
        pwfile.chmod(0o600)
        _chown(pwfile)
        try:
            self._run([str(bin_dir() / "initdb"), "-D", str(data), "-U", USER,
                       f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                       "-E", "UTF8", "--locale=C.UTF-8"])
        finally:
            pwfile.unlink(missing_ok=True)
        # Only loopback TCP (password) and the owner's own socket; nothing else.
        (data / "pg_hba.conf").write_text(
            "# Flightline's local metadata DB: loopback only\n"
            f"host    all  {USER}  127.0.0.1/32  scram-sha-256\n"
            f"host    all  {USER}  ::1/128       scram-sha-256\n")
        _chown(data / "pg_hba.conf")
        self._run([str(bin_dir() / "postgres"), "--single", "-D", str(data), "template1"],
                  input=f"CREATE DATABASE {DB} OWNER {USER};\n")
        tmp = self.meta_file.with_suffix(".new")
        tmp.write_text(json.dumps({"data": str(data), "sockets": str(sockets),
                                   "port": free_port()}))
        tmp.replace(self.meta_file)

    def server_command(self) -> list[str]:
        """The server in the foreground (the supervisor's component)."""
        return _as_owner([str(bin_dir() / "postgres"), "-D", str(self.data),
                          "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                          "-c", f"unix_socket_directories={self.sockets}",
                          "-c", "unix_socket_permissions=0700",
                          # Sized for the local stack: the API servers, scheduler, dag-processor,
                          # triggerer and up to `parallelism` task processes hold connections.
                          "-c", "max_connections=200", "-c", "shared_buffers=128MB"])

    def ready(self) -> bool:
        out = subprocess.run([str(bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p",
                              str(self.port), "-d", DB, "-U", USER], capture_output=True)
        return out.returncode == 0

    def wait_ready(self, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"local_postgres: the server exited ({proc.returncode}); "
                                 f"see its log")
            if time.monotonic() > deadline:
                raise SystemExit(f"local_postgres: not ready on 127.0.0.1:{self.port} "
                                 f"after {timeout:.0f} s")
            time.sleep(0.2)

    def start(self, log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(self.server_command(), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready(proc=proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT: sessions are closed, nothing is lost)."""
        import signal

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def destroy(self) -> None:
        """Remove the cluster's data (the server must be stopped)."""
        if self.meta_file.exists():
            base = self.data.parent
            shutil.rmtree(base if base != self.dir else self.data, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, cmd: list[str], input: str | None = None) -> None:
        out = subprocess.run(_as_owner(cmd), input=input, capture_output=True, text=True,
                             cwd="/")
        if out.returncode:
            raise SystemExit(f"local_postgres: {' '.join(cmd[:2])} failed ({out.returncode}):\n"
                             f"{out.stdout[-2000:]}{out.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["init", "url", "run", "destroy"])
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="for run: -- CMD ARGS...")
    args = ap.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    cluster = Cluster(home)
    if args.action == "init":
        cluster.init()
        print(f"local_postgres: cluster in {cluster.data}, 127.0.0.1:{cluster.port}")
    elif args.action == "url":
        print(cluster.url())
    elif args.action == "run":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        (home / "logs").mkdir(parents=True, exist_ok=True)
        proc = cluster.start(home / "logs" / "postgres-init.log")
        try:
            return subprocess.run(cmd).returncode
        finally:
            cluster.stop(proc)
    elif args.action == "destroy":
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
