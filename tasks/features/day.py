"""One batch day's published features, built and written where the day is (pyarrow and numpy, no
Spark).

Spark groups the timed flights by ``batch_day`` and hands each day, as one Arrow table, to
:func:`build_and_write` in a Python worker, with the origin weather hours and the planes (both
small: collected once on the driver and shipped with the task). There the day gets its look-back
windows (:func:`tasks.features.windows.day_windows`), its weather and plane rows and its calendar
(:func:`day_features`), and :func:`write_day` writes it as the day's Parquet file. Spark only
learns each day's row count: 50 feature columns never go back into the JVM, whose row-at-a-time
Parquet writer was the largest part of the job at 10M rows (the README's throughput section).

The calendar: the flight's date, weekday (1 = Sunday ... 7 = Saturday, as SQL's ``dayofweek``),
weekend flag, scheduled hour and minute of the day (local clock), the plane's age in the
flight's year, and the label (arrival 15 or more minutes late). The weather is the origin's at
the scheduled hour with its trend over the hours up to it; the plane's type, age and size are
the planes table's (see :mod:`tasks.features.transform`).
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from tasks.feature_contract import FEATURE_COLUMNS, LABEL, ROW_ORDER
from tasks.features.windows import INPUT_COLUMNS, day_windows

#: The flight columns the day pass passes through for the calendar and the joins.
PASSED_THROUGH = ["batch_day", "year", "month", "day", "hour", "minute", "flight", "distance",
                  "time_hour", "late15"]
#: Every column a batch day's table carries into :func:`day_features`.
DAY_INPUT_COLUMNS = PASSED_THROUGH + [c for c in INPUT_COLUMNS if c not in PASSED_THROUGH]
#: Counts that are never null (the published schema says so, as the Spark schema did).
NEVER_NULL = ["origin_departures_3h", "carrier_arrivals_6h"]
#: The weather and plane tables are joined on these.
WEATHER_KEY = ["origin", "time_hour"]
PLANE_KEY = ["tailnum"]
#: The file a batch day's features are written to, inside the day's folder.
DAY_FILE = "part-00000.parquet"


class Lookup:
    """A small table's rows by a unique key, to join onto a day's rows by position: what a
    broadcast hash join does, its hash built once per task (on first use) instead of per day.

    Built on the driver from the collected table and shipped with each task. ``rows_for`` gives
    the value columns aligned to a table's rows: nulls where the key is unknown or null (as a SQL
    left join, which never matches a null key).
    """

    def __init__(self, table, keys: list[str]):
        self.keys = keys
        self.table = table
        self._index = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_index": None}  # rebuilt where it is used

    def _key(self, table):
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        arrays = []
        for k in self.keys:
            column = table.column(k)
            if pa.types.is_timestamp(column.type):
                column = pc.cast(column, pa.int64())
            arrays.append(column.to_numpy(zero_copy_only=False))
        return pd.Index(arrays[0]) if len(arrays) == 1 else pd.MultiIndex.from_arrays(arrays)

    def rows_for(self, table):
        """The looked-up table's non-key columns, one row per row of ``table``."""
        import pyarrow as pa

        if self._index is None:
            self._index = self._key(self.table)
            if not self._index.is_unique:
                raise ValueError(f"lookup key {self.keys} is not unique")
        found = self._index.get_indexer(self._key(table))
        for k in self.keys:
            found[table.column(k).is_null().to_numpy(zero_copy_only=False)] = -1
        return self.table.drop_columns(self.keys).take(pa.array(found, mask=found < 0))


def _int32(values: np.ndarray, nulls: np.ndarray | None = None):
    import pyarrow as pa

    return pa.array(values.astype(np.int32), type=pa.int32(), mask=nulls)


