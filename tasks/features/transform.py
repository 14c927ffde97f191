"""The feature transform: pure Spark DataFrame logic, one function per feature family.

Every feature uses only what was known *before each flight's scheduled departure*:

- :func:`origin_congestion` (``origin_*_3h``, ``origin_*_1h``, ``origin_last_dep_delay``,
  ``carrier_origin_dep_delay_mean_3h``): departures that actually left the same airport before
  the scheduled departure, each known as it left: the mean delay, share 15+ minutes late and count
  over 3 hours, the mean over the last hour and the last one's delay (the trend), and the same
  carrier's mean delay there over 3 hours;
- :func:`schedule_density` (``origin_sched_flights_1h``): flights scheduled at the airport within
  30 minutes either side (the published schedule is known in advance);
- :func:`arrivals_known` (``carrier_late_arr_share_6h``, ``dest_arr_delay_mean_6h``,
  ``dest_arr_delay_mean_2h``, ``carrier_arr_delay_mean_3h``, ...): arrivals known in the 6 (and
  the last 2 or 3) hours before (an arrival counts as known at actual departure + air time + 30
  minutes, a conservative bound since arrival clocks are local to the destination); the
  destination's 2-hour mean against its 6-hour mean is its recent trend;
- :func:`previous_leg` (``prev_leg_*``, ``turn_buffer_min``, ``inbound_*``): the same plane's
  previous departure from New York, its delays only when they were known at the scheduled
  departure; the rotation's scheduled buffer (the time between the two scheduled departures
  left over after flying out and back on the previous leg's scheduled block time, from the
  published schedule), and the inbound aircraft's slack: when it can be back at New York as last
  known (the previous leg's arrival, once known, plus its block time back; else its actual
  departure, once known, plus twice its block time; else its schedule) against this departure;
  ``inbound_delay_est`` is the lateness that slack leaves (0 when the plane should be back in
  time). The demo data has departures from New York only, so the leg back is estimated;
- :func:`weather_at_hour`, :func:`weather_trend`, :func:`plane_attributes`: origin weather at the
  scheduled hour (the observation of that hour, published at its start), its trend over the
  hours up to it (precipitation over 3 and 6 hours, the lowest visibility and highest gust over 3
  hours, the pressure change over 3 hours), the plane's type, age and size;
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


def _upto(*keys: str, before_s: int):
    """Every event of the same batch day and ``keys`` known ``before_s`` seconds or more before a
    row's ``ts``: a running frame (from the partition's start), which Spark updates row by row."""
    from pyspark.sql import Window

    return Window.partitionBy("batch_day", *keys).orderBy("ts").rangeBetween(
        Window.unboundedPreceding, -before_s)


def _count_known(column: str, *keys: str, hours: int):
    """``count(column)`` over the events of the same batch day and ``keys`` in the ``hours``
    before a row's ``ts`` (``[ts - hours, ts - 1 s]``): the running count up to a second before
    less the running count up to ``hours`` and a second before.

    Spark recomputes a sliding (both ends bounded) frame from scratch for every row, which costs
    the frame's size per row: at an airport with 30 times New York's traffic a 3-hour frame holds
    thousands of rows. Two running frames cost one update per row and give the same counts.
    """
    from pyspark.sql import functions as F

    return (F.count(column).over(_upto(*keys, before_s=1))
            - F.count(column).over(_upto(*keys, before_s=hours * 3600 + 1)))


def _mean_known(column: str, *keys: str, hours: int):
    """``avg(column)`` over the same events as :func:`_count_known`: the difference of running
    sums over the difference of running counts (null without events). Spark's ``avg`` sums in
    double and divides by the count; delays are whole minutes (and shares 0 or 1), so every
    running sum is an exact integer and the result is the same double to the last bit."""
    from pyspark.sql import functions as F

    def total(before_s: int):
        return F.coalesce(F.sum(column).over(_upto(*keys, before_s=before_s)), F.lit(0))

    n = _count_known(column, *keys, hours=hours)
    return F.when(n > 0, (total(1) - total(hours * 3600 + 1)).cast("double") / n.cast("double"))


def origin_congestion(f):
    """Departures that actually left the origin before the scheduled departure: the 3 hours
    before, the last hour, the latest one, and the same carrier's over 3 hours."""
    from pyspark.sql import functions as F

    events = f.where(F.col("dep_actual_s").isNotNull() & ~F.col("impossible")).select(
        "batch_day", "origin", "carrier",
        F.col("dep_actual_s").alias("ts"),
        F.col("dep_delay").alias("ev_delay"),
        (F.col("dep_delay") >= 15).cast("int").alias("ev_late"),
    )
    # The latest departure known before: the greatest (ts, delay) of the events, so ties in
    # time resolve the same way on every run (query rows carry no delay and are left out).
    last = F.max(F.when(F.col("ev_delay").isNotNull(), F.struct("ts", "ev_delay"))).over(
        _upto("origin", before_s=1))
    return _over_events_before(f, events, {
        "origin_departures_3h": _count_known("ev_delay", "origin", hours=3),
        "origin_dep_delay_mean_3h": _mean_known("ev_delay", "origin", hours=3),
        "origin_late_dep_share_3h": _mean_known("ev_late", "origin", hours=3),
        "origin_dep_delay_mean_1h": _mean_known("ev_delay", "origin", hours=1),
        "origin_last_dep_delay": last.getField("ev_delay").cast("double"),
        "carrier_origin_dep_delay_mean_3h": _mean_known("ev_delay", "origin", "carrier", hours=3),
    })


