"""The feature transform: Spark reads, types and times the flights, hands each batch day to
:func:`tasks.features.windows.day_windows` (one grouped map: one shuffle by day, then one pass
over the day's rows in numpy), and joins the hourly weather and the planes.

Every feature uses only what was known *before each flight's scheduled departure*:

- the look-back families (origin congestion and trend, schedule density, arrivals known, the
  plane's previous leg, the inbound aircraft's slack): :mod:`tasks.features.windows` says what
  each uses and when it was known;
- :func:`weather_at_hour`, :func:`weather_trend`, :func:`plane_attributes`: origin weather at the
  scheduled hour (the observation of that hour, published at its start), its trend over the
  hours up to it (precipitation over 3 and 6 hours, the lowest visibility and highest gust over 3
  hours, the pressure change over 3 hours), the plane's type, age and size;
- :func:`calendar`: date, weekday, hour, scheduled block time, and the label.

The input flights carry ``batch_day`` (the day being built) and ``is_today`` (False for that day's
look-back rows from the day before); every window stays inside its batch day, so building many
days in one job gives exactly the rows daily runs give. Cancelled (no ``dep_time``), diverted
(departed, no ``arr_delay``) and impossible rows are left out of the features.
"""

from __future__ import annotations

from tasks.feature_contract import FEATURE_COLUMNS, LABEL
from tasks.features.windows import (
    ARRIVAL_KNOWN_BUFFER_MIN,
    DROPPED,
    INPUT_COLUMNS,
    WINDOW_COLUMNS,
    day_windows,
)

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


def calendar(rows):
    """Date, weekday and hour features, the plane's age, the label; the contract's columns (and
    ``batch_day``) in order. The scheduled block time arrives computed (:func:`feature_frame`)."""
    from pyspark.sql import functions as F

    return (
        rows.withColumn("flight_date", F.make_date("year", "month", "day"))
        .withColumn("sched_dep_utc", F.timestamp_seconds("sched_dep_s"))
        .withColumn("day_of_week", F.dayofweek("flight_date"))
        .withColumn("is_weekend", F.col("day_of_week").isin(1, 7).cast("int"))
        .withColumn("dep_hour", F.col("hour"))
        .withColumn("dep_minute_of_day", F.col("hour") * 60 + F.col("minute"))
        .withColumn("plane_age", (F.col("year") - F.col("plane_year")).cast("int"))
        .withColumn("origin_departures_3h", F.coalesce("origin_departures_3h", F.lit(0)))
        .withColumn("carrier_arrivals_6h", F.coalesce("carrier_arrivals_6h", F.lit(0)))
        .withColumn(LABEL, F.col("late15"))
        .select(*FEATURE_COLUMNS, "batch_day")
    )


def _passed_through() -> list[str]:
    """The flight columns the grouped map passes through for the calendar and the joins."""
    return ["batch_day", "year", "month", "day", "hour", "minute", "flight", "distance",
            "time_hour", "late15"]


def feature_frame(flights, weather, planes):
    """The features as a Spark DataFrame: ``(features, the days' own timed flights)``.

    ``flights`` carries ``batch_day`` and ``is_today`` (see the module's docstring); ``weather``
    and ``planes`` are the typed source frames. The features are one shuffle of the flights by
    ``batch_day`` into :func:`~tasks.features.windows.day_windows`, then the weather and plane
    rows joined whole into every task (broadcast: a few thousand origin hours a year, a few
    thousand planes).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType, _parse_datatype_string

    f = timed_flights(flights)
    # The scheduled block time: a calendar feature, and the rotation's buffer in the day pass.
    inputs = f.withColumn("sched_block_min", _block_min()).select(*_passed_through(), *[c for c in INPUT_COLUMNS if c not in _passed_through()])
    schema = StructType(
        [field for field in inputs.schema.fields if field.name not in DROPPED]
        + [StructField(name, _parse_datatype_string(t)) for name, t in WINDOW_COLUMNS.items()])
    # Grouped by the day's number: Spark sorts each partition by the grouping key, and a date
    # string's 8-byte sort prefix ("2013-06-") ties within a month.
    rows = inputs.groupBy("batch_day").applyInArrow(day_windows, schema)
    hourly = weather_at_hour(weather)
    weather_rows = hourly.join(weather_trend(hourly), ["origin", "time_hour"], "left")
    rows = (
        rows.join(F.broadcast(weather_rows), ["origin", "time_hour"], "left")
        .join(F.broadcast(plane_attributes(planes)), "tailnum", "left")
    )
    return calendar(rows), f.where("is_today")
