"""The feature transform: pure Spark DataFrame logic, one function per feature family.

Every feature uses only what was known *before each flight's scheduled departure*:

- :func:`origin_congestion` (``origin_*_3h``): departures that actually left the same airport in
  the 3 hours before the scheduled departure (mean delay, share 15+ minutes late, count);
- :func:`schedule_density` (``origin_sched_flights_1h``): flights scheduled at the airport within
  30 minutes either side (the published schedule is known in advance);
- :func:`arrivals_known` (``carrier_late_arr_share_6h``, ``dest_arr_delay_mean_6h``, ...):
  arrivals known in the 6 hours before (an arrival counts as known at actual departure + air time
  + 30 minutes, a conservative bound since arrival clocks are local to the destination);
- :func:`previous_leg` (``prev_leg_*``): the same plane's previous departure from New York, its
  delays only when they were known at the scheduled departure;
- :func:`weather_at_hour`, :func:`plane_attributes`: origin weather at the scheduled hour, the
  plane's type, age and size;
- :func:`calendar`: date, weekday, hour, scheduled block time, and the label.

The input flights carry ``batch_day`` (the day being built) and ``is_today`` (False for that day's
look-back rows from the day before); every window is partitioned by ``batch_day``, so building
many days in one job gives exactly the rows daily runs give. Cancelled (no ``dep_time``),
diverted (departed, no ``arr_delay``) and impossible rows are left out of the features.
"""

from __future__ import annotations

from tasks.feature_contract import FEATURE_COLUMNS, LABEL

ARRIVAL_KNOWN_BUFFER_MIN = 30
WEATHER_BOUNDS = {
    "temp": (-40, 130), "dewp": (-60, 100), "humid": (0, 100), "wind_dir": (0, 360),
    "wind_speed": (0, 150), "wind_gust": (0, 200), "precip": (0, 10), "pressure": (900, 1100),
    "visib": (0, 10),
}


def timed_flights(flights):
    """The flights with absolute times (epoch seconds, UTC), outcome flags and a row id ``fid``.

    ``time_hour`` is the scheduled hour in UTC. Cached: every feature family reads it.
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
    return f.withColumn("fid", F.monotonically_increasing_id()).cache()


def _over_events_before(f, events, aggregates: dict):
    """Window ``aggregates`` (name -> column over a window ordered by ``ts``) of ``events`` as
    each of the day's flights sees them at its scheduled departure, by ``fid``.

    ``events`` holds ``batch_day``, the window's keys, ``ts`` (when the event became known) and
    ``ev_*`` values; each flight joins the events as a query row at its scheduled departure with
    null values, so a window ending before the current row sees only earlier events.
    """
    from pyspark.sql import functions as F

    keys = [c for c in events.columns if c != "ts" and not c.startswith("ev_")]
    types = dict(events.dtypes)
    queries = f.where("is_today").select(
        *keys, F.col("sched_dep_s").alias("ts"),
        *[F.lit(None).cast(types[c]).alias(c) for c in events.columns if c.startswith("ev_")],
        "fid",
    )
    frame = events.withColumn("fid", F.lit(None).cast("long")).unionByName(queries)
    for name, column in aggregates.items():
        frame = frame.withColumn(name, column)
    return frame.where(F.col("fid").isNotNull()).select("fid", *aggregates)


def _known_before(key: str, *, hours: int):
    """The events of the same batch day and ``key`` in the ``hours`` before a row's ``ts``."""
    from pyspark.sql import Window

    return Window.partitionBy("batch_day", key).orderBy("ts").rangeBetween(-hours * 3600, -1)


def origin_congestion(f):
    """Departures that actually left the origin in the 3 hours before the scheduled departure."""
    from pyspark.sql import functions as F

    events = f.where(F.col("dep_actual_s").isNotNull() & ~F.col("impossible")).select(
        "batch_day", "origin",
        F.col("dep_actual_s").alias("ts"),
        F.col("dep_delay").alias("ev_delay"),
        (F.col("dep_delay") >= 15).cast("int").alias("ev_late"),
    )
    w3h = _known_before("origin", hours=3)
    return _over_events_before(f, events, {
        "origin_departures_3h": F.count("ev_delay").over(w3h),
        "origin_dep_delay_mean_3h": F.avg("ev_delay").over(w3h),
        "origin_late_dep_share_3h": F.avg("ev_late").over(w3h),
    })


def schedule_density(f):
    """Flights scheduled at the origin within 30 minutes either side (published in advance)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w_sched = Window.partitionBy("batch_day", "origin").orderBy("sched_dep_s").rangeBetween(-1800, 1800)
    return f.withColumn("origin_sched_flights_1h", F.count("*").over(w_sched)).select(
        "fid", "origin_sched_flights_1h"
    )


def arrivals_known(f):
    """Arrivals known before the scheduled departure: carrier on-time share, destination delays."""
    from pyspark.sql import functions as F

    events = f.where(F.col("arr_known_s").isNotNull() & F.col("late15").isNotNull()).select(
        "batch_day", "carrier", "dest", F.col("arr_known_s").alias("ts"),
        F.col("late15").alias("ev_late"), F.col("arr_delay").alias("ev_arr_delay"),
    )
    w_car, w_dest = _known_before("carrier", hours=6), _known_before("dest", hours=6)
    return _over_events_before(f, events, {
        "carrier_late_arr_share_6h": F.avg("ev_late").over(w_car),
        "carrier_arrivals_6h": F.count("ev_late").over(w_car),
        "dest_arr_delay_mean_6h": F.avg("ev_arr_delay").over(w_dest),
    })


def previous_leg(f):
    """The same plane's previous leg, its outcomes only once they were known."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w_plane = Window.partitionBy("batch_day", "tailnum").orderBy("sched_dep_s", "fid")
    s = F.col("sched_dep_s")
    return (
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


def weather_at_hour(weather):
    """Origin weather per scheduled hour, averaging the source's rare duplicate hours.

    Readings outside physical bounds (sensor glitches the raw gate flags as warnings) are nulled.
    """
    from pyspark.sql import functions as F

    return weather.groupBy("origin", "time_hour").agg(
        *[F.avg(F.when(F.col(c).between(lo, hi), F.col(c))).alias(c)
          for c, (lo, hi) in WEATHER_BOUNDS.items()]
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
    """Date, weekday, hour and block-time features, the plane's age, the label; the contract's
    columns (and ``batch_day``) in order."""
    from pyspark.sql import functions as F

    return (
        rows.withColumn("flight_date", F.make_date("year", "month", "day"))
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


def feature_frame(flights, weather, planes):
    """The features as a Spark DataFrame: ``(timed flights, features, the days' own flights)``.

    ``flights`` carries ``batch_day`` and ``is_today`` (see the module's docstring); ``weather``
    and ``planes`` are the typed source frames. The caller unpersists the timed flights once the
    features are written.
    """
    from pyspark.sql import functions as F

    f = timed_flights(flights)
    today = f.where("is_today")
    keep = today.where(~F.col("cancelled") & ~F.col("diverted") & ~F.col("impossible"))
    rows = (
        keep.join(origin_congestion(f), "fid", "left")
        .join(schedule_density(f), "fid", "left")
        .join(arrivals_known(f), "fid", "left")
        .join(previous_leg(f), "fid", "left")
        .join(weather_at_hour(weather), ["origin", "time_hour"], "left")
        .join(plane_attributes(planes), "tailnum", "left")
    )
    return f, calendar(rows), today
