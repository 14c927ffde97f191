"""Feature throughput on scaled data: Spark and DuckDB against a plain pyarrow read-and-write floor.

The 2013 year (336,776 flights) is replicated 30 times (10.1M rows) into one Parquet input,
untimed, shaped as a range build's input: every flight is its own day's (``is_today``) under
``batch_day`` = its own date, as :func:`tasks.features.build.build_features_range` partitions a
range (no look-back copies: every day's previous day is in the input as its own batch). Each
replica is another fleet: flight numbers are offset and tail numbers suffixed (the planes table
is replicated the same way), so keys stay distinct and a plane's rotation stays one rotation.
Replicas share dates and airports: a day at an airport has 30x the year's traffic. Then, on the
same input:

- floor: pyarrow reads it and writes it back as Parquet (no computation at all);
- DuckDB (``bench/duckdb_features.py``): the same features in SQL, written as Parquet;
- Spark (:func:`tasks.features.transform.write_features`): every feature, written as Parquet
  (one file per day, as the range build writes them); twice in the same session, the first run
  in a fresh JVM (cold) and the second warm.

Both engines get the machine's cores and the same input. Prints rows/s for each and its time as a
multiple of the floor's. ``BENCH_REPLICAS`` scales the input (30 by default);
``BENCH_SPARK_STAGES=1`` also prints Spark's slowest stages (from the Spark UI's REST API: task
time, shuffle, spill).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPLICAS = int(os.environ.get("BENCH_REPLICAS", "30"))
STAGES = os.environ.get("BENCH_SPARK_STAGES") == "1"
SPARK_ONLY = os.environ.get("BENCH_SPARK_ONLY") == "1"  # skip DuckDB (iterating on Spark)


def _slowest_stages(spark, top: int = 12) -> list[str]:
    """The stages with the most task time, from the Spark UI's REST API."""
    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages?details=false") as r:
        stages = json.load(r)
    stages.sort(key=lambda s: -s.get("executorRunTime", 0))
    lines = []
    for s in stages[:top]:
        lines.append(
            f"    stage {s['stageId']:>3} {s['executorRunTime'] / 1000:7.1f} s task time "
            f"{s['numTasks']:>4} tasks  in {s['inputBytes'] / 2**20:6.0f} MiB  "
            f"shuffle r/w {s['shuffleReadBytes'] / 2**20:5.0f}/{s['shuffleWriteBytes'] / 2**20:5.0f} MiB  "
            f"spill mem/disk {s['memoryBytesSpilled'] / 2**20:5.0f}/{s['diskBytesSpilled'] / 2**20:4.0f} MiB  "
            f"{s['name'][:60]}")
    return lines


def _duckdb(tmp: Path, cores: int, floor: float, rows: int) -> tuple[float, int]:
    from bench.duckdb_features import connect, feature_sql

    con = connect(threads=cores)
    t = time.perf_counter()
    con.execute(
        f"CREATE VIEW flights AS SELECT *, row_number() OVER () AS fid "
        f"FROM read_parquet('{tmp / 'input'}/*.parquet')")
    con.execute(f"CREATE VIEW weather AS SELECT * FROM read_parquet('{tmp / 'weather'}/*.parquet')")
    con.execute(f"CREATE VIEW planes AS SELECT * FROM read_parquet('{tmp / 'planes'}/*.parquet')")
    con.execute(f"COPY ({feature_sql()}) TO '{tmp / 'duckdb.parquet'}' (FORMAT parquet)")
    duck_s = time.perf_counter() - t
    duck_rows = con.execute(f"SELECT count(*) FROM '{tmp / 'duckdb.parquet'}'").fetchone()[0]
    con.close()
    print(f"  DuckDB features (same SQL semantics)  {duck_s:7.1f} s  {rows / duck_s:12,.0f} rows/s  "
          f"{duck_s / floor:.1f}x the floor", flush=True)
    return duck_s, duck_rows


