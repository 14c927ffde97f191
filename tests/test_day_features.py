"""A batch day's published features built where the day is (``tasks/features/day.py``): the
calendar, the weather and plane lookups (a SQL left join's semantics), the contract's columns,
types and row order, and the atomic write. No Spark: the grouped map hands the same Arrow table to
the same function. Window features are ``tests/test_day_windows.py``'s."""

from __future__ import annotations

import os
import pickle
from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.feature_contract import FEATURE_COLUMNS, LABEL
from tasks.features.day import (
    DAY_FILE,
    DAY_INPUT_COLUMNS,
    PLANE_KEY,
    WEATHER_KEY,
    Lookup,
    build_and_write,
    day_features,
    day_folder,
    write_day,
)

UTC_TS = pa.timestamp("us", tz="UTC")
# 2013-06-15 was a Saturday, 2013-06-16 a Sunday, 2013-06-17 a Monday.
NOON = 1_371_297_600  # 2013-06-15 12:00 UTC


def _flight(flight, sched, *, carrier="AA", origin="EWR", tailnum="N1", y=2013, m=6, d=15,
            hour=8, minute=0, late15=0, today=True):
    return {
        "batch_day": "2013-06-15", "year": y, "month": m, "day": d, "hour": hour,
        "minute": minute, "flight": flight, "distance": 700.0,
        "time_hour": (sched - sched % 3600) * 1_000_000, "late15": late15,
        "fid": flight, "is_today": today, "sched_dep_s": sched, "dep_actual_s": sched,
        "arr_known_s": sched + 3 * 3600, "dep_delay": 0.0, "arr_delay": 0.0,
        "cancelled": False, "diverted": False, "impossible": False, "sched_block_min": 150,
        "tailnum": tailnum, "origin": origin, "carrier": carrier, "dest": "ORD",
    }


TYPES = {"batch_day": pa.string(), "year": pa.int32(), "month": pa.int32(), "day": pa.int32(),
         "hour": pa.int32(), "minute": pa.int32(), "flight": pa.int32(), "distance": pa.float64(),
         "time_hour": UTC_TS, "late15": pa.int32(), "fid": pa.int64(), "is_today": pa.bool_(),
         "sched_dep_s": pa.int64(), "dep_actual_s": pa.int64(), "arr_known_s": pa.int64(),
         "dep_delay": pa.float64(), "arr_delay": pa.float64(), "cancelled": pa.bool_(),
         "diverted": pa.bool_(), "impossible": pa.bool_(), "sched_block_min": pa.int32(),
         "tailnum": pa.string(), "origin": pa.string(), "carrier": pa.string(),
         "dest": pa.string()}


def _day(flights) -> pa.Table:
    assert set(TYPES) == set(DAY_INPUT_COLUMNS)
    return pa.table({c: pa.array([f[c] for f in flights], type=TYPES[c]) for c in TYPES})


WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
                   "pressure", "visib", "precip_3h", "precip_6h", "visib_min_3h",
                   "wind_gust_max_3h", "pressure_change_3h"]


def _weather(hours: dict[tuple[str, int], float]) -> Lookup:
    """Weather rows whose every column holds ``value`` for (origin, hour start)."""
    keys = list(hours)
    table = pa.table({
        "origin": pa.array([o for o, _ in keys]),
        "time_hour": pa.array([h * 1_000_000 for _, h in keys], type=UTC_TS),
        **{c: pa.array([hours[k] for k in keys], type=pa.float64()) for c in WEATHER_COLUMNS},
    })
    return Lookup(table, WEATHER_KEY)


def _planes(years: dict[str | None, int]) -> Lookup:
    tails = list(years)
    return Lookup(pa.table({
        "tailnum": pa.array(tails, type=pa.string()),
        "plane_year": pa.array([years[t] for t in tails], type=pa.int32()),
        "plane_type": pa.array(["Fixed wing multi engine"] * len(tails)),
        "manufacturer": pa.array(["BOEING"] * len(tails)),
        "engines": pa.array([2] * len(tails), type=pa.int32()),
        "seats": pa.array([150] * len(tails), type=pa.int32()),
        "engine": pa.array(["Turbo-fan"] * len(tails)),
    }), PLANE_KEY)


def test_a_day_gets_its_calendar_weather_and_plane_in_the_contracts_columns_and_types():
    flights = [
        _flight(1, NOON, hour=8, minute=5, tailnum="N1", late15=1),
        _flight(2, NOON + 1800, hour=8, minute=35, tailnum="N2", origin="JFK"),
        _flight(3, NOON + 3600, hour=9, minute=0, tailnum=None, d=16),  # a Sunday, no plane
    ]
    weather = _weather({("EWR", NOON): 20.0, ("JFK", NOON): 25.0, ("EWR", NOON + 3600): 30.0})
    out = day_features(_day(flights), weather, _planes({"N1": 2003, "N2": 2010}))
    assert out.column_names == FEATURE_COLUMNS
    by = {r["flight"]: r for r in out.to_pylist()}
    assert by[1]["flight_date"] == date(2013, 6, 15)
    assert by[1]["sched_dep_utc"] == datetime(2013, 6, 15, 12)
    assert (by[1]["day_of_week"], by[1]["is_weekend"]) == (7, 1)  # Saturday, as SQL's dayofweek
    assert (by[3]["day_of_week"], by[3]["is_weekend"]) == (1, 1)  # Sunday
    assert (by[1]["dep_hour"], by[1]["dep_minute_of_day"]) == (8, 8 * 60 + 5)
    assert by[1][LABEL] == 1 and by[2][LABEL] == 0
    # Weather: the origin's at the scheduled hour, never another origin's.
    assert (by[1]["temp"], by[2]["temp"], by[3]["temp"]) == (20.0, 25.0, 30.0)
    # Plane: its age in the flight's year; no tail number, no plane.
    assert (by[1]["plane_age"], by[2]["plane_age"]) == (10, 3)
    assert by[3]["plane_age"] is None and by[3]["seats"] is None
    types = {f.name: (str(f.type), f.nullable) for f in out.schema}
    assert types["flight_date"] == ("date32[day]", True)
    assert types["sched_dep_utc"] == ("timestamp[us]", True)
    assert types["day_of_week"] == types["plane_age"] == types[LABEL] == ("int32", True)
    assert types["origin_departures_3h"] == types["carrier_arrivals_6h"] == ("int64", False)
    assert types["seats"] == ("int32", True) and types["temp"] == ("double", True)


