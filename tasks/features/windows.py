"""The look-back feature families of one batch day, in one pass over its rows (numpy on Arrow).

Spark hands each ``batch_day``'s timed flights to the day's build as one Arrow table (a grouped
map, :func:`tasks.features.transform.write_features`), which calls :func:`day_windows`: it returns
the day's kept flights with their window features. A day holds a few thousand rows (tens of thousands at 30 times New
York's traffic), so every trailing window is two binary searches into sorted cumulative sums: one
sort per window key instead of the seven sort orders and four row-id joins a window-function plan
needs, which is where Spark spent its time at 10M rows (see the README's throughput section).

What each family uses, all of it known *before the flight's scheduled departure* (``ts`` below is
when an event became known, ``q`` the scheduled departure of the flight asking):

- origin congestion and trend: departures that actually left the origin (not impossible rows),
  known as they left, with ``q - hours <= ts <= q - 1 s``: their count, mean delay, share 15+
  minutes late; the mean over the last hour; the latest one's delay (the greatest ``(ts, delay)``
  at or before ``q - 1 s``, so ties in time resolve the same way on every run); the same carrier's
  mean over 3 hours;
- schedule density: flights scheduled at the origin within 30 minutes either side (published in
  advance), the flight itself included;
- arrivals known: arrivals count as known at actual departure + air time + 30 minutes (a
  conservative bound, as arrival clocks are local to the destination): the carrier's late share,
  count and mean delay, the destination's mean delay over 6 and 2 hours (the 2-hour mean against
  the 6-hour one is its recent trend);
- previous leg: the same plane's previous row of the batch day in scheduled order (ties by row id;
  rows without a scheduled time first), its delays only once known at ``q``, the rotation's
  scheduled buffer and the inbound aircraft's slack (see :func:`_previous_leg`). The demo data
  has departures from New York only, so the leg back to New York is estimated from the block
  time out.

Every window is inside the batch day, so a range build gives each day exactly the rows its daily
run gives. Means are sums over counts in double: delays are whole minutes, so every running sum
is an exact integer and the order of summation cannot change a bit. Keys that are null form their
own group, as they do in a SQL ``PARTITION BY``.
"""

from __future__ import annotations

import numpy as np

ARRIVAL_KNOWN_BUFFER_MIN = 30
#: A previous leg further back than this is another rotation: no buffer or slack from it.
ROTATION_MAX_GAP_S = 24 * 3600

#: The columns :func:`day_windows` reads (besides those it passes through).
INPUT_COLUMNS = [
    "fid", "is_today", "sched_dep_s", "dep_actual_s", "arr_known_s", "dep_delay", "arr_delay",
    "late15", "cancelled", "diverted", "impossible", "sched_block_min",
    "tailnum", "origin", "carrier", "dest",
]
#: Input columns that :func:`day_windows` reads but does not return.
DROPPED = ["fid", "is_today", "dep_actual_s", "arr_known_s", "dep_delay", "arr_delay",
           "cancelled", "diverted", "impossible"]
#: The window features :func:`day_windows` adds, with their Spark SQL types.
WINDOW_COLUMNS: dict[str, str] = {
    "origin_departures_3h": "bigint",
    "origin_dep_delay_mean_3h": "double",
    "origin_late_dep_share_3h": "double",
    "origin_dep_delay_mean_1h": "double",
    "origin_last_dep_delay": "double",
    "carrier_origin_dep_delay_mean_3h": "double",
    "origin_sched_flights_1h": "bigint",
    "carrier_late_arr_share_6h": "double",
    "carrier_arrivals_6h": "bigint",
    "dest_arr_delay_mean_6h": "double",
    "dest_arr_delay_mean_2h": "double",
    "carrier_arr_delay_mean_3h": "double",
    "prev_leg_dep_delay": "double",
    "prev_leg_arr_delay": "double",
    "prev_leg_gap_min": "double",
    "plane_legs_today_before": "bigint",
    "turn_buffer_min": "double",
    "inbound_slack_min": "double",
    "inbound_delay_est": "double",
}
HOUR = 3600


