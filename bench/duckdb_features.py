"""The feature transform in DuckDB SQL: what one machine would run instead of Spark.

Benchmark-only (production builds with Spark, :mod:`tasks.features.transform`); it computes every
column of :data:`tasks.feature_contract.FEATURE_COLUMNS` with the same semantics, which
``tests/test_duckdb_features.py`` checks against Spark on a real day:

- the same row set: a day's own flights (``is_today``) that are not cancelled, diverted or
  impossible;
- the windows of events known before each flight's scheduled departure are the same union of
  events and query rows (query rows carry null values) under ``RANGE`` frames ending one second
  before, partitioned by ``batch_day`` and the family's keys;
- the previous leg orders a plane's flights by scheduled departure, then by ``fid`` (the row's
  input order, as Spark's row id), nulls first as Spark sorts them.

:func:`feature_sql` returns one query over three relations: ``flights`` (the raw flight columns
plus ``batch_day``, ``is_today`` and ``fid``), ``weather`` and ``planes`` (the raw columns).
Run it on a connection whose ``TimeZone`` is UTC (:func:`connect`).
"""

from __future__ import annotations

from tasks.feature_contract import FEATURE_COLUMNS, LABEL
from tasks.features.transform import WEATHER_BOUNDS
from tasks.features.windows import ARRIVAL_KNOWN_BUFFER_MIN, ROTATION_MAX_GAP_S


def connect(threads: int | None = None, memory_limit: str | None = None):
    """A DuckDB connection on UTC (timestamps read from Parquet are instants)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def _block_min(prefix: str = "") -> str:
    """Scheduled block minutes, local clocks at both ends, an overnight arrival wrapping."""
    arr = f"(floor({prefix}sched_arr_time / 100.0) * 60 + {prefix}sched_arr_time % 100)"
    dep = f"(floor({prefix}sched_dep_time / 100.0) * 60 + {prefix}sched_dep_time % 100)"
    return f"CAST((({arr} - {dep}) % 1440 + 1440) % 1440 AS INTEGER)"


def _frame(hours: int) -> str:
    return f"RANGE BETWEEN {hours * 3600} PRECEDING AND 1 PRECEDING"


def feature_sql(flights: str = "flights", weather: str = "weather", planes: str = "planes") -> str:
    """The features of ``flights``' own rows, one row per kept flight, in the contract's columns
    and ``batch_day``."""
    weather_avgs = ",\n      ".join(
        f"avg(CASE WHEN {c} BETWEEN {lo} AND {hi} THEN {c} END) AS {c}"
        for c, (lo, hi) in WEATHER_BOUNDS.items())
    w_plane = "PARTITION BY batch_day, tailnum ORDER BY sched_dep_s ASC NULLS FIRST, fid ASC NULLS FIRST"
    s = "sched_dep_s"
    same_rotation = f"(({s} - p_sched) <= {ROTATION_MAX_GAP_S})"
    back_s = (f"CASE WHEN p_arr_s < {s} THEN p_arr_s + p_block_s "
              f"WHEN p_dep_s < {s} THEN p_dep_s + 2 * p_block_s "
              f"ELSE p_sched + 2 * p_block_s END")
    slack = f"CASE WHEN {same_rotation} THEN ({s} - ({back_s})) / 60.0::DOUBLE END"
    select_cols = {c: c for c in FEATURE_COLUMNS}
    select_cols.update({
        "flight_date": "make_date(r.year, r.month, r.day)",
        "sched_dep_utc": "make_timestamp(r.sched_dep_s * 1000000)",
        "day_of_week": "CAST(dayofweek(make_date(r.year, r.month, r.day)) + 1 AS INTEGER)",
        "is_weekend": "CAST(dayofweek(make_date(r.year, r.month, r.day)) IN (0, 6) AS INTEGER)",
        "dep_hour": "r.hour",
        "dep_minute_of_day": "r.hour * 60 + r.minute",
        "sched_block_min": _block_min("r."),
        "plane_age": "CAST(r.year - p.plane_year AS INTEGER)",
        "origin_departures_3h": "coalesce(oc.origin_departures_3h, 0)",
        "carrier_arrivals_6h": "coalesce(ak.carrier_arrivals_6h, 0)",
        LABEL: "r.late15",
        "carrier": "r.carrier", "origin": "r.origin", "tailnum": "r.tailnum", "month": "r.month",
        "flight": "r.flight", "dest": "r.dest", "distance": "r.distance",
    })
    for c in WEATHER_BOUNDS:
        select_cols[c] = f"h.{c}"
    for c in ("precip_3h", "precip_6h", "visib_min_3h", "wind_gust_max_3h", "pressure_change_3h"):
        select_cols[c] = f"wt.{c}"
    select_list = ",\n  ".join(f"{expr} AS {name}" for name, expr in select_cols.items())
    return f"""