def test_a_lookup_matches_as_a_sql_left_join():
    weather = _weather({("EWR", NOON): 20.0})
    flights = [
        _flight(1, NOON),  # its hour is there
        _flight(2, NOON + 3600),  # an hour the weather lacks: nulls
        _flight(3, NOON, origin="LGA"),  # another origin's hour: nulls
    ]
    rows = weather.rows_for(_day(flights))
    assert rows.column_names == WEATHER_COLUMNS
    assert rows.column("temp").to_pylist() == [20.0, None, None]
    # A null key never matches, even where the table has a null key too.
    planes = _planes({"N1": 2000, None: 1990})
    rows = planes.rows_for(_day([_flight(1, NOON, tailnum=None), _flight(2, NOON)]))
    assert rows.column("plane_year").to_pylist() == [None, 2000]


def test_a_lookup_refuses_a_key_that_names_two_rows():
    table = pa.table({"tailnum": ["N1", "N1"], "plane_year": pa.array([1, 2], type=pa.int32())})
    with pytest.raises(ValueError, match=r"\['tailnum'\] is not unique"):
        Lookup(table, PLANE_KEY).rows_for(_day([_flight(1, NOON)]))


def test_a_lookup_travels_to_a_worker_without_its_hash():
    planes = _planes({"N1": 2000})
    planes.rows_for(_day([_flight(1, NOON)]))  # builds the index
    shipped = pickle.loads(pickle.dumps(planes))
    assert shipped._index is None
    assert shipped.rows_for(_day([_flight(1, NOON)])).column("plane_year").to_pylist() == [2000]


def test_rows_are_in_row_order_whatever_order_the_day_arrives_in():
    flights = [_flight(3, NOON + 600, carrier="UA"), _flight(2, NOON, carrier="UA"),
               _flight(1, NOON, carrier="AA"), _flight(4, NOON, carrier="AA", origin="LGA")]
    out = day_features(_day(flights), _weather({}), _planes({}))
    # ROW_ORDER: scheduled departure, carrier, flight, origin.
    assert out.column("flight").to_pylist() == [1, 4, 2, 3]


def test_the_day_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = day_features(_day([_flight(1, NOON), _flight(2, NOON + 60)]), _weather({}),
                       _planes({}))
    folder = day_folder(str(tmp_path), "2013-06-15")
    assert folder == str(tmp_path / "batch_day=2013-06-15")
    assert write_day(out, folder) == 2
    assert os.listdir(folder) == [DAY_FILE]
    back = pq.read_table(os.path.join(folder, DAY_FILE))
    # Timestamps as Spark writes them (INT96): they read back as Spark's files do.
    assert back.schema.field("sched_dep_utc").type == pa.timestamp("ns")
    assert pq.ParquetFile(os.path.join(folder, DAY_FILE)).schema.column(
        FEATURE_COLUMNS.index("sched_dep_utc")).physical_type == "INT96"
    assert back.column("flight").to_pylist() == [1, 2]

    # A write that fails half-way leaves the day's earlier file as it was and no temporary file.
    def broken(table, where, **kwargs):
        with open(where, "wb") as f:
            f.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_day(out.slice(0, 1), folder)
    assert os.listdir(folder) == [DAY_FILE]
    assert pq.read_table(os.path.join(folder, DAY_FILE)).num_rows == 2


def test_a_day_whose_flights_are_all_left_out_is_an_empty_file(tmp_path):
    flights = [dict(_flight(1, NOON), cancelled=True), _flight(2, NOON, today=False)]
    summary = build_and_write(_day(flights), _weather({}), _planes({}), str(tmp_path))
    assert summary.to_pylist() == [{"batch_day": "2013-06-15", "rows": 0}]
    back = pq.read_table(tmp_path / "batch_day=2013-06-15" / DAY_FILE)
    assert back.num_rows == 0 and back.column_names == FEATURE_COLUMNS


def test_a_contract_column_computed_nowhere_stops_the_build_and_says_where_it_goes(monkeypatch):
    import tasks.features.day as day

    monkeypatch.setattr(day, "FEATURE_COLUMNS", FEATURE_COLUMNS + ["origin_departures_1h"])
    with pytest.raises(KeyError, match=r"origin_departures_1h.*windows\.py.*day\.py"):
        day.day_features(_day([_flight(1, NOON)]), _weather({}), _planes({}))