def schedule_density(f):
    """Flights scheduled at the origin within 30 minutes either side (published in advance)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Running counts (see :func:`_count_known`): those up to 30 minutes after less those up to
    # 30 minutes and a second before.
    def upto(offset_s: int):
        return Window.partitionBy("batch_day", "origin").orderBy("sched_dep_s").rangeBetween(
            Window.unboundedPreceding, offset_s)

    density = F.count("*").over(upto(1800)) - F.count("*").over(upto(-1801))
    return f.withColumn("origin_sched_flights_1h", density).select(
        "fid", "origin_sched_flights_1h"
    )


def arrivals_known(f):
    """Arrivals known before the scheduled departure: carrier on-time share and delays,
    destination delays (6 hours and the last 2)."""
    from pyspark.sql import functions as F

    events = f.where(F.col("arr_known_s").isNotNull() & F.col("late15").isNotNull()).select(
        "batch_day", "carrier", "dest", F.col("arr_known_s").alias("ts"),
        F.col("late15").alias("ev_late"), F.col("arr_delay").alias("ev_arr_delay"),
    )
    return _over_events_before(f, events, {
        "carrier_late_arr_share_6h": _mean_known("ev_late", "carrier", hours=6),
        "carrier_arrivals_6h": _count_known("ev_late", "carrier", hours=6),
        "dest_arr_delay_mean_6h": _mean_known("ev_arr_delay", "dest", hours=6),
        "dest_arr_delay_mean_2h": _mean_known("ev_arr_delay", "dest", hours=2),
        "carrier_arr_delay_mean_3h": _mean_known("ev_arr_delay", "carrier", hours=3),
    })


def _block_min():
    """The scheduled block time in minutes (local clocks at both ends, so across time zones it
    is what the timetable shows; an overnight arrival wraps)."""
    from pyspark.sql import functions as F

    return F.pmod(
        (F.floor(F.col("sched_arr_time") / 100) * 60 + F.col("sched_arr_time") % 100)
        - (F.floor(F.col("sched_dep_time") / 100) * 60 + F.col("sched_dep_time") % 100),
        F.lit(1440),
    ).cast("int")


#: A previous leg further back than this is another rotation: no buffer or slack from it.
ROTATION_MAX_GAP_S = 24 * 3600


def previous_leg(f):
    """The same plane's previous leg, its outcomes only once they were known; the rotation's
    scheduled buffer and the inbound aircraft's slack as last known."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w_plane = Window.partitionBy("batch_day", "tailnum").orderBy("sched_dep_s", "fid")
    s = F.col("sched_dep_s")
    legs = (
        f.where(F.col("tailnum").isNotNull())
        .withColumn("block_s", _block_min() * 60)
        .withColumn("p_sched", F.lag("sched_dep_s").over(w_plane))
        .withColumn("p_block_s", F.lag("block_s").over(w_plane))
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
    )
    same_rotation = (s - F.col("p_sched")) <= ROTATION_MAX_GAP_S
    # When the plane can be back, as known at the scheduled departure: its arrival out there
    # (once known) plus the block time back; else its departure (actual once known) plus the
    # block time out and back.
    back_s = (
        F.when(F.col("p_arr_s") < s, F.col("p_arr_s") + F.col("p_block_s"))
        .when(F.col("p_dep_s") < s, F.col("p_dep_s") + 2 * F.col("p_block_s"))
        .otherwise(F.col("p_sched") + 2 * F.col("p_block_s"))
    )
    slack = F.when(same_rotation, (s - back_s) / 60.0)
    return legs.select(
        "fid",
        F.when(F.col("p_dep_s") < s, F.col("p_dep_delay")).alias("prev_leg_dep_delay"),
        F.when(F.col("p_arr_s") < s, F.col("p_arr_delay")).alias("prev_leg_arr_delay"),
        ((s - F.col("p_sched")) / 60.0).alias("prev_leg_gap_min"),
        F.coalesce(F.col("plane_legs_today_before"), F.lit(0)).alias("plane_legs_today_before"),
        F.when(same_rotation, (s - F.col("p_sched") - 2 * F.col("p_block_s")) / 60.0)
        .alias("turn_buffer_min"),
        slack.alias("inbound_slack_min"),
        F.greatest(-slack, F.lit(0.0)).alias("inbound_delay_est"),
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
        .withColumn("sched_block_min", _block_min())
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
    hourly = weather_at_hour(weather)
    # One row per origin hour (a few thousand a year) and per plane: joined whole into every
    # task's rows (broadcast) rather than shuffling the flights by airport hour and then by plane.
    weather_rows = hourly.join(weather_trend(hourly), ["origin", "time_hour"], "left")
    today = f.where("is_today")
    keep = today.where(~F.col("cancelled") & ~F.col("diverted") & ~F.col("impossible"))
    rows = (
        keep.join(origin_congestion(f), "fid", "left")
        .join(schedule_density(f), "fid", "left")
        .join(arrivals_known(f), "fid", "left")
        .join(previous_leg(f), "fid", "left")
        .join(F.broadcast(weather_rows), ["origin", "time_hour"], "left")
        .join(F.broadcast(plane_attributes(planes)), "tailnum", "left")
    )
    return f, calendar(rows), today
