"""Spark preprocessing: one good day, idempotent reruns, atomic publish, no look-ahead leakage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tasks.feature_contract import FEATURE_COLUMNS, LABEL
from tasks.features.staging import read_features
from tasks.flows.daily import build_features, publish_features, run_day
from tasks.landing import find_drop, land_day
from tasks.settings import Settings
from tasks.spark import spark_session

DAY = date(2013, 1, 15)
OUTCOMES = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"}


@pytest.fixture(scope="module")
def spark():
    s = spark_session(Settings.from_env({}), "flightline-tests")
    yield s
    s.stop()


def _frame(settings, day=DAY) -> pd.DataFrame:
    df = read_features([day], settings)
    return df.sort_values(["carrier", "flight", "origin"]).reset_index(drop=True)


def test_one_good_day(settings, spark):
    out = run_day(DAY, settings, spark=spark)
    assert out["history_days"] == 1
    df = _frame(settings)
    assert list(df.columns) == FEATURE_COLUMNS
    assert len(df) == out["rows"] == 894 - out["dropped"]["cancelled"] - out["dropped"]["diverted"] - out["dropped"]["impossible"]
    assert out["dropped"]["cancelled"] == 13
    assert not OUTCOMES & set(df.columns), "outcomes must never be features"
    assert set(df[LABEL].unique()) <= {0, 1}
    assert not df.duplicated(["carrier", "flight", "origin"]).any()
    assert (df["flight_date"].astype(str) == "2013-01-15").all()
    # congestion features are populated where history exists
    assert df["origin_departures_3h"].gt(0).mean() > 0.9
    assert df["prev_leg_gap_min"].notna().mean() > 0.3
    assert df["temp"].notna().all()
    raw = Path(settings.partition("raw", DAY))
    assert (raw / "_SUCCESS").exists() and len(pd.read_parquet(raw / "flights")) == 894
    # The guide's light step (docs/adding-a-task.md) ran after publish, from its declaration.
    summary = out["results"]["summarize_day"]
    assert summary["rows"] == len(df) and abs(summary["late_share"] - df[LABEL].mean()) < 1e-4
    assert sum(summary["by_origin"].values()) == len(df) and set(summary["by_origin"]) <= {"EWR", "JFK", "LGA"}
    assert Path(settings.partition("summaries", DAY), "summary.json").exists()


def test_rerun_replaces_the_partition_with_the_same_rows(settings, spark):
    run_day(DAY, settings, spark=spark)
    first = _frame(settings)
    run_day(DAY, settings, spark=spark)
    second = _frame(settings)
    pd.testing.assert_frame_equal(first, second)
    part = Path(settings.partition("features", DAY))
    assert len(list((part / "data").glob("*.parquet"))) == 1
    assert not [p for p in part.parent.iterdir() if p.name.startswith(".")], "no staging left"


def test_first_day_has_no_history(settings, spark):
    drop = land_day(DAY, settings)  # the day before is absent
    res = build_features(drop, settings, spark=spark)
    assert res.history_days == 0
    final = publish_features(res, settings)
    # A retry of the publish task (the first attempt published, then failed storing its result)
    # finds the staged folder gone and the day's partition committed: same answer, no error.
    assert publish_features(res, settings) == final
    with pytest.raises(ValueError, match="nothing staged"):
        publish_features(replace(res, day=DAY + timedelta(days=1)), settings)
    df = _frame(settings)
    assert len(df) == res.rows > 800
    # the day's own early flights still feed later ones
    assert df["origin_departures_3h"].gt(0).mean() > 0.8


def test_unpublished_staging_is_invisible(settings, spark):
    drop = land_day(DAY, settings)
    land_day(DAY - timedelta(days=1), settings)
    res = build_features(drop, settings, spark=spark)
    assert Path(res.features_uri).name.startswith(".")
    with pytest.raises(ValueError, match="no published feature partitions"):
        read_features([DAY], settings)
    # Nor is the raw partition published before both gates passed: publish does it.
    assert not Path(settings.partition("raw", DAY)).exists()
    publish_features(res, settings)
    assert Path(settings.partition("raw", DAY), "_SUCCESS").exists()


def test_the_daily_flow_runs_on_an_s3_data_root(s3_settings, spark):
    """Every step against the moto server: Spark reads local copies of the drop, the staged
    features and raw partition are hidden prefixes in the bucket (another worker can validate
    and publish them), publish commits both, nothing staged is left, and the summary lands."""
    from tasks.storage import Store, join

    s, store = s3_settings, Store(s3_settings)
    out = run_day(DAY, s, spark=spark)
    assert out["features_uri"] == s.partition("features", DAY) and store.is_committed(out["features_uri"])
    assert store.is_committed(s.partition("raw", DAY))
    df = read_features([DAY], s)
    assert len(df) == out["rows"] > 800 and list(df.columns) == FEATURE_COLUMNS
    staged = out["results"]["build_features"]
    assert staged["features_uri"].startswith(f"{s.zone('features')}/.dt={DAY}.stage-")
    assert staged["raw_staged"].startswith(f"{s.zone('raw')}/.dt={DAY}.stage-")
    assert not store.is_folder(staged["features_uri"]) and not store.is_folder(staged["raw_staged"])
    assert [n for n in store.list(s.zone("features")) if n.startswith(".")] == []
    assert store.exists(join(s.partition("summaries", DAY), "summary.json"))
    # a retry of publish (the first attempt committed, then failed storing its result)
    from tasks.features.staging import StagedFeatures

    assert publish_features(StagedFeatures.from_dict(staged), s).features_uri == out["features_uri"]


KILL_SCRIPT = """
import sys
from datetime import date
from tasks.flows.daily import build_features, find_drop, publish_features
from tasks.settings import Settings
s = Settings.from_env()
r = build_features(find_drop(date.fromisoformat(sys.argv[1]), s), s)
publish_features(r, s)
"""


@pytest.mark.slow
def test_process_killed_mid_write_leaves_the_old_partition_and_the_retry_succeeds(settings, spark):
    run_day(DAY, settings, spark=spark)
    before = _frame(settings)
    part = Path(settings.partition("features", DAY))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, DAY.isoformat()],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    staged = []
    while time.time() < deadline and proc.poll() is None:
        staged = [p for p in part.parent.glob(f".{part.name}.tmp-*") if any(p.rglob("*"))]
        if staged:
            break
        time.sleep(0.05)
    assert staged, "the writer never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Readers still see the complete old partition, never the half-written one.
    pd.testing.assert_frame_equal(_frame(settings), before)
    # The retry cleans the leftovers and publishes the same rows.
    run_day(DAY, settings, spark=spark, land=False)
    pd.testing.assert_frame_equal(_frame(settings), before)
    assert not [p for p in part.parent.iterdir() if p.name.startswith(".")]


def _shift_outcomes_after(drop_dir: Path, cutoff: pd.Timestamp, seed: int = 7) -> int:
    """Rewrite every outcome not yet known at ``cutoff``; returns how many rows changed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    df = pd.read_csv(drop_dir / "flights.csv", dtype=str, keep_default_na=False)
    sched = pd.to_datetime(df["time_hour"]) + pd.to_timedelta(df["minute"].astype(int), unit="m")
    dep_delay = pd.to_numeric(df["dep_delay"].replace("NA", None))
    air = pd.to_numeric(df["air_time"].replace("NA", None))
    dep_actual = sched + pd.to_timedelta(dep_delay, unit="m")
    arr_known = dep_actual + pd.to_timedelta(air + 30, unit="m")
    departs_later = dep_actual >= cutoff
    arrives_later = (arr_known >= cutoff) & ~departs_later
    n = 0
    for i in df.index[departs_later.fillna(False)]:
        extra = int(rng.integers(30, 300))
        df.loc[i, "dep_delay"] = str(int(dep_delay[i]) + extra)
        if df.loc[i, "arr_delay"] != "NA":
            df.loc[i, "arr_delay"] = str(int(float(df.loc[i, "arr_delay"])) + extra)
        n += 1
    for i in df.index[arrives_later.fillna(False)]:
        if df.loc[i, "arr_delay"] != "NA":
            df.loc[i, "arr_delay"] = str(int(rng.integers(-40, 400)))
            n += 1
    (drop_dir / "flights.csv").write_text(df.to_csv(index=False))
    # Weather observed after the cutoff changes too: rain, fog, gusts, a pressure drop.
    w = pd.read_csv(drop_dir / "weather.csv", dtype=str, keep_default_na=False)
    later = pd.to_datetime(w["time_hour"]) > cutoff
    w.loc[later, "precip"] = "0.5"
    w.loc[later, "visib"] = "0.25"
    w.loc[later, "wind_gust"] = "45"
    w.loc[later, "pressure"] = (pd.to_numeric(w.loc[later, "pressure"].replace("NA", None))
                                - 12).round(1).astype(str).replace("nan", "NA")
    (drop_dir / "weather.csv").write_text(w.to_csv(index=False))
    return n + int(later.sum())


