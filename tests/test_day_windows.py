"""The one-pass window features of a batch day (``tasks/features/windows.py``) on a hand-made day
whose answers are worked out by hand: window edges to the second, what is left out of the events,
ties, null keys and the plane's previous leg. No Spark: the grouped map hands the same Arrow table
to the same function."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from tasks.features.windows import DROPPED, WINDOW_COLUMNS, day_windows

T = 1_371_038_400  # 2013-06-12 12:00 UTC: the scheduled departure of the flight under test
MIN, HOUR = 60, 3600


def _row(fid, sched, *, today=True, dep_delay=0.0, air_time=100.0, arr_delay=0.0, origin="EWR",
         carrier="AA", dest="ORD", tailnum=None, cancelled=False, diverted=False,
         impossible=False, block_min=120):
    dep_s = None if dep_delay is None else sched + int(dep_delay * 60)
    arr_s = None if dep_s is None or air_time is None else dep_s + int((air_time + 30) * 60)
    late15 = None if arr_delay is None else int(arr_delay >= 15)
    return {
        "batch_day": "2013-06-12", "flight": fid, "fid": fid, "is_today": today,
        "sched_dep_s": sched, "dep_actual_s": dep_s, "arr_known_s": arr_s,
        "dep_delay": dep_delay, "arr_delay": arr_delay, "late15": late15,
        "cancelled": cancelled, "diverted": diverted, "impossible": impossible,
        "sched_block_min": block_min,
        "tailnum": tailnum, "origin": origin, "carrier": carrier, "dest": dest,
    }


def _table(rows):
    types = {"batch_day": pa.string(), "flight": pa.int32(), "fid": pa.int64(),
             "is_today": pa.bool_(), "sched_dep_s": pa.int64(), "dep_actual_s": pa.int64(),
             "arr_known_s": pa.int64(), "dep_delay": pa.float64(), "arr_delay": pa.float64(),
             "late15": pa.int32(), "cancelled": pa.bool_(), "diverted": pa.bool_(),
             "impossible": pa.bool_(), "sched_block_min": pa.int32(),
             "tailnum": pa.string(), "origin": pa.string(), "carrier": pa.string(),
             "dest": pa.string()}
    return pa.table({c: pa.array([r[c] for r in rows], type=t) for c, t in types.items()})


def _by_flight(table) -> dict[int, dict]:
    return {r["flight"]: r for r in table.to_pylist()}


def test_trailing_windows_take_events_known_up_to_a_second_before_and_no_further_back():
    rows = [
        _row(100, T),  # the flight under test; it departs on time
        # Departures from EWR, by when they actually left relative to T:
        _row(1, T - 3 * HOUR - 10 * MIN, dep_delay=10.0),  # left at T - 3 h: inside (edge)
        _row(2, T - 3 * HOUR - 1, dep_delay=0.0),  # T - 3 h - 1 s: outside
        _row(3, T - 20 * MIN - 1, dep_delay=20.0),  # left at T - 1 s: inside, the last one
        _row(4, T - 10 * MIN, dep_delay=10.0),  # left at T: not yet known
        _row(5, T - 2 * HOUR, dep_delay=30.0, carrier="UA"),  # another carrier: origin only
        _row(6, T - HOUR, dep_delay=90.0, impossible=True),  # impossible: never an event
        _row(7, T - HOUR, dep_delay=5.0, impossible=None, arr_delay=None),  # unknown: left out
        _row(8, T - 2 * HOUR, dep_delay=None, cancelled=True, air_time=None, arr_delay=None),
        _row(9, T - 2 * HOUR, dep_delay=25.0, origin="JFK"),  # another airport
        _row(10, T - HOUR, dep_delay=40.0, today=False),  # yesterday's look-back row: an event
    ]
    got = _by_flight(day_windows(_table(rows)))
    # Kept: today's rows that are not cancelled, diverted, impossible or of unknown possibility.
    assert set(got) == {100, 1, 2, 3, 4, 5, 9}
    under_test = got[100]
    # Inside [T - 3 h, T - 1 s] at EWR: 1 (10), 3 (20), 5 (30), 10 (40).
    assert under_test["origin_departures_3h"] == 4
    assert under_test["origin_dep_delay_mean_3h"] == 25.0
    assert under_test["origin_late_dep_share_3h"] == 3 / 4
    # The last hour: 3 (left T - 1 s) and 10 (left T - 20 min).
    assert under_test["origin_dep_delay_mean_1h"] == 30.0
    assert under_test["origin_last_dep_delay"] == 20.0
    # AA at EWR over 3 hours: 1, 3 and 10.
    assert under_test["carrier_origin_dep_delay_mean_3h"] == (10 + 20 + 40) / 3
    # The schedule within 30 minutes either side, at EWR, the flight itself and cancelled ones
    # included: 100, 3 (T - 20 min), 4 (T - 10 min).
    assert under_test["origin_sched_flights_1h"] == 3
    # JFK's only flight saw nothing before it.
    assert got[9]["origin_departures_3h"] == 0
    assert got[9]["origin_dep_delay_mean_3h"] is None
    assert got[9]["origin_last_dep_delay"] is None
    # Every window column is there with its type, missing is null (never NaN), and the
    # read-only inputs are gone.
    table = day_windows(_table(rows))
    assert not any(isinstance(v, float) and math.isnan(v)
                   for r in table.to_pylist() for v in r.values())
    assert not set(DROPPED) & set(table.column_names)
    for name, sql_type in WINDOW_COLUMNS.items():
        assert table.schema.field(name).type == (pa.int64() if sql_type == "bigint" else pa.float64())


def test_arrivals_count_once_known_and_a_tie_in_time_takes_the_greatest_delay():
    rows = [
        _row(100, T, dest="BOS"),
        # Arrivals are known at actual departure + air time + 30 minutes.
        _row(1, T - 4 * HOUR, air_time=150.0, arr_delay=20.0, dest="BOS"),  # known T - 1 h
        _row(2, T - 2 * HOUR, air_time=80.0, arr_delay=5.0, dest="BOS"),  # known T - 10 min
        _row(3, T - 2 * HOUR, air_time=120.0, arr_delay=50.0, dest="BOS"),  # known at T: not yet
        _row(4, T - 5 * HOUR, air_time=60.0, arr_delay=None, diverted=True, dest="BOS"),
        # Two departures that left in the same second (T - 25 min; their arrivals are known
        # only after T): the greater delay is "the last".
        _row(5, T - 30 * MIN, dep_delay=5.0, origin="LGA", dest="DCA"),
        _row(6, T - 32 * MIN, dep_delay=7.0, origin="LGA", dest="DCA"),
        _row(101, T, origin="LGA", dest="DCA"),
    ]
    got = _by_flight(day_windows(_table(rows)))
    assert got[100]["carrier_arrivals_6h"] == 2
    assert got[100]["carrier_late_arr_share_6h"] == pytest.approx(1 / 2)
    assert got[100]["dest_arr_delay_mean_6h"] == pytest.approx((20 + 5) / 2)
    assert got[100]["dest_arr_delay_mean_2h"] == pytest.approx((20 + 5) / 2)
    assert got[100]["carrier_arr_delay_mean_3h"] == pytest.approx((20 + 5) / 2)
    assert got[101]["origin_last_dep_delay"] == 7.0


def test_null_keys_are_a_group_of_their_own():
    rows = [_row(1, T - HOUR, dep_delay=30.0, carrier=None), _row(2, T, carrier=None),
            _row(3, T - HOUR, dep_delay=50.0), _row(4, T)]
    got = _by_flight(day_windows(_table(rows)))
    assert got[2]["carrier_origin_dep_delay_mean_3h"] == 30.0
    assert got[4]["carrier_origin_dep_delay_mean_3h"] == 50.0
    assert got[4]["origin_dep_delay_mean_3h"] == 40.0


def test_the_previous_leg_tells_only_what_was_known_at_the_scheduled_departure():
    block = 2 * HOUR  # every leg's scheduled block time: 120 minutes
    rows = [
        # N1: out at T - 5 h, 20 minutes late; its arrival is known at T - 2.5 h.
        _row(1, T - 5 * HOUR, dep_delay=20.0, arr_delay=15.0, tailnum="N1"),
        _row(2, T, tailnum="N1"),
        # N2: out at T - 3 h, 60 minutes late, air time 90: arrival known at T, not before.
        _row(3, T - 3 * HOUR, dep_delay=60.0, air_time=90.0, arr_delay=45.0, tailnum="N2"),
        _row(4, T, tailnum="N2"),
        # N3: yesterday's leg (look-back) 25 hours before: another rotation.
        _row(5, T - 25 * HOUR, today=False, tailnum="N3"),
        _row(6, T, tailnum="N3"),
        _row(7, T, tailnum=None),  # no tail number: no previous leg at all
    ]
    got = _by_flight(day_windows(_table(rows)))
    n1 = got[2]
    assert n1["prev_leg_dep_delay"] == 20.0 and n1["prev_leg_arr_delay"] == 15.0
    assert n1["prev_leg_gap_min"] == 300.0
    assert n1["plane_legs_today_before"] == 1
    assert n1["turn_buffer_min"] == (5 * HOUR - 2 * block) / 60
    # Back at arrival (T - 5 h + 20 min + 100 + 30 min) plus the block time back.
    back = T - 5 * HOUR + 20 * MIN + 130 * MIN + block
    assert n1["inbound_slack_min"] == (T - back) / 60
    assert n1["inbound_delay_est"] == max(-(T - back) / 60, 0.0)
    n2 = got[4]
    assert n2["prev_leg_dep_delay"] == 60.0 and n2["prev_leg_arr_delay"] is None
    # Its arrival is not known yet: back at its actual departure plus the block out and back.
    assert n2["inbound_slack_min"] == (T - (T - 2 * HOUR + 2 * block)) / 60 == -120.0
    assert n2["inbound_delay_est"] == 120.0
    n3 = got[6]
    assert n3["prev_leg_gap_min"] == 25 * 60 and n3["plane_legs_today_before"] == 0
    assert n3["turn_buffer_min"] is None and n3["inbound_slack_min"] is None
    assert n3["inbound_delay_est"] == 0.0
    none = got[7]
    assert all(none[c] is None for c in ("prev_leg_dep_delay", "prev_leg_gap_min",
                                         "plane_legs_today_before", "inbound_delay_est"))


def test_a_day_with_nothing_to_keep_gives_no_rows_and_every_column():
    table = day_windows(_table([_row(1, T, today=False)]))
    assert table.num_rows == 0
    assert set(WINDOW_COLUMNS) <= set(table.column_names)
