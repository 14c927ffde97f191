"""The feature transform: Spark reads, types and times the flights, prepares the hourly weather
and the planes, and hands each batch day to :func:`tasks.features.day.build_and_write` (one
grouped map: one shuffle by day, then the day's features built in numpy/pyarrow and written as
the day's file; :func:`write_features`).

Every feature uses only what was known *before each flight's scheduled departure*:

- the look-back families (origin congestion and trend, schedule density, arrivals known, the
  plane's previous leg, the inbound aircraft's slack): :mod:`tasks.features.windows` says what
  each uses and when it was known;
- :func:`weather_at_hour`, :func:`weather_trend`, :func:`plane_attributes`: origin weather at the
  scheduled hour (the observation of that hour, published at its start), its trend over the
  hours up to it (precipitation over 3 and 6 hours, the lowest visibility and highest gust over 3
  hours, the pressure change over 3 hours), the plane's type, age and size;
- the calendar (:func:`tasks.features.day.calendar`): date, weekday, hour, scheduled block time
  (:func:`_block_min`), and the label.

The input flights carry ``batch_day`` (the day being built) and ``is_today`` (False for that day's
look-back rows from the day before); every window stays inside its batch day, so building many
days in one job gives exactly the rows daily runs give. Cancelled (no ``dep_time``), diverted
(departed, no ``arr_delay``) and impossible rows are left out of the features.
"""

from __future__ import annotations

from tasks.features.day import (
    DAY_INPUT_COLUMNS,
    PLANE_KEY,
    WEATHER_KEY,
    Lookup,
    build_and_write,
)
from tasks.features.windows import ARRIVAL_KNOWN_BUFFER_MIN

WEATHER_BOUNDS = {
    "temp": (-40, 130), "dewp": (-60, 100), "humid": (0, 100), "wind_dir": (0, 360),
    "wind_speed": (0, 150), "wind_gust": (0, 200), "precip": (0, 10), "pressure": (900, 1100),
    "visib": (0, 10),
}


def timed_flights(flights):
    """The flights with absolute times (epoch seconds, UTC), outcome flags and a row id ``fid``.

    ``time_hour`` is the scheduled hour in UTC. Not cached: the features read it once (a daily
    build's counts and raw copy read a day's drop again, which costs milliseconds).
    """
    from pyspark.sql import functions as F

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
    return f.withColumn("fid", F.monotonically_increasing_id())


def _block_min():
    """The scheduled block time in minutes (local clocks at both ends, so across time zones it
    is what the timetable shows; an overnight arrival wraps)."""
    from pyspark.sql import functions as F

    return F.pmod(
        (F.floor(F.col("sched_arr_time") / 100) * 60 + F.col("sched_arr_time") % 100)
        - (F.floor(F.col("sched_dep_time") / 100) * 60 + F.col("sched_dep_time") % 100),
        F.lit(1440),
    ).cast("int")


def weather_at_hour(weather):
    """Origin weather per scheduled hour, averaging the source's rare duplicate hours.

    Readings outside physical bounds (sensor glitches the raw gate flags as warnings) are nulled.
    """
    from pyspark.sql import functions as F

    return weather.groupBy("origin", "time_hour").agg(
        *[F.avg(F.when(F.col(c).between(lo, hi), F.col(c))).alias(c)
          for c, (lo, hi) in WEATHER_BOUNDS.items()]
    )


def weather_trend(hourly):
    """Each origin hour's weather trend over the hours up to it (its own observation included):
    precipitation over 3 and 6 hours, the lowest visibility and highest gust over 3 hours, and
    the pressure change since 3 hours before."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ts = hourly.withColumn("ts", F.unix_timestamp("time_hour"))

    def last(hours: int):
        return Window.partitionBy("origin").orderBy("ts").rangeBetween(-(hours - 1) * 3600, 0)

    three_before = Window.partitionBy("origin").orderBy("ts").rangeBetween(-3 * 3600, -3 * 3600)
    return ts.select(
        "origin", "time_hour",
        F.sum("precip").over(last(3)).alias("precip_3h"),
        F.sum("precip").over(last(6)).alias("precip_6h"),
        F.min("visib").over(last(3)).alias("visib_min_3h"),
        F.max("wind_gust").over(last(3)).alias("wind_gust_max_3h"),
        (F.col("pressure") - F.max("pressure").over(three_before)).alias("pressure_change_3h"),
    )


def plane_attributes(planes):
    """One row per plane: its build year, type, manufacturer, engines and seats."""
    from pyspark.sql import functions as F

    return planes.select(
        "tailnum",
        F.col("year").alias("plane_year"),
        F.col("type").alias("plane_type"),
        "manufacturer",
        "engines",
        "seats",
        "engine",
    ).dropDuplicates(["tailnum"])


def write_features(flights, weather, planes, root: str) -> dict[str, int]:
    """Build every batch day's features and write each as ``root/batch_day=<day>/part-00000.parquet``
    (:func:`tasks.features.day.day_folder`); returns the rows written per day.

    ``flights`` carries ``batch_day`` and ``is_today`` (see the module's docstring); ``weather``
    and ``planes`` are the typed source frames. One shuffle of the timed flights by ``batch_day``
    into :func:`~tasks.features.day.build_and_write`, which gets the origin weather hours and the
    planes whole (a few thousand origin hours a year, a few thousand planes: collected here and
    shipped with each task, as a broadcast join would). ``root`` is a local folder every worker
    can write to, like any Spark output path; the caller publishes it.
    """
    f = timed_flights(flights)
    # The scheduled block time: a calendar feature, and the rotation's buffer in the day pass.
    inputs = f.withColumn("sched_block_min", _block_min()).select(*DAY_INPUT_COLUMNS)
    hourly = weather_at_hour(weather)
    weather_rows = Lookup(hourly.join(weather_trend(hourly), WEATHER_KEY, "left").toArrow(),
                          WEATHER_KEY)
    plane_rows = Lookup(plane_attributes(planes).toArrow(), PLANE_KEY)

    def build(table):  # no type hints: pyspark 4.2 fails on a functools.partial's
        return build_and_write(table, weather_rows, plane_rows, root)

    # Grouped by the day: one Python call per batch day, whose rows never come back to the JVM.
    written = inputs.groupBy("batch_day").applyInArrow(
        build, "batch_day string, rows bigint").collect()
    return {r["batch_day"]: int(r["rows"]) for r in written}
