"""Step declarations (tasks/flows/steps.py), the result codec, declared zones and note sections:
what a data engineer relies on when adding a step, checked without Spark or Airflow running."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from tasks.flows.steps import Flow, Pod, all_steps, find, flows, pod_steps, run_step, step
from tasks.landing import Drop
from tasks.results import Result, decode, encode
from tasks.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ declarations
def test_every_declared_step_has_typed_inputs_and_a_result_the_codec_carries():
    """Forgetting an annotation, or returning something an XCom cannot carry (a DataFrame, a
    class without Result), fails here, naming the step."""
    from tasks.results import _adapter

    assert len(all_steps()) >= 18
    for name, s in all_steps().items():
        assert s.does and s.flow, name
        for _, tp in s.inputs:
            _adapter(tp).json_schema()  # raises for a type the codec cannot carry
        _adapter(s.result).json_schema()
        for cls in _classes(s.result):
            assert issubclass(cls, Result), f"{name} returns {cls.__name__}, which is not a Result"


def _classes(tp) -> list[type]:
    import typing

    if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
        return [tp]
    return [c for a in typing.get_args(tp) for c in _classes(a)]


def test_a_step_missing_its_annotations_is_refused_by_name():
    def no_return(x: int, settings):
        return x

    def no_input_type(x, settings) -> int:
        return x

    with pytest.raises(TypeError, match="no_return has no return annotation"):
        _ = step(no_return, "x").result
    with pytest.raises(TypeError, match="parameter 'x' has no type annotation"):
        _ = step(no_input_type, "x").inputs


def test_pod_steps_and_the_docstring_tables_come_from_the_declarations():
    import tasks.flows.daily as daily
    import tasks.flows.training as training

    assert pod_steps()["build_features"].pod == Pod(cpu="1", memory="3Gi", spark=True)
    assert {n for n, s in pod_steps().items() if s.pod.gpu} == {"train_xgboost", "train_torch_horovod"}
    for flow in (daily, training):
        assert flow.FLOW.table() in flow.__doc__
        for task_id in flow.FLOW.task_ids:
            assert task_id in flow.__doc__
    # a step a flow borrows keeps its home: the pods run it by that name
    assert training.FLOW["package_champion"].qualname == "serving.package_champion"


def test_flows_are_found_by_module_and_each_one_resolves_its_inputs():
    assert {"daily", "training", "serving", "monitoring"} <= set(flows())
    daily = flows()["daily"]
    assert daily.sources(daily["build_features"], args=["day"]) == [("drop", ["wait_for_drop"])]
    assert daily.sources(daily["summarize_day"], args=["day"]) == [("published", ["publish_features"])]
    training = flows()["training"]
    assert training.sources(training["decide_promotion"], args=[]) == [
        ("candidates", ["train_xgboost", "train_torch_horovod"])]


@dataclass(frozen=True)
class Doubled(Result):
    value: int


def _double(n: int, settings: Settings) -> Doubled:
    return Doubled(n * 2)


def _skip_odd(d: Doubled, settings: Settings) -> Doubled | None:
    return None if d.value % 4 else d


def _add(d: Doubled, settings: Settings, *, plus: int = 0) -> Doubled:
    return Doubled(d.value + plus)


def test_a_flow_runs_its_steps_in_order_handing_results_forward(settings):
    flow = Flow("example", steps=[step(_double, "n x 2"), step(_skip_odd, "None when odd halves"),
                                  step(_add, "plus")])
    seconds: dict = {}
    out = flow.run(settings, n=2, options={"_add": {"plus": 1}}, seconds=seconds)
    assert out == {"_double": Doubled(4), "_skip_odd": Doubled(4), "_add": Doubled(5)}
    assert set(seconds) == set(out)
    # _add takes the latest Doubled (from _skip_odd); nothing to do there: _add does not run
    assert flow.run(settings, n=3) == {"_double": Doubled(6), "_skip_odd": None, "_add": None}
    with pytest.raises(TypeError, match="takes d: Doubled, which no step before it returns"):
        Flow("broken", steps=[step(_add, "plus")]).run(settings)


def test_run_step_runs_any_declared_step_and_names_bad_input(settings):
    from tasks.landing import land_day

    drop = land_day(date(2013, 3, 2), settings)
    out = run_step("daily.wait_for_drop", ["2013-03-02"], settings)
    assert Drop.from_dict(out).flights_uri == drop.flights_uri
    assert find("wait_for_drop") is find("daily.wait_for_drop")
    with pytest.raises(ValueError, match="unknown step 'daily.nope'"):
        run_step("daily.nope", [], settings)
    with pytest.raises(ValueError, match=r"takes 1 input\(s\) \(drop\), got 2"):
        run_step("daily.raw_gate", [{}, {}], settings)
    with pytest.raises(ValueError, match=r"input 'drop' is not what it takes: not a Drop: .*flights_uri: Field required"):
        run_step("daily.raw_gate", [{k: v for k, v in out.items() if k != "flights_uri"}], settings)
    with pytest.raises(ValueError, match="has no option\\(s\\) colour"):
        run_step("daily.wait_for_drop", ["2013-03-02"], settings, {"colour": "red"})


def test_flightline_step_runs_a_light_step_from_the_shell(settings, tmp_path):
    from tasks.landing import land_day

    land_day(date(2013, 3, 2), settings)
    result = tmp_path / "out" / "result.json"
    out = subprocess.run([sys.executable, "-m", "tasks", "step", "daily.wait_for_drop", "--input",
                          '"2013-03-02"', "--result-file", str(result)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(result.read_text())["day"] == "2013-03-02"
    bad = subprocess.run([sys.executable, "-m", "tasks", "step", "daily.raw_gate", "--input", "{}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "input 'drop' is not what it takes" in bad.stderr, bad.stderr


# ------------------------------------------------------------------------------ the codec
def test_results_round_trip_with_dates_nested_results_none_and_nan():
    prev = Drop(date(2013, 3, 1), date(2013, 3, 1), "u0", "f0", "w0", 900, 72)
    drop = Drop(date(2013, 3, 2), date(2013, 3, 2), "u", "f", "w", 901, 72, lookback=prev)
    data = drop.to_dict()
    assert data["day"] == "2013-03-02" and data["lookback"]["day"] == "2013-03-01"
    assert json.loads(json.dumps(data)) == data  # what an XCom stores
    assert Drop.from_dict(data) == drop
    from tasks.training.promotion import Decision

    d = Decision(promote=False, challenger="v2", champion=None, reason="r", challenger_auc=math.nan,
                 champion_auc=None, baselines={"logistic": 0.7})
    back = decode(json.loads(json.dumps(encode(d))), Decision | None)
    assert math.isnan(back.challenger_auc) and back.champion is None and back.baselines == d.baselines
    assert decode(None, Decision | None) is None
    with pytest.raises(ValueError, match="not a Drop: .*weather: Field required"):
        Drop.from_dict({k: v for k, v in data.items() if k != "weather"})


def test_a_gate_result_carries_its_summary_and_reads_back():
    from tasks.quality.gate import GateResult

    r = GateResult(gate="raw", day=date(2013, 3, 2), passed=True, suites={})
    data = r.to_dict()
    assert data["summary"] == "raw gate passed for 2013-03-02"
    assert GateResult.from_dict(data) == r


# ------------------------------------------------------------------------------ zones
def test_a_step_declares_the_zone_it_writes_and_a_folder_override_applies():
    s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": "/tmp/x", "FLIGHTLINE_ZONE_SUMMARIES": "daily-summaries"})
    assert s.zone("summaries") == "/tmp/x/daily-summaries"  # declared by daily.summarize_day
    assert Settings.from_env(s.to_env()).zone("summaries") == "/tmp/x/daily-summaries"
    with pytest.raises(SettingsError, match="unknown data zone 'nowhere'.*writes="):
        s.zone("nowhere")
    with pytest.raises(SettingsError, match="FLIGHTLINE_ZONE_RAW='a/b'"):
        Settings.from_env({"FLIGHTLINE_ZONE_RAW": "a/b"})
    step(_double, "declares", writes=("doubles",))
    assert s.zone("doubles") == "/tmp/x/doubles"
    with pytest.raises(SettingsError, match="one lower-case folder name"):
        step(_double, "bad zone", writes=("../up",))


# ------------------------------------------------------------------------------ run notes
def test_note_sections_append_replace_on_retry_and_fit_the_limit():
    from flightline_airflow.api import NOTE_LIMIT, merge_note, parse_note

    note = merge_note("", "land_demo_drop", "Processing 2013-03-02")
    note = merge_note(note, "publish_features", "Processed 2013-03-02: 900 rows")
    again = merge_note(note, "publish_features", "Processed 2013-03-02: 900 rows")  # a retry
    assert again == note == "land_demo_drop: Processing 2013-03-02\n\npublish_features: Processed 2013-03-02: 900 rows"
    note = merge_note(note, "land_demo_drop", "Processing 2013-03-02 (replay)")
    assert list(parse_note(note)) == ["land_demo_drop", "publish_features"]  # order kept
    assert parse_note(note)["land_demo_drop"].endswith("(replay)")
    long = merge_note(note, "cost", "x" * 5000)
    assert len(long) <= NOTE_LIMIT and parse_note(long)["publish_features"].endswith("900 rows")
    assert parse_note("an old note\nwithout sections") == {"": "an old note without sections"}
    with pytest.raises(ValueError, match="note section"):
        merge_note("", "Bad Name", "x")
