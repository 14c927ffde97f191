"""Spark preprocessing: one day's drop into curated raw Parquet and pre-departure features.

Reads the day's drop (and the previous day's, for look-back) with explicit schemas, cleans it,
joins origin weather at the scheduled hour and plane attributes, adds calendar features and
congestion features built with window functions over what was known *before each flight's
scheduled departure*:

- ``origin_*_3h``: departures that actually left the same airport in the 3 hours before the
  scheduled departure (mean delay, share 15+ minutes late, count);
- ``origin_sched_flights_1h``: flights scheduled at the airport within 30 minutes either side
  (the published schedule is known in advance);
- ``carrier_late_arr_share_6h`` / ``dest_arr_delay_mean_6h``: arrivals known in the 6 hours
  before (an arrival counts as known at actual departure + air time + 30 minutes, a conservative
  bound since arrival clocks are local to the destination);
- ``prev_leg_*``: the same plane's previous departure from New York, its delays only when they
  were known at the scheduled departure.

First day: when the previous day's drop is absent, look-back covers the day itself only and the
partition manifest says ``history_days: 0``; features with no history are null.

The label ``label_late15`` (arrival 15+ minutes late) is its own column. Cancelled (no
``dep_time``) and diverted (departed, no ``arr_delay``) flights and rows with impossible values
are left out of the features, and counted in the result.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

from tasks import raw_contract
from tasks.landing import DropMissing, find_drop, reference_uri
from tasks.settings import Settings
from tasks.storage import SUCCESS, Store, join

# The drop's columns and Spark types: the raw file contract, which the raw gate checks too.
FLIGHT_COLUMNS = list(raw_contract.FLIGHT_COLUMNS)
WEATHER_COLUMNS = list(raw_contract.WEATHER_COLUMNS)
PLANE_COLUMNS = list(raw_contract.PLANE_COLUMNS)

KEY_COLUMNS = ["flight_date", "carrier", "flight", "origin", "sched_dep_utc"]
ROW_ORDER = ["sched_dep_utc", "carrier", "flight", "origin"]  # rows of a published partition
CATEGORICAL_FEATURES = ["carrier", "origin", "dest", "plane_type", "manufacturer", "engine"]
NUMERIC_FEATURES = [
    "month", "day_of_week", "is_weekend", "dep_hour", "dep_minute_of_day", "sched_block_min",
    "distance", "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
    "pressure", "visib", "plane_age", "seats", "engines",
    "origin_dep_delay_mean_3h", "origin_late_dep_share_3h", "origin_departures_3h",
    "origin_sched_flights_1h", "carrier_late_arr_share_6h", "carrier_arrivals_6h",
    "dest_arr_delay_mean_6h", "prev_leg_dep_delay", "prev_leg_arr_delay", "prev_leg_gap_min",
    "plane_legs_today_before",
]
LABEL = "label_late15"
FEATURE_COLUMNS = KEY_COLUMNS + ["dest", "tailnum"] + [
    c for c in CATEGORICAL_FEATURES + NUMERIC_FEATURES if c not in ("carrier", "origin", "dest")
] + [LABEL]

ARRIVAL_KNOWN_BUFFER_MIN = 30
WEATHER_BOUNDS = {
    "temp": (-40, 130), "dewp": (-60, 100), "humid": (0, 100), "wind_dir": (0, 360),
    "wind_speed": (0, 150), "wind_gust": (0, 200), "precip": (0, 10), "pressure": (900, 1100),
    "visib": (0, 10),
}


@dataclass
class FeatureResult:
    day: date
    features_uri: str  # the staged (unpublished) partition; publish() moves it into place
    raw_uri: str
    rows: int
    dropped: dict[str, int] = field(default_factory=dict)
    history_days: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["day"] = self.day.isoformat()
        return d


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


def _read_csv(spark, uri, columns):
    """A drop or reference CSV read by the raw contract (``tasks/raw_contract.py``): explicit
    schema, header checked against it, FAILFAST on any value outside the contract."""
    return spark.read.options(**raw_contract.SPARK_CSV_OPTIONS).csv(uri, schema=_schema(columns))


def _local_path(uri: str) -> str:
    if uri.startswith("s3://"):
        raise ValueError(
            f"Spark steps read and write the data root directly; {uri} is on S3. Use a local or "
            "shared-disk data root for Spark (S3 works for every non-Spark step)."
        )
    return uri


def feature_frame(flights, weather, planes):
    """The features as a Spark DataFrame, plus the day's typed flights.

    ``flights`` carries ``batch_day`` (the day being built) and ``is_today`` (False for that
    day's look-back rows from the day before); every window is partitioned by ``batch_day``, so
    building many days in one job gives exactly the rows daily runs give. ``weather`` and
    ``planes`` are the typed source frames. Pure DataFrame logic: reused by the throughput benchmark.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Absolute times in epoch seconds (UTC). time_hour is the scheduled hour in UTC.
    f = (
        flights.withColumn("sched_dep_s", F.unix_timestamp("time_hour") + F.col("minute") * 60)
        .withColumn("dep_actual_s", F.col("sched_dep_s") + (F.col("dep_delay") * 60).cast("long"))
        .withColumn(
            "arr_known_s",
            F.col("dep_actual_s")
            + ((F.col("air_time") + ARRIVAL_KNOWN_BUFFER_MIN) * 60).cast("long"),
        )
        .withColumn("cancelled", F.col("dep_time").isNull())
        .withColumn("diverted", F.col("dep_time").isNotNull() & F.col("arr_delay").isNull())
        .withColumn(
            "impossible",
            (F.col("distance") <= 0)
            | (F.col("air_time") <= 0)
            | (F.col("air_time") > 24 * 60)
            | ~F.col("hour").between(0, 23)
            | ~F.col("minute").between(0, 59)
            | (F.col("sched_dep_time") % 100 >= 60)
            | (F.col("sched_arr_time") % 100 >= 60)
            | F.col("time_hour").isNull()
            | F.coalesce(F.col("dep_delay") < -120, F.lit(False)),
        )
        .withColumn("late15", (F.col("arr_delay") >= 15).cast("int"))
    )
    f = f.withColumn("fid", F.monotonically_increasing_id()).cache()

    # --- origin congestion: departures that actually left before the scheduled departure
    events = f.where(F.col("dep_actual_s").isNotNull() & ~F.col("impossible")).select(
        "batch_day", "origin",
        F.col("dep_actual_s").alias("ts"),
        F.col("dep_delay").alias("ev_delay"),
        (F.col("dep_delay") >= 15).cast("int").alias("ev_late"),
        F.lit(None).cast("long").alias("fid"),
    )
    queries = f.where("is_today").select(
        "batch_day", "origin", F.col("sched_dep_s").alias("ts"),
        F.lit(None).cast("double").alias("ev_delay"), F.lit(None).cast("int").alias("ev_late"), "fid",
    )
    w3h = Window.partitionBy("batch_day", "origin").orderBy("ts").rangeBetween(-3 * 3600, -1)
    origin_feats = (
        events.unionByName(queries)
        .withColumn("origin_departures_3h", F.count("ev_delay").over(w3h))
        .withColumn("origin_dep_delay_mean_3h", F.avg("ev_delay").over(w3h))
        .withColumn("origin_late_dep_share_3h", F.avg("ev_late").over(w3h))
        .where(F.col("fid").isNotNull())
        .select("fid", "origin_departures_3h", "origin_dep_delay_mean_3h", "origin_late_dep_share_3h")
    )

    # --- schedule density (the schedule is published in advance)
    w_sched = Window.partitionBy("batch_day", "origin").orderBy("sched_dep_s").rangeBetween(-1800, 1800)
    sched_feats = f.withColumn("origin_sched_flights_1h", F.count("*").over(w_sched)).select(
        "fid", "origin_sched_flights_1h"
    )

    # --- arrivals known before the scheduled departure: carrier on-time, destination delays
    arr_events = f.where(F.col("arr_known_s").isNotNull() & F.col("late15").isNotNull()).select(
        "batch_day", "carrier", "dest", F.col("arr_known_s").alias("ts"),
        F.col("late15").alias("ev_late"), F.col("arr_delay").alias("ev_arr_delay"),
        F.lit(None).cast("long").alias("fid"),
    )
    arr_queries = f.where("is_today").select(
        "batch_day", "carrier", "dest", F.col("sched_dep_s").alias("ts"),
        F.lit(None).cast("int").alias("ev_late"), F.lit(None).cast("double").alias("ev_arr_delay"),
        "fid",
    )
    arr_all = arr_events.unionByName(arr_queries)
    w_car = Window.partitionBy("batch_day", "carrier").orderBy("ts").rangeBetween(-6 * 3600, -1)
    w_dest = Window.partitionBy("batch_day", "dest").orderBy("ts").rangeBetween(-6 * 3600, -1)
    arr_feats = (
        arr_all.withColumn("carrier_late_arr_share_6h", F.avg("ev_late").over(w_car))
        .withColumn("carrier_arrivals_6h", F.count("ev_late").over(w_car))
        .withColumn("dest_arr_delay_mean_6h", F.avg("ev_arr_delay").over(w_dest))
        .where(F.col("fid").isNotNull())
        .select("fid", "carrier_late_arr_share_6h", "carrier_arrivals_6h", "dest_arr_delay_mean_6h")
    )

    # --- the same plane's previous leg, its outcomes only once they were known
    w_plane = Window.partitionBy("batch_day", "tailnum").orderBy("sched_dep_s", "fid")
    s = F.col("sched_dep_s")
    plane_feats = (
        f.where(F.col("tailnum").isNotNull())
        .withColumn("p_sched", F.lag("sched_dep_s").over(w_plane))
        .withColumn("p_dep_s", F.lag("dep_actual_s").over(w_plane))
        .withColumn("p_dep_delay", F.lag("dep_delay").over(w_plane))
        .withColumn("p_arr_s", F.lag("arr_known_s").over(w_plane))
        .withColumn("p_arr_delay", F.lag("arr_delay").over(w_plane))
        .withColumn(
            "plane_legs_today_before",
            F.sum(F.col("is_today").cast("int")).over(
                w_plane.rowsBetween(Window.unboundedPreceding, -1)
            ),
        )
        .select(
            "fid",
            F.when(F.col("p_dep_s") < s, F.col("p_dep_delay")).alias("prev_leg_dep_delay"),
            F.when(F.col("p_arr_s") < s, F.col("p_arr_delay")).alias("prev_leg_arr_delay"),
            ((s - F.col("p_sched")) / 60.0).alias("prev_leg_gap_min"),
            F.coalesce(F.col("plane_legs_today_before"), F.lit(0)).alias("plane_legs_today_before"),
        )
    )

    # --- weather at the scheduled hour (averaging the source's rare duplicate hours)
    # Readings outside physical bounds (sensor glitches the raw gate flags as warnings) are nulled.
    wx = weather.groupBy("origin", "time_hour").agg(
        *[F.avg(F.when(F.col(c).between(lo, hi), F.col(c))).alias(c)
          for c, (lo, hi) in WEATHER_BOUNDS.items()]
    )
    pl = planes.select(
        "tailnum",
        F.col("year").alias("plane_year"),
        F.col("type").alias("plane_type"),
        "manufacturer",
        "engines",
        "seats",
        "engine",
    ).dropDuplicates(["tailnum"])

    today = f.where("is_today")
    keep = today.where(~F.col("cancelled") & ~F.col("diverted") & ~F.col("impossible"))
    out = (
        keep.join(origin_feats, "fid", "left")
        .join(sched_feats, "fid", "left")
        .join(arr_feats, "fid", "left")
        .join(plane_feats, "fid", "left")
        .join(wx, ["origin", "time_hour"], "left")
        .join(pl, "tailnum", "left")
        .withColumn("flight_date", F.make_date("year", "month", "day"))
        .withColumn("sched_dep_utc", F.timestamp_seconds("sched_dep_s"))
        .withColumn("day_of_week", F.dayofweek("flight_date"))
        .withColumn("is_weekend", F.col("day_of_week").isin(1, 7).cast("int"))
        .withColumn("dep_hour", F.col("hour"))
        .withColumn("dep_minute_of_day", F.col("hour") * 60 + F.col("minute"))
        .withColumn(
            "sched_block_min",
            F.pmod(
                (F.floor(F.col("sched_arr_time") / 100) * 60 + F.col("sched_arr_time") % 100)
                - (F.floor(F.col("sched_dep_time") / 100) * 60 + F.col("sched_dep_time") % 100),
                F.lit(1440),
            ).cast("int"),
        )
        .withColumn("plane_age", (F.col("year") - F.col("plane_year")).cast("int"))
        .withColumn("origin_departures_3h", F.coalesce("origin_departures_3h", F.lit(0)))
        .withColumn("carrier_arrivals_6h", F.coalesce("carrier_arrivals_6h", F.lit(0)))
        .withColumn(LABEL, F.col("late15"))
        .select(*FEATURE_COLUMNS, "batch_day")
    )

    return f, out, today


def build_features(day: date, settings: Settings | None = None, spark=None) -> FeatureResult:
    """Build the features for ``day`` into a staged folder and the typed raw partition.

    Returns the staged features URI; :func:`publish_features` makes it visible.
    """
    from pyspark.sql import functions as F

    settings = settings or Settings.from_env()
    store = Store(settings)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    drop = find_drop(day, settings)  # raises DropMissing when absent
    try:
        prev = find_drop(day - timedelta(days=1), settings)
    except DropMissing:
        prev = None
    own_session = spark is None
    if own_session:
        from tasks.spark import spark_session

        spark = spark_session(settings, f"flightline-features-{day.isoformat()}")
    timings["spark_start"] = time.perf_counter() - t0
    t1 = time.perf_counter()

    flights = _read_csv(spark, _local_path(drop.flights_uri), FLIGHT_COLUMNS).withColumn(
        "is_today", F.lit(True)
    ).withColumn("batch_day", F.lit(day.isoformat()))
    weather = _read_csv(spark, _local_path(drop.weather_uri), WEATHER_COLUMNS)
    if prev is not None:
        flights = flights.unionByName(
            _read_csv(spark, _local_path(prev.flights_uri), FLIGHT_COLUMNS).withColumn(
                "is_today", F.lit(False)
            ).withColumn("batch_day", F.lit(day.isoformat()))
        )
        weather = weather.unionByName(_read_csv(spark, _local_path(prev.weather_uri), WEATHER_COLUMNS))
    planes = _read_csv(spark, _local_path(reference_uri("planes", settings)), PLANE_COLUMNS)

    f, out, today = feature_frame(flights, weather, planes)
    counts_row = today.agg(
        F.count("*").alias("rows_in"),
        F.sum(F.col("cancelled").cast("int")).alias("cancelled"),
        F.sum(F.col("diverted").cast("int")).alias("diverted"),
        F.sum((F.col("impossible") & ~F.col("cancelled") & ~F.col("diverted")).cast("int")).alias(
            "impossible"
        ),
    ).collect()[0]
    dropped = {k: int(counts_row[k] or 0) for k in ("cancelled", "diverted", "impossible")}

    # --- write: the features to a hidden staging folder, the typed raw partition published now
    features_final = settings.partition("features", day)
    raw_final = settings.partition("raw", day)
    for final in (features_final, raw_final):  # leftovers of a run killed mid-write
        store.clean_staging(final)
    stage = store.staging_dir(features_final)
    # One file per day, rows in flight order: sorted inside the single partition (a global
    # orderBy would add a sampling job for a thousand rows).
    out.drop("batch_day").coalesce(1).sortWithinPartitions(*ROW_ORDER).write.mode(
        "overwrite").parquet(str(stage / "data"))
    raw_stage = store.staging_dir(raw_final)
    today.select(*[c for c, _ in FLIGHT_COLUMNS]).coalesce(1).write.mode(
        "overwrite"
    ).parquet(str(raw_stage / "flights"))
    weather.where(
        (F.col("year") == drop.source_day.year)
        & (F.col("month") == drop.source_day.month)
        & (F.col("day") == drop.source_day.day)
    ).coalesce(1).write.mode("overwrite").parquet(str(raw_stage / "weather"))
    timings["spark_job"] = time.perf_counter() - t1
    f.unpersist()
    if own_session:
        spark.stop()

    rows = _count_parquet_rows(stage / "data")
    manifest = {
        "day": day.isoformat(),
        "source_day": drop.source_day.isoformat(),
        "rows": rows,
        "rows_in": int(counts_row["rows_in"]),
        "dropped": dropped,
        "history_days": 1 if prev is not None else 0,
        "columns": FEATURE_COLUMNS,
        "inputs": [drop.flights_uri, drop.weather_uri]
        + ([prev.flights_uri, prev.weather_uri] if prev else []),
    }
    (stage / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    _drop_crc(stage)
    _drop_crc(raw_stage)
    store.publish_folder(raw_stage, raw_final)
    return FeatureResult(
        day=day,
        features_uri=str(stage),
        raw_uri=raw_final,
        rows=rows,
        dropped=dropped,
        history_days=manifest["history_days"],
        seconds={k: round(v, 3) for k, v in timings.items()},
    )


def _count_parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in Path(folder).glob("*.parquet"))


def _drop_crc(folder: Path) -> None:
    """Spark's checksum side files and its own _SUCCESS are not part of the published data."""
    for p in Path(folder).rglob("*"):
        if p.name.endswith(".crc") or (p.name == SUCCESS and p.parent != Path(folder)):
            p.unlink()


def publish_features(day: date, staged_uri: str, settings: Settings | None = None) -> str:
    """Move a staged (and validated) features folder into ``features/dt=day`` atomically.

    Idempotent for retries: when the staged folder is gone because an earlier attempt already
    moved it into place (and then failed on something else, such as the API server timing out
    while it stored the task's result), the committed partition of that day is the answer.
    """
    settings = settings or Settings.from_env()
    store = Store(settings)
    final = settings.partition("features", day)
    if not Path(staged_uri).is_dir():
        if store.is_committed(final) and _manifest_day(final) == day.isoformat():
            return final
        raise ValueError(f"nothing staged at {staged_uri} to publish for {day.isoformat()}")
    return store.publish_folder(staged_uri, final)


def _manifest_day(folder: str) -> str | None:
    try:
        return json.loads((Path(folder) / "_manifest.json").read_text()).get("day")
    except (OSError, ValueError):
        return None


def read_features(days: list[date], settings: Settings | None = None):
    """Published feature partitions for ``days`` as one pandas frame (only committed folders)."""
    import pandas as pd

    settings = settings or Settings.from_env()
    store = Store(settings)
    frames = []
    for d in days:
        uri = settings.partition("features", d)
        if store.is_committed(uri):
            frames.append(pd.read_parquet(join(uri, "data")))
    if not frames:
        raise ValueError(f"no published feature partitions among {len(days)} requested days")
    return pd.concat(frames, ignore_index=True)


def build_features_range(
    first: date, last: date, settings: Settings | None = None, spark=None
) -> dict:
    """Build, gate and publish every day in ``[first, last]`` in one Spark job.

    The fast path for bootstrapping history (training needs months of partitions): each day's
    look-back rows are duplicated under that day's ``batch_day``, so every partition equals what
    the daily DAG would publish for it. Each day is validated by the features gate before it is
    published; a day that fails is quarantined and reported, the others are published.
    """
    import shutil

    from pyspark.sql import functions as F

    from tasks.quality import gate_features_batch

    settings = settings or Settings.from_env()
    store = Store(settings)
    if last < first:
        raise ValueError(f"range end {last} is before its start {first}")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    drops, missing = {}, []
    for d in [first - timedelta(days=1), *days]:
        try:
            drops[d] = find_drop(d, settings)
        except DropMissing:
            if d >= first:
                missing.append(d.isoformat())
    if missing:
        raise DropMissing(first, settings.zone("landing"), f"no drop for {', '.join(missing)}")
    t0 = time.perf_counter()
    own_session = spark is None
    if own_session:
        from tasks.spark import spark_session

        spark = spark_session(settings, f"flightline-features-{first}-{last}")
    flights = _read_csv(spark, [_local_path(x.flights_uri) for x in drops.values()], FLIGHT_COLUMNS)
    flights = flights.withColumn(
        "drop_day", F.to_date(F.regexp_extract(F.input_file_name(), r"dt=(\d{4}-\d{2}-\d{2})", 1))
    )
    today = flights.where(F.col("drop_day") >= F.lit(first.isoformat()).cast("date")).select(
        *[c for c, _ in FLIGHT_COLUMNS], F.lit(True).alias("is_today"),
        F.col("drop_day").cast("string").alias("batch_day"))
    history = flights.where(F.col("drop_day") < F.lit(last.isoformat()).cast("date")).select(
        *[c for c, _ in FLIGHT_COLUMNS], F.lit(False).alias("is_today"),
        F.date_add("drop_day", 1).cast("string").alias("batch_day"))
    weather = _read_csv(spark, [_local_path(x.weather_uri) for x in drops.values()], WEATHER_COLUMNS)
    planes = _read_csv(spark, _local_path(reference_uri("planes", settings)), PLANE_COLUMNS)
    f, out, _ = feature_frame(today.unionByName(history), weather, planes)
    root = Path(store.staging_dir(settings.partition("features", first) + "-range"))
    out.repartition("batch_day").sortWithinPartitions(*ROW_ORDER).write.partitionBy("batch_day").parquet(str(root / "features"))
    today.repartition("batch_day").write.partitionBy("batch_day").parquet(str(root / "raw"))
    spark_seconds = time.perf_counter() - t0
    f.unpersist()
    if own_session:
        spark.stop()

    staged = {}
    for d in days:
        src = root / "features" / f"batch_day={d.isoformat()}"
        final = settings.partition("features", d)
        store.clean_staging(final)
        stage = store.staging_dir(final)
        shutil.move(str(src), stage / "data")
        _drop_crc(stage)
        n = _count_parquet_rows(stage / "data")
        (stage / "_manifest.json").write_text(json.dumps(
            {"day": d.isoformat(), "rows": n, "history_days": 1 if (d - timedelta(days=1)) in drops else 0,
             "columns": FEATURE_COLUMNS, "built_by": "build_features_range"}, indent=2))
        staged[d] = str(stage)
    gates = gate_features_batch(staged, settings)
    published, failed, rows = [], {}, 0
    for d, result in gates.items():
        if not result.passed:
            failed[d.isoformat()] = result.summary()
            continue
        raw_stage = store.staging_dir(settings.partition("raw", d))
        shutil.move(str(root / "raw" / f"batch_day={d.isoformat()}"), raw_stage / "flights")
        _drop_crc(raw_stage)
        store.publish_folder(raw_stage, settings.partition("raw", d))
        published.append(store.publish_folder(staged[d], settings.partition("features", d)))
        rows += _count_parquet_rows(
            Path(published[-1]) / "data")
    shutil.rmtree(root, ignore_errors=True)
    return {"first": first.isoformat(), "last": last.isoformat(), "published": len(published),
            "rows": rows, "failed": failed, "seconds": {"spark": round(spark_seconds, 2),
                                                        "total": round(time.perf_counter() - t0, 2)}}
