"""Spark feature throughput on scaled data against a plain pyarrow read-and-write floor.

The 2013 year (336,776 flights) is replicated 30 times (10.1M rows, flight numbers offset so
keys stay distinct) into one Parquet input, untimed. Then, on the same input:
- floor: pyarrow reads it and writes it back as Parquet (no computation at all);
- Spark: reads it, builds every feature (windows, joins), writes Parquet.
Prints rows/s for both and Spark's time as a multiple of the floor.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPLICAS = int(os.environ.get("BENCH_REPLICAS", "30"))


def main() -> None:
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from tasks.features.transform import feature_frame
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
        spark = spark_session(settings, "bench-throughput")
        # At 10M rows the fid joins are large on both sides: sort-merge, never broadcast.
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        spark.conf.set("spark.sql.adaptive.autoBroadcastJoinThreshold", "-1")
        spark.conf.set("spark.sql.shuffle.partitions", "16")
        flights = read_csv(spark, str(src / "flights.csv"), FLIGHT_COLUMNS)
        big = flights.crossJoin(spark.range(REPLICAS).withColumnRenamed("id", "rep")).withColumn(
            "flight", F.col("flight") + F.col("rep").cast("int") * 10000).drop("rep")
        big.write.parquet(str(tmp / "input"))
        rows = spark.read.parquet(str(tmp / "input")).count()

        t = time.perf_counter()
        table = pq.read_table(tmp / "input")
        pq.write_table(table, tmp / "floor.parquet")
        floor = time.perf_counter() - t
        del table

        weather = read_csv(spark, str(src / "weather.csv"), WEATHER_COLUMNS)
        planes = read_csv(spark, refs["planes"], PLANE_COLUMNS)
        t = time.perf_counter()
        # Every row is a day's own flight (no look-back rows), all in one batch, as the transform
        # expects its input: ``is_today`` and ``batch_day`` (its windows are partitioned by it).
        f, out, _ = feature_frame(
            spark.read.parquet(str(tmp / "input")).withColumn("is_today", F.lit(True))
            .withColumn("batch_day", F.lit("bench")), weather, planes)
        out.write.parquet(str(tmp / "features"))
        spark_s = time.perf_counter() - t
        f.unpersist()
        spark.stop()
        print(f"Feature throughput on {rows:,} rows (the 2013 year x {REPLICAS}), 2 cores")
        print(f"  floor: pyarrow read + write Parquet   {floor:7.1f} s  {rows / floor:12,.0f} rows/s  1.0x")
        print(f"  Spark features (windows, joins)       {spark_s:7.1f} s  {rows / spark_s:12,.0f} rows/s  {spark_s / floor:.1f}x the floor")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