def test_no_feature_uses_information_from_after_scheduled_departure(tmp_path, spark):
    """A crafted day: outcomes not yet known at 15:00 UTC are rewritten at random, and the
    weather observed after it changes.

    Every feature of every flight scheduled at or before 15:00 must be identical between the real
    and the crafted day; flights after 15:00 must see the change (so the test can fail).
    """
    cutoff = pd.Timestamp("2013-01-15 15:00:00", tz="UTC")
    frames = {}
    for name in ("real", "crafted"):
        s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(tmp_path / name)})
        land_day(DAY - timedelta(days=1), s)
        drop = land_day(DAY, s)
        if name == "crafted":
            assert _shift_outcomes_after(Path(drop.uri), cutoff) > 200
        res = build_features(find_drop(DAY, s), s, spark=spark)
        publish_features(res, s)
        frames[name] = _frame(s)
    real, crafted = frames["real"], frames["crafted"]
    for f in (real, crafted):
        f["sched_dep_utc"] = pd.to_datetime(f["sched_dep_utc"], utc=True)
    features = [c for c in FEATURE_COLUMNS if c != LABEL]
    early_real = real[real["sched_dep_utc"] <= cutoff][features].reset_index(drop=True)
    early_crafted = crafted[crafted["sched_dep_utc"] <= cutoff][features].reset_index(drop=True)
    assert len(early_real) > 200
    pd.testing.assert_frame_equal(early_real, early_crafted)
    late = real["sched_dep_utc"] > cutoff + pd.Timedelta(hours=1)
    cong = ["origin_dep_delay_mean_3h", "carrier_late_arr_share_6h", "prev_leg_dep_delay"]
    changed = (real.loc[late, cong].fillna(-1) != crafted.loc[late, cong].fillna(-1)).any(axis=1)
    assert changed.mean() > 0.5, "features after the cutoff should react to the rewritten outcomes"
    # Each family that reads outcomes or weather reacts after the cutoff.
    for column in ["origin_last_dep_delay", "dest_arr_delay_mean_2h", "inbound_slack_min",
                   "precip_3h", "pressure_change_3h"]:
        moved = real.loc[late, column].fillna(-999) != crafted.loc[late, column].fillna(-999)
        assert moved.mean() > 0.1, f"{column} should react to what happened after the cutoff"


