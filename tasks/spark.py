"""SparkSession for Flightline steps: local by default, a standalone cluster by setting the master.

``FLIGHTLINE_SPARK_MASTER=spark://host:7077`` runs the same step on a cluster unchanged; the data
root must then be a path every executor can reach (shared disk), as Spark reads and writes it.
``FLIGHTLINE_SPARK_MASTER=sc://127.0.0.1:15002`` sends the step to a warm Spark Connect server
(``make airflow`` starts one beside the local stack): no JVM start per task, the same DataFrame
code.
"""

from __future__ import annotations

import os
import sys

from tasks import raw_contract
from tasks.settings import Settings


def spark_session(settings: Settings, app_name: str = "flightline"):
    """Create (or reuse) a SparkSession configured for small daily partitions."""
    from pyspark.sql import SparkSession

    if settings.spark_master.startswith("sc://"):
        # Spark Connect: the server owns the JVM and its static settings; only session
        # settings travel with the client.
        return (
            SparkSession.builder.remote(settings.spark_master)
            .appName(app_name)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.sql.parquet.compression.codec", "snappy")
            .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
            .getOrCreate()
        )
    # Executors must run the same interpreter as the driver (UDF-free code still ships lambdas).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.parquet.compression.codec", "snappy")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
    )
    if settings.spark_master.startswith("spark://"):
        builder = builder.config("spark.executor.memory", "1g").config("spark.cores.max", "2")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _schema(columns):
    from pyspark.sql import types as T

    kinds = {
        "int": T.IntegerType(), "double": T.DoubleType(), "string": T.StringType(),
        "timestamp": T.TimestampType(),
    }
    unknown = sorted({k for _, k in columns} - kinds.keys())
    if unknown:
        raise ValueError(f"raw contract: no Spark type for column type(s) {unknown}")
    return T.StructType([T.StructField(n, kinds[k], True) for n, k in columns])


def read_csv(spark, uri: str | list[str], columns):
    """Drop or reference CSV(s) read by the raw contract (``tasks/raw_contract.py``): explicit
    schema, header checked against it, FAILFAST on any value outside the contract."""
    uris = [uri] if isinstance(uri, str) else uri
    for u in uris:
        if u.startswith("s3://"):
            raise ValueError(
                f"Spark steps read and write the data root directly; {u} is on S3. Use a local or "
                "shared-disk data root for Spark (S3 works for every non-Spark step)."
            )
    return spark.read.options(**raw_contract.SPARK_CSV_OPTIONS).csv(uri, schema=_schema(columns))


def warm_up(settings: Settings) -> float:
    """Run the real feature build once on a throwaway data root; returns its seconds.

    A fresh Spark Connect server compiles its code paths on first use: the first feature build
    after a start takes several times a warm one. The local stack runs this as soon as the server
    listens, so the first nightly or UI-triggered run does not pay for it.
    """
    import shutil
    import tempfile
    import time
    from datetime import date

    from tasks.flows import daily
    from tasks.landing import land_day

    root = tempfile.mkdtemp(prefix="flightline-spark-warm-up-")
    try:
        scratch = settings.with_overrides(data_root=root, s3_endpoint_url="")
        for day in (date(2013, 1, 1), date(2013, 1, 2)):
            land_day(day, scratch)
        t = time.perf_counter()
        daily.build_features(daily.find_drop(date(2013, 1, 2), scratch), scratch)
        return time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # python -m tasks.spark: warm the configured Spark (Connect) master up
    seconds = warm_up(Settings.from_env())
    print(f"spark warm-up: one feature build in {seconds:.1f} s")
