"""The benchmark's DuckDB transform (bench/duckdb_features.py) computes the same features as the
Spark transform: one real day with its look-back day through both, every column compared."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from tasks.feature_contract import FEATURE_COLUMNS, KEY_COLUMNS

duckdb = pytest.importorskip("duckdb", reason="benchmark dependency (requirements.txt)")

DAY = date(2013, 6, 12)


@pytest.mark.slow
def test_duckdb_features_equal_spark_features(settings, tmp_path):
    from pyspark.sql import functions as F

    from bench.duckdb_features import connect, feature_sql
    from tasks.features.day import day_folder
    from tasks.features.transform import write_features
    from tasks.landing import find_drop, land_day, reference_uri
    from tasks.raw_contract import FLIGHT_COLUMNS, PLANE_COLUMNS, WEATHER_COLUMNS
    from tasks.spark import read_csv, spark_session

    land_day(date(2013, 6, 11), settings)
    land_day(DAY, settings)
    drop = find_drop(DAY, settings)
    spark = spark_session(settings, "test-duckdb-features")
    try:
        # The daily build's input: the day's flights, then its look-back day's, one batch.
        flights = read_csv(spark, drop.flights_uri, FLIGHT_COLUMNS).withColumn(
            "is_today", F.lit(True)).unionByName(
            read_csv(spark, drop.lookback.flights_uri, FLIGHT_COLUMNS).withColumn(
                "is_today", F.lit(False))).withColumn("batch_day", F.lit(DAY.isoformat()))
        weather = read_csv(spark, drop.weather_uri, WEATHER_COLUMNS).unionByName(
            read_csv(spark, drop.lookback.weather_uri, WEATHER_COLUMNS))
        planes = read_csv(spark, reference_uri("planes", settings), PLANE_COLUMNS)
        written = write_features(flights, weather, planes, str(tmp_path))
        expected = pd.read_parquet(day_folder(str(tmp_path), DAY.isoformat()))
        assert written == {DAY.isoformat(): len(expected)}
        expected["batch_day"] = DAY.isoformat()
        raw = flights.toPandas()
        weather_pd, planes_pd = weather.toPandas(), planes.toPandas()
    finally:
        spark.stop()

    # Spark's row id follows the input's order (the day's file, then the look-back file).
    raw["fid"] = np.arange(len(raw), dtype="int64")
    con = connect()
    con.register("flights", raw)
    con.register("weather", weather_pd)
    con.register("planes", planes_pd)
    got = con.execute(feature_sql()).df()

    assert list(got.columns) == FEATURE_COLUMNS + ["batch_day"]
    assert 800 < len(expected) == len(got)
    expected = expected.sort_values(KEY_COLUMNS).reset_index(drop=True)
    got = got.sort_values(KEY_COLUMNS).reset_index(drop=True)
    # The features that need history are there (the comparison is not of empty columns).
    assert expected["origin_dep_delay_mean_3h"].notna().mean() > 0.9
    assert expected["inbound_slack_min"].notna().mean() > 0.3
    for c in FEATURE_COLUMNS + ["batch_day"]:
        a, b = expected[c], got[c]
        assert (a.isna() == b.isna()).all(), f"{c}: nulls differ"
        a, b = a[a.notna()], b[b.notna()]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-9,
                                       err_msg=c)
        elif c in ("flight_date", "sched_dep_utc"):  # a date or an instant; UTC on both sides
            assert (pd.to_datetime(a).dt.tz_localize(None).values
                    == pd.to_datetime(b).dt.tz_localize(None).values).all(), c
        else:
            assert [str(v) for v in a] == [str(v) for v in b], c