def test_failing_features_gate_quarantines_the_staged_partition(settings, spark):
    from tasks.flows.daily import features_gate
    from tasks.quality.gate import QualityGateFailed

    drop = land_day(DAY, settings)
    res = build_features(drop, settings, spark=spark)
    wrong_day = DAY + timedelta(days=3)  # the staged rows are dated another day
    with pytest.raises(QualityGateFailed, match="flight_date.*2013-01-15"):
        features_gate(replace(res, day=wrong_day), settings)
    q = Path(settings.partition("quarantine", wrong_day), "features")
    assert (q / "validation.json").exists() and list((q / "data").glob("*.parquet"))
    assert not Path(res.features_uri).exists()
    assert not Path(settings.partition("features", wrong_day)).exists()


def test_a_partition_published_before_a_feature_existed_is_named_with_the_fix(settings):
    from tasks.features.staging import OutdatedPartition

    part = Path(settings.partition("features", DAY))
    (part / "data").mkdir(parents=True)
    old = [c for c in FEATURE_COLUMNS if c not in ("turn_buffer_min", "precip_3h")]
    pd.DataFrame({c: [1] for c in old}).to_parquet(part / "data" / "part-0.parquet")
    (part / "_SUCCESS").write_text("")
    with pytest.raises(OutdatedPartition, match=r"dt=2013-01-15 was published before .*precip_3h"
                       r".*turn_buffer_min.*features-range --from 2013-01-15"):
        read_features([DAY], settings)