def calendar(rows) -> dict:
    """The calendar columns of a day's kept rows (``pyarrow.Table`` with the passed-through
    flight columns and ``plane_year``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def ints(name: str) -> tuple[np.ndarray, np.ndarray]:
        column = rows.column(name)
        return (pc.fill_null(column, 0).to_numpy().astype(np.int64),
                column.is_null().to_numpy(zero_copy_only=False))

    (year, y_null), (month, m_null), (day, d_null) = ints("year"), ints("month"), ints("day")
    date_null = y_null | m_null | d_null
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    epoch_days = (months.astype("datetime64[D]") + (day - 1)).astype(np.int64)
    # 1970-01-01 was a Thursday (5 in SQL's dayofweek).
    day_of_week = (epoch_days + 4) % 7 + 1
    hour, minute = rows.column("hour"), rows.column("minute")
    return {
        "flight_date": pa.array(epoch_days.astype(np.int32), type=pa.date32(), mask=date_null),
        "sched_dep_utc": pc.cast(pc.multiply(rows.column("sched_dep_s"), 1_000_000),
                                 pa.int64()).cast(pa.timestamp("us")),
        "day_of_week": _int32(day_of_week, date_null),
        "is_weekend": _int32((day_of_week == 1) | (day_of_week == 7), date_null),
        "dep_hour": pc.cast(hour, pa.int32()),
        "dep_minute_of_day": pc.cast(pc.add(pc.multiply(hour, 60), minute), pa.int32()),
        "plane_age": pc.cast(pc.subtract(rows.column("year"), rows.column("plane_year")),
                             pa.int32()),
        LABEL: pc.cast(rows.column("late15"), pa.int32()),
    }


def day_features(table, weather, planes):
    """One batch day's timed flights (:data:`DAY_INPUT_COLUMNS`) to its published features: the
    contract's columns (:data:`~tasks.feature_contract.FEATURE_COLUMNS`) in order, rows in
    :data:`~tasks.feature_contract.ROW_ORDER`.

    ``weather`` (a :class:`Lookup` by :data:`WEATHER_KEY`) holds one row per origin and scheduled
    hour with the hour's weather and trend columns; ``planes`` (by :data:`PLANE_KEY`) one row per
    tail number with ``plane_year`` and the plane columns. A flight without its hour's weather or
    its plane gets nulls there.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = day_windows(table)
    for lookup in (weather, planes):
        found = lookup.rows_for(rows)
        for name in found.column_names:
            rows = rows.append_column(name, found.column(name))
    columns = {**{c: rows.column(c) for c in rows.column_names}, **calendar(rows)}
    missing = [c for c in FEATURE_COLUMNS if c not in columns]
    if missing:
        raise KeyError(
            f"feature column(s) {missing} of FEATURE_COLUMNS are computed nowhere: a look-back "
            "column goes in tasks/features/windows.py (day_windows), a calendar column in "
            "tasks/features/day.py (calendar), a weather or plane column in "
            "tasks/features/transform.py")
    fields = [pa.field(c, columns[c].type, nullable=c not in NEVER_NULL) for c in FEATURE_COLUMNS]
    features = pa.Table.from_arrays([columns[c] for c in FEATURE_COLUMNS], schema=pa.schema(fields))
    # Rows in ROW_ORDER, nulls first as in SQL; ties keep the day pass's order (a stable sort).
    order = pc.sort_indices(features, sort_keys=[(c, "ascending", "at_start") for c in ROW_ORDER])
    return features.take(order)


def write_day(features, folder: str) -> int:
    """Write a day's features as ``folder/part-00000.parquet``, atomically (a hidden temporary
    file in the folder, then a rename: a retried or speculative task replaces it whole); returns
    the rows written. Timestamps are written as Spark writes them (INT96), so the file reads back
    exactly as a Spark-written one does."""
    import pyarrow.parquet as pq

    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{DAY_FILE}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(features, tmp, compression="snappy", use_deprecated_int96_timestamps=True)
        os.replace(tmp, os.path.join(folder, DAY_FILE))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return features.num_rows


def day_folder(root: str, day: str) -> str:
    """Where :func:`build_and_write` writes a batch day: ``root/batch_day=<day>``."""
    return os.path.join(root, f"batch_day={day}")


def build_and_write(table, weather, planes, root: str):
    """The grouped map's function: one batch day's timed flights to its features file under
    :func:`day_folder`; returns the day and its rows (one row)."""
    import pyarrow as pa

    day = table.column("batch_day")[0].as_py()
    rows = write_day(day_features(table, weather, planes), day_folder(root, day))
    return pa.table({"batch_day": [day], "rows": pa.array([rows], type=pa.int64())})