def main() -> None:
    import pyarrow.parquet as pq
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from tasks.features.transform import write_features
    from tasks.landing import _read_source_csv, _to_csv, land_reference
    from tasks.raw_contract import FLIGHT_COLUMNS, PLANE_COLUMNS, WEATHER_COLUMNS
    from tasks.settings import Settings
    from tasks.spark import read_csv, spark_session

    tmp = Path(tempfile.mkdtemp(prefix="flightline-tput-"))
    try:
        settings = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(tmp / "data"),
                                      "FLIGHTLINE_SPARK_DRIVER_MEMORY": "8g"})
        refs = land_reference(settings)
        src = tmp / "src"
        src.mkdir()
        for name in ("flights", "weather"):
            header, body = _read_source_csv(name)
            (src / f"{name}.csv").write_bytes(_to_csv(header, body))
        if STAGES:  # the UI's REST API serves the stage metrics (off in the project's sessions)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as spark_session sets it
            SparkSession.builder.config("spark.ui.enabled", "true").config(
                "spark.ui.showConsoleProgress", "false").config(
                "spark.driver.memory", "8g").master(settings.spark_master).getOrCreate()
        spark = spark_session(settings, "bench-throughput")
        cores = os.cpu_count() or 1
        # 16 day groups per shuffle partition's worth of tasks, kept at 16: AQE would coalesce
        # them to a few large tasks that leave a core idle at the end.
        spark.conf.set("spark.sql.shuffle.partitions", "16")
        spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
        reps = spark.range(REPLICAS).withColumnRenamed("id", "rep")
        flights = read_csv(spark, str(src / "flights.csv"), FLIGHT_COLUMNS)
        big = flights.crossJoin(reps).withColumn(
            "flight", F.col("flight") + F.col("rep").cast("int") * 10000).withColumn(
            "tailnum", F.when(F.col("rep") > 0, F.concat("tailnum", F.lit("-"), "rep"))
            .otherwise(F.col("tailnum"))).drop("rep").withColumn(
            "is_today", F.lit(True)).withColumn(
            "batch_day", F.date_format(F.make_date("year", "month", "day"), "yyyy-MM-dd"))
        big.write.parquet(str(tmp / "input"))
        planes = read_csv(spark, refs["planes"], PLANE_COLUMNS)
        planes.crossJoin(reps).withColumn(
            "tailnum", F.when(F.col("rep") > 0, F.concat("tailnum", F.lit("-"), "rep"))
            .otherwise(F.col("tailnum"))).drop("rep").write.parquet(str(tmp / "planes"))
        read_csv(spark, str(src / "weather.csv"), WEATHER_COLUMNS).write.parquet(str(tmp / "weather"))
        rows = spark.read.parquet(str(tmp / "input")).count()

        t = time.perf_counter()
        table = pq.read_table(tmp / "input")
        pq.write_table(table, tmp / "floor.parquet")
        floor = time.perf_counter() - t
        del table
        print(f"Feature throughput on {rows:,} rows (the 2013 year x {REPLICAS}, one batch per day), "
              f"{cores} cores", flush=True)
        print(f"  floor: pyarrow read + write Parquet   {floor:7.1f} s  {rows / floor:12,.0f} rows/s  1.0x",
              flush=True)

        # Twice in the same session: the first run pays for the JVM's just-in-time compilation
        # and the Python workers' start (a fresh `features-range` process), the second is what a
        # warm Spark (the local stack's Spark Connect server) gives.
        spark_s = {}
        for run in ("cold", "warm"):
            t = time.perf_counter()
            shutil.rmtree(tmp / "features", ignore_errors=True)
            written = write_features(spark.read.parquet(str(tmp / "input")),
                                     spark.read.parquet(str(tmp / "weather")),
                                     spark.read.parquet(str(tmp / "planes")), str(tmp / "features"))
            spark_s[run] = time.perf_counter() - t
        spark_rows = sum(written.values())
        assert spark_rows == pq.read_table(tmp / "features", columns=["flight"]).num_rows
        stages = _slowest_stages(spark) if STAGES else []
        spark.stop()
        # DuckDB after Spark's JVM has gone: neither engine runs beside the other.
        duck_rows = duck_s = None
        if not SPARK_ONLY:
            duck_s, duck_rows = _duckdb(tmp, cores, floor, rows)
        assert duck_rows in (None, spark_rows), (duck_rows, spark_rows)
        for run, secs in spark_s.items():
            print(f"  Spark features, {run} JVM             {secs:7.1f} s  {rows / secs:12,.0f} rows/s  "
                  f"{secs / floor:.1f}x the floor"
                  + (f", {secs / duck_s:.2f}x DuckDB's time ({spark_rows:,} feature rows from each)"
                     if duck_s else f" ({spark_rows:,} feature rows)"))
        if stages:
            print("  Spark's slowest stages:")
            print("\n".join(stages))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