def _codes(column) -> np.ndarray:
    """Integer codes of a string column, null its own code (the last)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    nulls = encoded.indices.is_null().to_numpy(zero_copy_only=False)
    return np.where(nulls, len(encoded.dictionary), codes).astype(np.int64)


def _num(table, name: str) -> np.ndarray:
    """A numeric column as float64, null as NaN."""
    return table.column(name).to_numpy().astype(np.float64)


def _flag(table, name: str) -> np.ndarray:
    """A boolean column; null as False (a SQL ``WHERE`` drops a null condition)."""
    import pyarrow.compute as pc

    return pc.fill_null(table.column(name), False).to_numpy()


class _Events:
    """Events sorted by (key, time), asked about by the day's kept flights (their keys ``qkey``
    and scheduled departures ``q``): running counts and sums up to any offset from ``q`` by
    binary search, each search done once. ``tie`` orders events of the same key and time (the
    greatest last)."""

    def __init__(self, key: np.ndarray, ts: np.ndarray, values: dict[str, np.ndarray],
                 base: int, qkey: np.ndarray, q: np.ndarray, tie: np.ndarray | None = None):
        pos = (key << 32) | (ts - base)
        order = np.argsort(pos) if tie is None else np.lexsort((tie, pos))
        self.key = key[order]
        self.pos = pos[order]
        self.values = {name: v[order] for name, v in values.items()}
        self.sums = {name: np.concatenate(([0.0], np.cumsum(v))) for name, v in self.values.items()}
        self.qpos = (qkey << 32) | (q - base)
        self.qkey = qkey
        self._upto: dict[int, np.ndarray] = {}

    def upto(self, before_s: int) -> np.ndarray:
        """How many events sort before ``(qkey, q - before_s)`` inclusive."""
        if before_s not in self._upto:
            self._upto[before_s] = np.searchsorted(self.pos, self.qpos - before_s, side="right")
        return self._upto[before_s]

    def count(self, hours: int) -> np.ndarray:
        """Events of the key with ``q - hours <= ts <= q - 1 s``."""
        return self.upto(1) - self.upto(hours * HOUR + 1)

    def mean(self, name: str, hours: int) -> np.ndarray:
        """The mean of ``name`` over the same events (NaN without any)."""
        hi, lo = self.upto(1), self.upto(hours * HOUR + 1)
        n = hi - lo
        total = self.sums[name][hi] - self.sums[name][lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, total / n.astype(np.float64), np.nan)

    def last(self, name: str) -> np.ndarray:
        """``name`` of the greatest event at or before ``q - 1 s`` (NaN without any)."""
        i = self.upto(1) - 1
        found = (i >= 0) & (self.key[np.maximum(i, 0)] == self.qkey)
        return np.where(found, self.values[name][np.maximum(i, 0)], np.nan)


def _previous_leg(tail, sched, fid, is_today, block_s, dep_s, dep_delay, arr_s, arr_delay, q_rows):
    """The rotation family for the rows ``q_rows`` (indices): the plane's previous row of the day
    in (scheduled departure, row id) order, rows without a scheduled time first.

    Its departure and arrival delays only once they were known at the scheduled departure ``s``;
    the gap to it; how many of today's legs the plane flew before; the rotation's scheduled
    buffer (the time between the two scheduled departures left over after flying out and back on
    the previous leg's block time) and the inbound aircraft's slack: when it can be back as last
    known (the previous leg's arrival once known plus its block time back; else its departure,
    actual once known, plus twice the block time) against ``s``; ``inbound_delay_est`` is the
    lateness that slack leaves (0 when the plane should be back in time, and when no slack is
    known). Rows without a tail number get none of these.
    """
    n = len(tail)
    has_tail = tail >= 0
    known_sched = ~np.isnan(sched)
    order = np.lexsort((fid, np.where(known_sched, sched, 0.0), known_sched, tail))
    order = order[has_tail[order]]
    prev = np.full(n, -1)
    same = np.zeros(len(order), dtype=bool)
    same[1:] = tail[order[1:]] == tail[order[:-1]]
    prev[order[1:][same[1:]]] = order[:-1][same[1:]]
    # Today's legs before each row: the plane's running count less its own row.
    today_sorted = is_today[order].astype(np.int64)
    cum = np.cumsum(today_sorted) - today_sorted
    start = np.maximum.accumulate(np.where(~same, np.arange(len(order)), 0))
    legs_before = np.full(n, -1, dtype=np.int64)
    legs_before[order] = cum - cum[start]

    def lag(v: np.ndarray) -> np.ndarray:
        p = prev[q_rows]
        return np.where(p >= 0, v[np.maximum(p, 0)], np.nan)

    s = sched[q_rows]
    p_sched, p_block, p_dep_s, p_arr_s = lag(sched), lag(block_s), lag(dep_s), lag(arr_s)
    p_dep_delay, p_arr_delay = lag(dep_delay), lag(arr_delay)
    with np.errstate(invalid="ignore"):
        dep_known = p_dep_s < s
        arr_known = p_arr_s < s
        same_rotation = (s - p_sched) <= ROTATION_MAX_GAP_S
        back_s = np.where(arr_known, p_arr_s + p_block,
                          np.where(dep_known, p_dep_s + 2 * p_block, p_sched + 2 * p_block))
        slack = np.where(same_rotation, (s - back_s) / 60.0, np.nan)
        late = -slack
        # SQL greatest(-slack, 0.0): the first argument unless the second is greater; null
        # arguments are skipped.
        delay_est = np.where(np.isnan(late) | (0.0 > late), 0.0, late)
    no_tail = ~has_tail[q_rows]
    out = {
        "prev_leg_dep_delay": np.where(dep_known, p_dep_delay, np.nan),
        "prev_leg_arr_delay": np.where(arr_known, p_arr_delay, np.nan),
        "prev_leg_gap_min": (s - p_sched) / 60.0,
        "plane_legs_today_before": legs_before[q_rows],
        "turn_buffer_min": np.where(same_rotation, (s - p_sched - 2 * p_block) / 60.0, np.nan),
        "inbound_slack_min": slack,
        "inbound_delay_est": np.where(no_tail, np.nan, delay_est),
    }
    return out, no_tail


def day_windows(table):
    """One batch day's timed flights (``pyarrow.Table``) to its kept flights (today's, not
    cancelled, diverted or impossible) with :data:`WINDOW_COLUMNS` appended; every other input
    column is passed through."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sched = _num(table, "sched_dep_s")
    # Possible only when known to be: a null (a condition on a missing value) counts as not.
    possible = ~pc.fill_null(table.column("impossible"), True).to_numpy()
    keep = (_flag(table, "is_today") & ~_flag(table, "cancelled") & ~_flag(table, "diverted")
            & possible)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return _empty(table)
    dep_s, arr_s = _num(table, "dep_actual_s"), _num(table, "arr_known_s")
    dep_delay, arr_delay = _num(table, "dep_delay"), _num(table, "arr_delay")
    late15 = _num(table, "late15")
    finite = np.concatenate([v[~np.isnan(v)] for v in (sched, dep_s, arr_s)])
    base = int(finite.min()) - 7 * 24 * HOUR
    origin, carrier = _codes(table.column("origin")), _codes(table.column("carrier"))
    dest, tail = _codes(table.column("dest")), _codes(table.column("tailnum"))
    tail = np.where(table.column("tailnum").is_null().to_numpy(zero_copy_only=False), -1, tail)
    origin_carrier = origin * (int(carrier.max()) + 1) + carrier
    q = sched[rows].astype(np.int64)
    out: dict[str, np.ndarray] = {}

    # Origin congestion and trend: departures known as they left (impossible rows left out).
    ok = ~np.isnan(dep_s) & possible
    ev_ts = dep_s[ok].astype(np.int64)
    values = {"delay": dep_delay[ok], "late": (dep_delay[ok] >= 15).astype(np.float64)}
    deps = _Events(origin[ok], ev_ts, values, base, origin[rows], q, tie=dep_delay[ok])
    out["origin_departures_3h"] = deps.count(3)
    out["origin_dep_delay_mean_3h"] = deps.mean("delay", 3)
    out["origin_late_dep_share_3h"] = deps.mean("late", 3)
    out["origin_dep_delay_mean_1h"] = deps.mean("delay", 1)
    out["origin_last_dep_delay"] = deps.last("delay")
    by_carrier_there = _Events(origin_carrier[ok], ev_ts, values, base, origin_carrier[rows], q)
    out["carrier_origin_dep_delay_mean_3h"] = by_carrier_there.mean("delay", 3)

    # Schedule density: every row with a scheduled time, 30 minutes either side (the flight
    # itself included).
    timed = ~np.isnan(sched)
    schedule = _Events(origin[timed], sched[timed].astype(np.int64), {}, base, origin[rows], q)
    out["origin_sched_flights_1h"] = schedule.upto(-1800) - schedule.upto(1801)

    # Arrivals known before the scheduled departure.
    arrived = ~np.isnan(arr_s) & ~np.isnan(late15)
    arr_ts = arr_s[arrived].astype(np.int64)
    values = {"late": late15[arrived], "delay": arr_delay[arrived]}
    by_carrier = _Events(carrier[arrived], arr_ts, values, base, carrier[rows], q)
    by_dest = _Events(dest[arrived], arr_ts, values, base, dest[rows], q)
    out["carrier_late_arr_share_6h"] = by_carrier.mean("late", 6)
    out["carrier_arrivals_6h"] = by_carrier.count(6)
    out["dest_arr_delay_mean_6h"] = by_dest.mean("delay", 6)
    out["dest_arr_delay_mean_2h"] = by_dest.mean("delay", 2)
    out["carrier_arr_delay_mean_3h"] = by_carrier.mean("delay", 3)

    # The plane's previous leg.
    legs, no_tail = _previous_leg(
        tail, sched, table.column("fid").to_numpy(), _flag(table, "is_today"),
        _num(table, "sched_block_min") * 60, dep_s, dep_delay, arr_s, arr_delay, rows)
    for name, v in legs.items():
        out[name] = v

    if set(out) != set(WINDOW_COLUMNS):
        raise KeyError(
            "tasks/features/windows.py: every column day_windows computes needs its SQL type in "
            f"WINDOW_COLUMNS and every declared one a computation; computed, not declared: "
            f"{sorted(set(out) - set(WINDOW_COLUMNS))}; declared, not computed: "
            f"{sorted(set(WINDOW_COLUMNS) - set(out))}")
    result = table.take(pa.array(rows)).drop_columns(DROPPED)
    for name, sql_type in WINDOW_COLUMNS.items():
        v = out[name]
        if sql_type == "bigint":
            mask = no_tail if name == "plane_legs_today_before" else None
            column = pa.array(v.astype(np.int64), type=pa.int64(), mask=mask)
        else:
            column = pa.array(v.astype(np.float64), type=pa.float64(), from_pandas=True)
        result = result.append_column(name, column)
    return result


def _empty(table):
    """No kept rows: the input's columns and the window columns, no rows."""
    import pyarrow as pa

    result = table.slice(0, 0).drop_columns(DROPPED)
    for name, sql_type in WINDOW_COLUMNS.items():
        result = result.append_column(
            name, pa.array([], type=pa.int64() if sql_type == "bigint" else pa.float64()))
    return result