WITH f AS (
  SELECT *,
    CAST(epoch(time_hour) AS BIGINT) + minute * 60 AS sched_dep_s,
    CAST(epoch(time_hour) AS BIGINT) + minute * 60 + CAST(trunc(dep_delay * 60) AS BIGINT)
      AS dep_actual_s,
    CAST(epoch(time_hour) AS BIGINT) + minute * 60 + CAST(trunc(dep_delay * 60) AS BIGINT)
      + CAST(trunc((air_time + {ARRIVAL_KNOWN_BUFFER_MIN}) * 60) AS BIGINT) AS arr_known_s,
    dep_time IS NULL AS cancelled,
    dep_time IS NOT NULL AND arr_delay IS NULL AS diverted,
    (distance <= 0) OR (air_time <= 0) OR (air_time > 24 * 60)
      OR NOT (hour BETWEEN 0 AND 23) OR NOT (minute BETWEEN 0 AND 59)
      OR (sched_dep_time % 100 >= 60) OR (sched_arr_time % 100 >= 60) OR time_hour IS NULL
      OR coalesce(dep_delay < -120, false) AS impossible,
    CAST(arr_delay >= 15 AS INTEGER) AS late15
  FROM {flights}
),
queries AS (
  SELECT batch_day, origin, carrier, dest, sched_dep_s AS ts, fid FROM f WHERE is_today
),
dep_events AS (
  SELECT batch_day, origin, carrier, dep_actual_s AS ts, dep_delay AS ev_delay,
         CAST(dep_delay >= 15 AS INTEGER) AS ev_late, CAST(NULL AS BIGINT) AS fid
  FROM f WHERE dep_actual_s IS NOT NULL AND NOT impossible
  UNION ALL
  SELECT batch_day, origin, carrier, ts, NULL, NULL, fid FROM queries
),
origin_congestion AS (
  SELECT * FROM (
    SELECT fid,
      count(ev_delay) OVER w3h AS origin_departures_3h,
      avg(ev_delay) OVER w3h AS origin_dep_delay_mean_3h,
      avg(ev_late) OVER w3h AS origin_late_dep_share_3h,
      avg(ev_delay) OVER w1h AS origin_dep_delay_mean_1h,
      CAST((max(CASE WHEN ev_delay IS NOT NULL THEN {{'ts': ts, 'ev_delay': ev_delay}} END)
            OVER w_all).ev_delay AS DOUBLE) AS origin_last_dep_delay,
      avg(ev_delay) OVER w_carrier AS carrier_origin_dep_delay_mean_3h
    FROM dep_events
    WINDOW
      w3h AS (PARTITION BY batch_day, origin ORDER BY ts ASC NULLS FIRST {_frame(3)}),
      w1h AS (PARTITION BY batch_day, origin ORDER BY ts ASC NULLS FIRST {_frame(1)}),
      w_all AS (PARTITION BY batch_day, origin ORDER BY ts ASC NULLS FIRST
                RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
      w_carrier AS (PARTITION BY batch_day, origin, carrier ORDER BY ts ASC NULLS FIRST {_frame(3)})
  ) WHERE fid IS NOT NULL
),
schedule_density AS (
  SELECT fid, count(*) OVER (PARTITION BY batch_day, origin ORDER BY sched_dep_s ASC NULLS FIRST
                             RANGE BETWEEN 1800 PRECEDING AND 1800 FOLLOWING)
           AS origin_sched_flights_1h
  FROM f
),
arr_events AS (
  SELECT batch_day, carrier, dest, arr_known_s AS ts, late15 AS ev_late,
         arr_delay AS ev_arr_delay, CAST(NULL AS BIGINT) AS fid
  FROM f WHERE arr_known_s IS NOT NULL AND late15 IS NOT NULL
  UNION ALL
  SELECT batch_day, carrier, dest, ts, NULL, NULL, fid FROM queries
),
arrivals_known AS (
  SELECT * FROM (
    SELECT fid,
      avg(ev_late) OVER w_car AS carrier_late_arr_share_6h,
      count(ev_late) OVER w_car AS carrier_arrivals_6h,
      avg(ev_arr_delay) OVER w_dest AS dest_arr_delay_mean_6h,
      avg(ev_arr_delay) OVER w_dest2 AS dest_arr_delay_mean_2h,
      avg(ev_arr_delay) OVER w_car3 AS carrier_arr_delay_mean_3h
    FROM arr_events
    WINDOW
      w_car AS (PARTITION BY batch_day, carrier ORDER BY ts ASC NULLS FIRST {_frame(6)}),
      w_car3 AS (PARTITION BY batch_day, carrier ORDER BY ts ASC NULLS FIRST {_frame(3)}),
      w_dest AS (PARTITION BY batch_day, dest ORDER BY ts ASC NULLS FIRST {_frame(6)}),
      w_dest2 AS (PARTITION BY batch_day, dest ORDER BY ts ASC NULLS FIRST {_frame(2)})
  ) WHERE fid IS NOT NULL
),
legs AS (
  SELECT fid, sched_dep_s,
    lag(sched_dep_s) OVER wp AS p_sched,
    lag({_block_min()} * 60) OVER wp AS p_block_s,
    lag(dep_actual_s) OVER wp AS p_dep_s,
    lag(dep_delay) OVER wp AS p_dep_delay,
    lag(arr_known_s) OVER wp AS p_arr_s,
    lag(arr_delay) OVER wp AS p_arr_delay,
    sum(CAST(is_today AS INTEGER)) OVER (wp ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
      AS legs_before
  FROM f WHERE tailnum IS NOT NULL
  WINDOW wp AS ({w_plane})
),
previous_leg AS (
  SELECT fid,
    CASE WHEN p_dep_s < {s} THEN p_dep_delay END AS prev_leg_dep_delay,
    CASE WHEN p_arr_s < {s} THEN p_arr_delay END AS prev_leg_arr_delay,
    ({s} - p_sched) / 60.0::DOUBLE AS prev_leg_gap_min,
    coalesce(legs_before, 0) AS plane_legs_today_before,
    CASE WHEN {same_rotation} THEN ({s} - p_sched - 2 * p_block_s) / 60.0::DOUBLE END
      AS turn_buffer_min,
    {slack} AS inbound_slack_min,
    greatest(-({slack}), 0.0::DOUBLE) AS inbound_delay_est
  FROM legs
),
hourly AS (
  SELECT origin, time_hour,
      {weather_avgs}
  FROM {weather} GROUP BY origin, time_hour
),
weather_trend AS (
  SELECT origin, time_hour,
    sum(precip) OVER (wo RANGE BETWEEN {2 * 3600} PRECEDING AND CURRENT ROW) AS precip_3h,
    sum(precip) OVER (wo RANGE BETWEEN {5 * 3600} PRECEDING AND CURRENT ROW) AS precip_6h,
    min(visib) OVER (wo RANGE BETWEEN {2 * 3600} PRECEDING AND CURRENT ROW) AS visib_min_3h,
    max(wind_gust) OVER (wo RANGE BETWEEN {2 * 3600} PRECEDING AND CURRENT ROW) AS wind_gust_max_3h,
    pressure - max(pressure) OVER (wo RANGE BETWEEN {3 * 3600} PRECEDING AND {3 * 3600} PRECEDING)
      AS pressure_change_3h
  FROM (SELECT *, CAST(epoch(time_hour) AS BIGINT) AS ts FROM hourly)
  WINDOW wo AS (PARTITION BY origin ORDER BY ts ASC NULLS FIRST)
),
plane_attrs AS (
  SELECT tailnum, year AS plane_year, type AS plane_type, manufacturer, engines, seats, engine
  FROM (SELECT *, row_number() OVER (PARTITION BY tailnum) AS k FROM {planes}) WHERE k = 1
),
r AS (
  SELECT * FROM f
  WHERE is_today AND NOT cancelled AND NOT diverted AND NOT impossible
)
SELECT
  {select_list},
  r.batch_day AS batch_day
FROM r
LEFT JOIN origin_congestion oc USING (fid)
LEFT JOIN schedule_density sd USING (fid)
LEFT JOIN arrivals_known ak USING (fid)
LEFT JOIN previous_leg pl USING (fid)
LEFT JOIN hourly h ON h.origin = r.origin AND h.time_hour = r.time_hour
LEFT JOIN weather_trend wt ON wt.origin = r.origin AND wt.time_hour = r.time_hour
LEFT JOIN plane_attrs p ON p.tailnum = r.tailnum
"""
