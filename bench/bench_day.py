"""One day end to end, and each quality gate beside the Spark job it guards.

1. Baseline: a fresh process that only starts and stops a local SparkSession.
2. `airflow dags test flightline_daily <day>`: the real DAG run (fresh data root), wall time;
   Spark start-up's share of it is (1) / (2).
3. In-process breakdown (`tasks.flows.daily.run_day`, warm Spark session, N days): raw gate,
   Spark feature job, features gate; each gate as a ratio to the Spark job it guards.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2013, 6, 12)
BREAKDOWN_DAYS = [date(2013, 6, d) for d in range(3, 8)]


def spark_startup() -> float:
    code = (
        "import os; os.environ['SPARK_LOCAL_IP']='127.0.0.1'\n"
        "from pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.master('local[2]').config('spark.ui.enabled','false').getOrCreate()\n"
        "s.range(1).count(); s.stop()"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t


def dag_run(data_root: str) -> float:
    env = dict(os.environ, FLIGHTLINE_DATA_ROOT=data_root,
               AIRFLOW_HOME=os.environ.get("AIRFLOW_HOME", str(ROOT / ".airflow")))
    t = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test",
                          "flightline_daily", DAY.isoformat()],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if "state=success" not in out.stdout + out.stderr:
        sys.exit("the DAG run did not succeed:\n" + (out.stdout + out.stderr)[-3000:])
    return wall


def breakdown(data_root: str) -> list[dict]:
    from tasks.flows.daily import run_day
    from tasks.settings import Settings
    from tasks.spark import spark_session

    settings = Settings.from_env({"FLIGHTLINE_DATA_ROOT": data_root})
    spark = spark_session(settings, "bench-day")
    run_day(date(2013, 6, 2), settings, spark=spark)  # warm-up: JIT, GE import
    rows = [run_day(d, settings, spark=spark)["seconds"] for d in BREAKDOWN_DAYS]
    spark.stop()
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="flightline-bench-") as tmp:
        startup = statistics.median(spark_startup() for _ in range(3))
        wall = dag_run(str(Path(tmp) / "dag"))
        rows = breakdown(str(Path(tmp) / "inproc"))
    med = {k: statistics.median(r[k] for r in rows) for k in ("raw_gate", "spark_job", "features_gate", "total")}
    print(f"One day end to end ({DAY}, 2 cores)")
    print(f"  airflow dags test flightline_daily       {wall:6.1f} s")
    print(f"  Spark start-up alone (fresh process)     {startup:6.1f} s   = {startup / wall:.0%} of the run")
    print(f"In-process, warm Spark session, median of {len(rows)} days:")
    print(f"  Spark feature job                        {med['spark_job']:6.2f} s   1.00x")
    print(f"  raw gate (flights + weather suites)      {med['raw_gate']:6.2f} s   {med['raw_gate'] / med['spark_job']:.2f}x the Spark job")
    print(f"  features gate                            {med['features_gate']:6.2f} s   {med['features_gate'] / med['spark_job']:.2f}x the Spark job")
    print(f"  whole day (land, gates, Spark, publish)  {med['total']:6.2f} s")


if __name__ == "__main__":
    main()
