"""Spark builds: a day's drop (or a range of drops) into the typed raw partition and staged features.

Reads the drops with the raw contract's schemas (:func:`tasks.spark.read_csv`), runs the feature
transform (:mod:`tasks.features.transform`) and writes through the shared staged write
(:mod:`tasks.features.staging`). First day: when the previous day's drop is absent, look-back
covers the day itself only and the partition manifest says ``history_days: 0``; features with no
history are null. Cancelled, diverted and impossible rows are counted in the result.

On an S3 data root Spark reads local copies of the drop's files (no Hadoop S3 connector is
installed, and a day's drop is a few hundred kilobytes), writes its partitions locally, and the
staged results are uploaded to hidden prefixes beside their partitions in the bucket.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from tasks.features.day import day_folder
from tasks.features.staging import (
    StagedFeatures,
    finish_features,
    stage_folder,
    stage_in_root,
)
from tasks.features.transform import timed_flights, write_features
from tasks.landing import Drop, reference_uri
from tasks.raw_contract import FLIGHT_COLUMNS, PLANE_COLUMNS, WEATHER_COLUMNS
from tasks.settings import Settings
from tasks.spark import read_csv
from tasks.storage import Store


@contextmanager
def _session(settings: Settings, app_name: str, spark=None) -> Iterator:
    """The given Spark session, or one of our own that is stopped at the end."""
    if spark is not None:
        yield spark
        return
    from tasks.spark import spark_session

    own = spark_session(settings, app_name)
    try:
        yield own
    finally:
        own.stop()


@contextmanager
def _local_inputs(settings: Settings) -> Iterator:
    """``local(uri)``: a path Spark can read. Spark has no S3 connector here, so on an S3 data
    root each input is copied into a scratch folder (its path below the root kept: the range
    build reads the day from ``dt=``) that lives as long as the build."""
    if not settings.is_s3:
        yield lambda uri: uri
        return
    import tempfile

    store = Store(settings)
    with tempfile.TemporaryDirectory(prefix="flightline-inputs-") as tmp:
        def local(uri: str) -> str:
            dest = Path(tmp) / uri[len(settings.root) + 1:]
            if not dest.exists():
                store.download(uri, dest)
            return str(dest)

        yield local


def _flight_names() -> list[str]:
    return [c for c, _ in FLIGHT_COLUMNS]


def build_features(drop: Drop, settings: Settings, *, spark=None) -> StagedFeatures:
    """Build the features of ``drop``'s day and its typed raw partition into staged folders.

    The drop's look-back drop (the day before, when it was complete) feeds the look-back
    features. :func:`tasks.features.staging.publish_features` publishes both, after the gates.
    """
    from pyspark.sql import functions as F

    day = drop.day
    prev = drop.lookback
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with _local_inputs(settings) as local, \
            _session(settings, f"flightline-features-{day.isoformat()}", spark) as spark:
        timings["spark_start"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        flights = read_csv(spark, local(drop.flights_uri), FLIGHT_COLUMNS).withColumn(
            "is_today", F.lit(True)
        ).withColumn("batch_day", F.lit(day.isoformat()))
        weather = read_csv(spark, local(drop.weather_uri), WEATHER_COLUMNS)
        if prev is not None:
            flights = flights.unionByName(
                read_csv(spark, local(prev.flights_uri), FLIGHT_COLUMNS).withColumn(
                    "is_today", F.lit(False)
                ).withColumn("batch_day", F.lit(day.isoformat()))
            )
            weather = weather.unionByName(read_csv(spark, local(prev.weather_uri), WEATHER_COLUMNS))
        planes = read_csv(spark, local(reference_uri("planes", settings)), PLANE_COLUMNS)

        today = timed_flights(flights).where("is_today")
        counts = today.agg(
            F.count("*").alias("rows_in"),
            F.sum(F.col("cancelled").cast("int")).alias("cancelled"),
            F.sum(F.col("diverted").cast("int")).alias("diverted"),
            F.sum((F.col("impossible") & ~F.col("cancelled") & ~F.col("diverted")).cast("int"))
            .alias("impossible"),
        ).collect()[0]
        dropped = {k: int(counts[k] or 0) for k in ("cancelled", "diverted", "impossible")}

        # The features (one file, rows in flight order) and the typed raw partition to hidden
        # staging folders.
        stage = stage_folder("features", day, settings)
        raw_stage = stage_folder("raw", day, settings)
        write_features(flights, weather, planes, str(stage / "days"))
        written = Path(day_folder(str(stage / "days"), day.isoformat()))
        if not written.is_dir():
            raise ValueError(f"{drop.flights_uri}: no flights to build {day.isoformat()}'s "
                             "features from")
        written.rename(stage / "data")
        (stage / "days").rmdir()
        today.select(*_flight_names()).coalesce(1).write.mode("overwrite").parquet(
            str(raw_stage / "flights"))
        src = drop.source_day
        weather.where(
            (F.col("year") == src.year) & (F.col("month") == src.month) & (F.col("day") == src.day)
        ).coalesce(1).write.mode("overwrite").parquet(str(raw_stage / "weather"))
        timings["spark_job"] = time.perf_counter() - t1

    history_days = 1 if prev is not None else 0
    rows = finish_features(stage, {
        "day": day.isoformat(),
        "source_day": src.isoformat(),
        "rows_in": int(counts["rows_in"]),
        "dropped": dropped,
        "history_days": history_days,
        "inputs": [drop.flights_uri, drop.weather_uri]
        + ([prev.flights_uri, prev.weather_uri] if prev else []),
    })
    return StagedFeatures(
        day=day,
        features_uri=stage_in_root(stage, settings.partition("features", day), settings),
        raw_uri=settings.partition("raw", day),
        raw_staged=stage_in_root(raw_stage, settings.partition("raw", day), settings),
        rows=rows,
        dropped=dropped,
        history_days=history_days,
        seconds={k: round(v, 3) for k, v in timings.items()},
    )


def build_features_range(drops: dict[date, Drop], first: date, last: date, settings: Settings,
                         *, spark=None) -> list[StagedFeatures]:
    """Build every day in ``[first, last]`` in one Spark job, each staged as the daily build
    stages it; the typed raw flights of each day are staged beside (``raw_staged``), to publish
    with the features.

    ``drops`` holds every day's drop and, when complete, the day before ``first`` (look-back).
    Each day's look-back rows are duplicated under that day's ``batch_day``, so every partition
    equals what the daily build gives for it.
    """
    from pyspark.sql import functions as F

    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    work = None
    staged: list[StagedFeatures] = []
    try:
        with _local_inputs(settings) as local, \
                _session(settings, f"flightline-features-{first}-{last}", spark) as spark:
            flights = read_csv(spark, [local(d.flights_uri) for d in drops.values()], FLIGHT_COLUMNS)
            flights = flights.withColumn("drop_day", F.to_date(
                F.regexp_extract(F.input_file_name(), r"dt=(\d{4}-\d{2}-\d{2})", 1)))
            today = flights.where(F.col("drop_day") >= F.lit(first.isoformat()).cast("date")).select(
                *_flight_names(), F.lit(True).alias("is_today"),
                F.col("drop_day").cast("string").alias("batch_day"))
            history = flights.where(F.col("drop_day") < F.lit(last.isoformat()).cast("date")).select(
                *_flight_names(), F.lit(False).alias("is_today"),
                F.date_add("drop_day", 1).cast("string").alias("batch_day"))
            weather = read_csv(spark, [local(d.weather_uri) for d in drops.values()], WEATHER_COLUMNS)
            planes = read_csv(spark, local(reference_uri("planes", settings)), PLANE_COLUMNS)
            work = Store(settings).staging_dir(settings.partition("features", first) + "-range")
            write_features(today.unionByName(history), weather, planes, str(work / "features"))
            today.repartition("batch_day").write.partitionBy("batch_day").parquet(
                str(work / "raw"))

        for d in days:
            stage = stage_folder("features", d, settings)
            shutil.move(day_folder(str(work / "features"), d.isoformat()), stage / "data")
            history_days = 1 if (d - timedelta(days=1)) in drops else 0
            rows = finish_features(stage, {"day": d.isoformat(), "history_days": history_days,
                                           "built_by": "build_features_range"})
            raw_stage = stage_folder("raw", d, settings)
            shutil.move(day_folder(str(work / "raw"), d.isoformat()), raw_stage / "flights")
            staged.append(StagedFeatures(
                day=d, features_uri=stage_in_root(stage, settings.partition("features", d), settings),
                raw_uri=settings.partition("raw", d), rows=rows, history_days=history_days,
                raw_staged=stage_in_root(raw_stage, settings.partition("raw", d), settings)))
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return staged


def warm_up(settings: Settings) -> float:
    """Run the real feature build once on a throwaway data root; returns its seconds.

    A fresh Spark Connect server compiles its code paths on first use: the first feature build
    after a start takes several times a warm one. The local stack runs this as soon as the server
    listens, so the first nightly or UI-triggered run does not pay for it.
    """
    import tempfile

    from tasks.landing import find_drop, land_day

    root = tempfile.mkdtemp(prefix="flightline-spark-warm-up-")
    try:
        scratch = settings.with_overrides(data_root=root, s3_endpoint_url="")
        for day in (date(2013, 1, 1), date(2013, 1, 2)):
            land_day(day, scratch)
        t = time.perf_counter()
        build_features(find_drop(date(2013, 1, 2), scratch), scratch)
        return time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # python -m tasks.features.build: warm the configured Spark (Connect) master up
    seconds = warm_up(Settings.from_env())
    print(f"spark warm-up: one feature build in {seconds:.1f} s")
