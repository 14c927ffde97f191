import csv
import io
import json
import subprocess
import sys
from datetime import date

import pytest

from tasks import landing
from tasks.landing import DropMissing, find_drop, land_day, source_day
from tasks.storage import Store


@pytest.mark.parametrize(
    "day,replay,expected",
    [
        (date(2026, 11, 21), 2013, date(2013, 11, 21)),
        (date(2024, 2, 29), 2013, date(2013, 2, 28)),  # leap day onto 28 Feb
        (date(2024, 2, 28), 2013, date(2013, 2, 28)),
        (date(2025, 12, 31), 2013, date(2013, 12, 31)),
        (date(2013, 1, 15), 0, date(2013, 1, 15)),  # replay off: the source year itself
        (date(2026, 1, 15), 0, None),  # replay off: no data outside 2013
        (date(2023, 2, 28), 2016, date(2016, 2, 28)),
        (date(2024, 2, 29), 2016, date(2016, 2, 29)),  # a leap replay year keeps 29 Feb
    ],
)
def test_replay_mapping(day, replay, expected):
    assert source_day(day, replay) == expected


def _rows(store, uri):
    return list(csv.DictReader(io.StringIO(store.read_text(uri))))


def test_drop_for_2013_01_15_holds_the_days_flights_and_weather(settings):
    drop = land_day(date(2013, 1, 15), settings)
    store = Store(settings)
    flights = _rows(store, drop.flights_uri)
    weather = _rows(store, drop.weather_uri)
    assert drop.flights == len(flights) == 894
    assert {(r["year"], r["month"], r["day"]) for r in flights} == {("2013", "1", "15")}
    assert {r["origin"] for r in weather} == {"EWR", "JFK", "LGA"}
    assert {(r["year"], r["month"], r["day"]) for r in weather} == {("2013", "1", "15")}
    assert len(weather) == drop.weather and 60 <= len(weather) <= 72
    assert list(flights[0])[:3] == ["year", "month", "day"]  # no pandas index column
    for table in landing.REFERENCE_TABLES:
        assert store.exists(landing.reference_uri(table, settings))
    assert find_drop(date(2013, 1, 15), settings) == drop


def test_replayed_date_is_partitioned_by_logical_date(settings):
    drop = land_day(date(2026, 1, 15), settings)
    assert drop.uri.endswith("/landing/dt=2026-01-15")
    assert drop.source_day == date(2013, 1, 15)
    assert drop.flights == 894


def test_missing_drop_is_a_named_condition(settings):
    with pytest.raises(DropMissing) as err:
        find_drop(date(2013, 3, 1), settings)
    assert err.value.day == date(2013, 3, 1)
    assert "no drop for 2013-03-01" in str(err.value) and "nothing has arrived" in str(err.value)


def test_replay_off_has_no_drop_outside_2013(settings):
    s = settings.with_overrides(replay_year=0)
    with pytest.raises(DropMissing, match="replay is off"):
        land_day(date(2026, 11, 21), s)


def test_drop_without_marker_is_still_arriving(settings):
    drop = land_day(date(2013, 1, 16), settings)
    Store(settings).delete(drop.uri + "/_SUCCESS")
    with pytest.raises(DropMissing, match="incomplete: .*flights.csv.* no _SUCCESS marker"):
        find_drop(date(2013, 1, 16), settings)


def test_landing_again_keeps_a_complete_drop_and_overwrite_replaces_it(settings):
    day = date(2013, 1, 17)
    first = land_day(day, settings)
    store = Store(settings)
    store.write_text(first.flights_uri, "year,month,day\n")  # tamper
    assert land_day(day, settings).flights == first.flights  # kept: the marker says complete
    assert store.read_text(first.flights_uri) == "year,month,day\n"
    again = land_day(day, settings, overwrite=True)
    assert len(_rows(store, again.flights_uri)) == first.flights


def test_drop_on_s3_through_moto_server(s3_settings):
    drop = land_day(date(2013, 1, 15), s3_settings)
    assert drop.uri.startswith("s3://") and drop.uri.endswith("/lake/landing/dt=2013-01-15")
    store = Store(s3_settings)
    assert sorted(store.list(drop.uri)) == ["_SUCCESS", "_manifest.json", "flights.csv", "weather.csv"]
    assert len(_rows(store, drop.flights_uri)) == 894
    assert find_drop(date(2013, 1, 15), s3_settings).flights == 894
    with pytest.raises(DropMissing):
        find_drop(date(2013, 1, 18), s3_settings)


def test_cli_lands_and_reports_missing_drops(settings):
    run = [sys.executable, "-m", "tasks"]
    out = subprocess.run([*run, "land", "--date", "2013-01-15"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["flights"] == 894
    missing = subprocess.run([*run, "find-drop", "--date", "2013-02-02"], capture_output=True, text=True)
    assert missing.returncode == 3
    assert "no drop for 2013-02-02" in missing.stderr
    bad = subprocess.run([*run, "land", "--date", "2013-13-01"], capture_output=True, text=True)
    assert bad.returncode == 2 and "is not a date" in bad.stderr
