"""Expectation suites as reviewed code: known-good 2013 days pass the current suites, every
validation records the suite's version, and bootstrap-suite merges without dropping reviewed or
hand-written expectations."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from tasks.flows.daily import raw_gate
from tasks.landing import land_day
from tasks.quality.gate import GateResult
from tasks.quality.suites import SuiteError, load_suite_json

#: Days the data is known to be odd on, across the seasons: the 1048 mph wind of 2013-02-12,
#: the February blizzard, holidays with short schedules, the December storms.
SAMPLE_DAYS = [date(2013, 2, 9), date(2013, 2, 12), date(2013, 5, 27), date(2013, 7, 4),
               date(2013, 10, 13), date(2013, 12, 25)]


def _known_good(days, settings, only=None) -> dict[str, list[str]]:
    """Each day's critical failures under the current suites (one GE context for all days)."""
    from tasks.quality.gate import check_history
    from tasks.quality.raw import raw_batch

    failures = check_history((raw_batch(land_day(d, settings), settings) for d in days), only)
    return {d: [f"{f['suite']}.{f['column']}: {f['type']}" for f in fs]
            for d, fs in failures.items() if fs}


def test_a_validation_records_the_versions_of_its_suites(settings):
    result: GateResult = raw_gate(land_day(date(2013, 3, 2), settings), settings)
    assert result.suite_versions == {
        "raw_flights": str(load_suite_json("raw_flights")["meta"]["version"]),
        "raw_weather": str(load_suite_json("raw_weather")["meta"]["version"]),
        "raw_flights_parse": "code", "raw_weather_parse": "code"}


def test_sampled_known_good_days_pass_the_current_raw_suites(settings):
    """A suite change that rejects good history fails make test-fast (a sample of the year);
    the whole year runs in the slow test below."""
    assert _known_good(SAMPLE_DAYS, settings) == {}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_day_of_2013_passes_the_current_raw_suites(settings):
    """The reviewed suites (expectations/*.json) over the year; the parse suites come from the
    raw contract, which the sample above and the raw-parsing tests cover."""
    days = [date(2013, 1, 1) + timedelta(days=i) for i in range(365)]
    assert _known_good(days, settings, only=("raw_flights", "raw_weather")) == {}


def test_the_known_good_check_fails_when_a_suite_rejects_good_days(settings, monkeypatch, tmp_path):
    """The check above can fail: a suite tightened below what 2013 holds rejects a good day."""
    import tasks.quality.suites as suites

    tight = load_suite_json("raw_flights")
    for e in tight["expectations"]:
        if e["type"] == "expect_column_values_to_be_between" and e["kwargs"].get("column") == "distance":
            e["kwargs"]["max_value"] = 1000  # JFK-HNL is 4983 miles
    (tmp_path / "raw_flights.json").write_text(json.dumps(tight))
    (tmp_path / "raw_weather.json").write_text(json.dumps(load_suite_json("raw_weather")))
    monkeypatch.setattr(suites, "EXPECTATIONS_DIR", tmp_path)
    failed = _known_good([date(2013, 3, 2)], settings)
    assert "2013-03-02" in failed and "distance" in " ".join(failed["2013-03-02"])


def test_a_suite_file_without_a_version_is_refused(settings, monkeypatch, tmp_path):
    import tasks.quality.suites as suites

    for name in ("raw_flights", "raw_weather"):
        raw = load_suite_json(name)
        raw["meta"].pop("version")
        (tmp_path / f"{name}.json").write_text(json.dumps(raw))
    monkeypatch.setattr(suites, "EXPECTATIONS_DIR", tmp_path)
    with pytest.raises(SuiteError, match="meta.version is missing"):
        raw_gate(land_day(date(2013, 3, 2), settings), settings)


def test_bootstrap_merges_into_the_suite_and_keeps_hand_written_expectations(monkeypatch, tmp_path):
    import tasks.profiling as profiling

    current = load_suite_json("raw_weather")
    hand = {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "visib", "min_value": 5,
                                                                     "max_value": 10},
            "meta": {"why": "written by hand: a foggy month is a data problem"}, "severity": "warning"}
    current["expectations"].append(hand)
    dropped = next(e for e in current["expectations"] if e["type"] == "expect_column_values_to_be_in_type_list")
    current["expectations"].remove(dropped)  # an expectation the profile will add back
    (tmp_path / "raw_weather.json").write_text(json.dumps(current))
    monkeypatch.setattr(profiling, "EXPECTATIONS_DIR", tmp_path)
    out = profiling.bootstrap_suite("raw_weather", date(2013, 3, 1), date(2013, 3, 3))
    merged = json.loads((tmp_path / "raw_weather.candidate.json").read_text())
    assert hand in merged["expectations"]  # kept exactly
    assert all(e in merged["expectations"] for e in current["expectations"])
    assert merged["meta"]["version"] == current["meta"]["version"] + 1 == out["version"]
    assert out["kept"] == len(current["expectations"])
    assert f"{dropped['type']} {dropped['kwargs']['column']}" in out["added"], out["added"]
    assert not (tmp_path / ".raw_weather.candidate.json.tmp").exists()
