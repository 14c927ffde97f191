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
