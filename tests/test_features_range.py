"""The one-job range build publishes exactly what daily runs publish."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from tasks.features.staging import read_features
from tasks.flows.daily import run_day
from tasks.flows.range_build import run_range
from tasks.landing import land_day
from tasks.settings import Settings


@pytest.mark.slow
def test_range_build_equals_daily_runs(tmp_path):
    first, last = date(2013, 8, 10), date(2013, 8, 13)
    daily = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(tmp_path / "daily")})
    bulk = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(tmp_path / "bulk")})
    from tasks.spark import spark_session

    spark = spark_session(daily, "test-range")
    try:
        for s in (daily, bulk):
            for i in range(-1, (last - first).days + 1):
                land_day(first + timedelta(days=i), s)
        for i in range((last - first).days + 1):
            run_day(first + timedelta(days=i), daily, spark=spark, land=False)
        out = run_range(first, last, bulk, spark=spark)
    finally:
        spark.stop()
    assert out["published"] == 4 and not out["failed"]
    keys = ["flight_date", "carrier", "flight", "origin"]
    for i in range(4):
        d = first + timedelta(days=i)
        a = read_features([d], daily).sort_values(keys).reset_index(drop=True)
        b = read_features([d], bulk).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


@pytest.mark.slow
def test_the_one_pass_screen_flags_exactly_the_days_the_gate_would_fail(history, settings, tmp_path):
    """Eight real days, four of them broken in the four ways a union could hide (a value, a key
    repeated within the day, a row count, another day's flight_date): the screen sends exactly
    those four to the daily gate, which fails each; the days it clears pass the gate too."""
    from tasks.quality.features import frame_batch
    from tasks.quality.gate import QualityGateFailed, gate
    from tasks.quality.range_gate import screen

    days = [date(2013, 3, 10) + timedelta(days=i) for i in range(8)]
    frames = {d: read_features([d], history) for d in days}
    broken = {days[1]: "expect_column_values_to_be_in_set origin",
              days[2]: "expect_compound_columns_to_be_unique",
              days[3]: "expect_table_row_count_to_be_between",
              days[4]: "expect_column_values_to_be_in_set flight_date"}
    frames[days[1]].loc[0, "origin"] = "BOS"
    frames[days[2]] = pd.concat([frames[days[2]], frames[days[2]].iloc[:1]], ignore_index=True)
    frames[days[3]] = frames[days[3]].iloc[:50].copy()
    frames[days[4]]["flight_date"] = frames[days[4]]["flight_date"].astype(str)
    frames[days[4]].loc[0, "flight_date"] = days[5].isoformat()

    def batch(d):
        source = tmp_path / f"staged-{d}"
        source.mkdir(exist_ok=True)
        (source / "part.parquet").write_bytes(b"x")
        return frame_batch(d, frames[d].copy(), str(source), settings)

    flagged, info = screen([batch(d) for d in days])
    assert flagged == set(broken), info
    assert {day: why for day, why in info["why"].items()} == {d.isoformat(): w for d, w in broken.items()}
    assert info["rows"] == sum(len(f) for f in frames.values())
    for d in days:
        if d in broken:
            with pytest.raises(QualityGateFailed):
                gate(batch(d), settings)
        elif d in days[5:7]:
            assert gate(batch(d), settings).passed
    # Same keys on different days are no repeat; a clean range is cleared in one pass.
    assert screen([batch(d) for d in days if d not in broken])[0] == set()
