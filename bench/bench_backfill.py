"""A real 30-day backfill through Airflow: standalone (scheduler, API server, LocalExecutor).

Starts `airflow standalone` with the project's AIRFLOW_HOME and a fresh data root, creates a
backfill of flightline_daily over 30 days with `airflow backfill create` (max 2 active runs),
waits for every run to finish and prints the wall time beside the one-day `dags test` time
(the baseline: 30 sequential single-day runs would take 30x that). Then creates the same
backfill again: with reprocess behaviour "none" it must create no run and change no partition.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FIRST, LAST = "2013-02-01", "2013-03-03"  # run_after dates: 30 runs, logical dates 02-01..03-02


def airflow(*args: str, env: dict, check: bool = True) -> str:
    out = subprocess.run([str(BIN / "airflow"), *args], capture_output=True, text=True, env=env)
    if check and out.returncode:
        sys.exit(f"airflow {' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return out.stdout


def runs(env: dict) -> list[dict]:
    text = airflow("dags", "list-runs", "flightline_daily", "-o", "json", env=env)
    for line in text.splitlines():  # log lines may precede the JSON document
        if line.startswith("[{") or line.strip() == "[]":
            return json.loads(line)
    return []


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "features").rglob("*.parquet")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="flightline-backfill-"))
    env = dict(os.environ, FLIGHTLINE_DATA_ROOT=str(data), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               AIRFLOW_HOME=os.environ.get("AIRFLOW_HOME", str(ROOT / ".airflow")))
    # Baseline: one day through `airflow dags test`.
    t = time.perf_counter()
    airflow("dags", "test", "flightline_daily", "2013-01-20", env=env)
    one_day = time.perf_counter() - t
    airflow("dags", "delete", "flightline_daily", "-y", env=env, check=False)  # fresh run history

    log = open(data / "standalone.log", "w")
    proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:8080/api/v2/monitor/health", timeout=2)
                break
            except Exception:
                time.sleep(2)
        else:
            sys.exit("airflow standalone did not come up; see " + str(data / "standalone.log"))
        while "flightline_daily" not in airflow("dags", "list", "-o", "plain", env=env, check=False):
            time.sleep(3)
        airflow("dags", "unpause", "flightline_daily", env=env)
        t = time.perf_counter()
        airflow("backfill", "create", "--dag-id", "flightline_daily", "--from-date", FIRST,
                "--to-date", LAST, "--max-active-runs", "2", env=env)
        while True:
            rs = [r for r in runs(env) if r["run_id"].startswith("backfill__")]
            done = [r for r in rs if r["state"] in ("success", "failed")]
            if rs and len(done) == len(rs):
                break
            time.sleep(10)
        wall = time.perf_counter() - t
        failed = [r for r in rs if r["state"] != "success"]
        before = digest(data)
        airflow("backfill", "create", "--dag-id", "flightline_daily", "--from-date", FIRST,
                "--to-date", LAST, "--reprocess-behavior", "none", env=env, check=False)
        time.sleep(20)
        again = [r for r in runs(env) if r["run_id"].startswith("backfill__")]
        print(f"30-day backfill ({FIRST}..{LAST}, max 2 active runs, parallelism 4, 2 cores)")
        print(f"  one day via dags test (baseline)   {one_day:7.1f} s   1.0x")
        print(f"  30 days via backfill               {wall:7.1f} s   {wall / one_day:.1f}x one day "
              f"({wall / 60:.1f} min; {len(rs)} runs, {len(failed)} not successful)")
        print(f"  rerun of the finished range: {len(again) - len(rs)} new runs, partitions "
              f"{'unchanged' if digest(data) == before else 'CHANGED'}")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
