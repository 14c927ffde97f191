"""Lineage from the step results: what each task of a daily and a training run read and wrote,
as the OpenLineage extractor reports it (the live test reads the emitted events)."""

from __future__ import annotations

from datetime import date

from tasks.results import encode

DAY = date(2013, 3, 15)


def _results(s):
    """One daily run's and one training run's results, as their tasks return them."""
    from tasks.features.staging import StagedFeatures
    from tasks.flows.daily import DaySummary
    from tasks.landing import Drop, Landed
    from tasks.quality.gate import GateResult
    from tasks.serving.approval import Approval
    from tasks.serving.check import Checked, Release
    from tasks.serving.package import Packaged
    from tasks.storage import join
    from tasks.training.data import Split
    from tasks.training.promotion import Decision
    from tasks.training.registry import Candidate

    land = s.partition("landing", DAY)
    drop = Drop(day=DAY, source_day=DAY, uri=land, flights_uri=join(land, "flights.csv"),
                weather_uri=join(land, "weather.csv"), flights=900, weather=72, lookback=None)
    staged = StagedFeatures(day=DAY, features_uri=join(s.zone("features"), ".staging-x"),
                            raw_uri=s.partition("raw", DAY), rows=880,
                            raw_staged=join(s.zone("raw"), ".staging-x"))
    gate = GateResult(gate="features", day=DAY, passed=True, suites={}, failures=[],
                      docs_uri=join(s.zone("reports"), "data_docs", "index.html"),
                      quarantine_uri="", seconds=1.0, suite_versions={})
    from tasks.flows.daily import Published

    published = Published(day=DAY, features_uri=s.partition("features", DAY), rows=880)
    versions = join(s.zone("models"), "registry", "versions")
    split = Split(end=str(DAY), window_days=7, train_days=["2013-03-09"], valid_days=["2013-03-10"],
                  test_days=[str(DAY)], partitions=[s.partition("features", DAY)])
    cand = Candidate(version="v1-xgboost", family="xgboost", uri=join(versions, "v1-xgboost"),
                     metrics={"roc_auc": 0.7}, baselines={}, test_days=[str(DAY)], duration_s=1)
    decision = Decision(promote=True, challenger="v1-xgboost", champion=None, reason="first",
                        challenger_auc=0.7, champion_auc=None, baselines={},
                        alias={"version": "v1-xgboost"}, candidates={"v1-xgboost": 0.7})
    archive = join(s.zone("models"), "registry", "bentos", "v1-xgboost", "b.bento")
    packaged = Packaged(version="v1-xgboost", bento="flightline:abc", archive=archive, labels={})
    checked = Checked(bento="flightline:abc", version="v1-xgboost", figures={},
                      record=join(s.zone("models"), "registry", "releases", "1.json"),
                      comparison={}, archive=archive)
    approval = Approval(decision="approved", mode="off", at="2026-12-06T00:00:00+00:00")
    release = Release(bento="flightline:abc", version="v1-xgboost", passed=True, reason="passed",
                      figures={}, record=join(s.zone("models"), "registry", "releases", "2.json"))
    daily = {"land_demo_drop": Landed(day=DAY, drops=[drop]), "wait_for_drop": drop,
             "raw_gate": gate, "build_features": staged, "features_gate": gate,
             "publish_features": published,
             "summarize_day": DaySummary(day=DAY, uri=join(s.zone("summaries"), "x.json"),
                                         rows=880, late_share=0.2)}
    training = {"prepare_split": split, "choose_capacity": None, "train_xgboost": cand,
                "train_torch_horovod": None, "decide_promotion": decision,
                "package_champion": packaged, "check_serving": checked,
                "approve_release": approval, "release": release}
    return ({k: encode(v) if v is not None else None for k, v in daily.items()},
            {k: encode(v) if v is not None else None for k, v in training.items()})


def test_every_task_names_what_it_read_and_wrote_from_a_drop_to_the_released_bento(settings):
    from flightline_airflow.lineage import step_datasets

    from tasks.flows import daily, training

    s = settings
    daily_x, train_x = _results(s)
    lineage = {}
    for dag_id, flow, xcoms in (("flightline_daily", daily.FLOW, daily_x),
                                ("flightline_training", training.FLOW, train_x)):
        for task_id in flow.task_ids:
            lineage[task_id] = step_datasets(dag_id, task_id, xcoms.get)
    land = s.partition("landing", DAY)
    assert lineage["wait_for_drop"][0] == (land, f"{land}/flights.csv", f"{land}/weather.csv")
    assert lineage["wait_for_drop"][1] == ()  # a sensor writes nothing
    assert f"{land}/flights.csv" in lineage["build_features"][0]
    assert lineage["build_features"][1] == (f"{s.zone('features')}/.staging-x", f"{s.zone('raw')}/.staging-x")
    assert set(lineage["publish_features"][1]) == {s.partition("raw", DAY), s.partition("features", DAY)}
    assert lineage["prepare_split"] == ((s.partition("features", DAY),), ())  # it reads the window
    assert lineage["train_xgboost"] == ((s.partition("features", DAY),),
                                        (f"{s.zone('models')}/registry/versions/v1-xgboost",))
    assert lineage["choose_capacity"] == ((), ()) and lineage["train_torch_horovod"] == ((), ())
    assert "bentoml:flightline:abc" in lineage["package_champion"][1]
    assert "bentoml:flightline:abc" in lineage["release"][0]
    assert f"{s.zone('models')}/registry/released.json" in lineage["release"][1]

    edges: dict[str, set[str]] = {}
    for ins, outs in lineage.values():
        for i in ins:
            edges.setdefault(i, set()).update(outs)
    seen, todo = {f"{land}/flights.csv"}, [f"{land}/flights.csv"]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert {"bentoml:flightline:abc", f"{s.zone('models')}/registry/released.json"} <= seen


def test_datasets_are_named_by_namespace_and_path():
    from tasks.lineage import Dataset

    assert Dataset.of("s3://lake/flightline/features/dt=2013-03-15") == Dataset(
        "s3://lake", "flightline/features/dt=2013-03-15")
    assert Dataset.of("/data/raw/dt=2013-03-15") == Dataset("file", "/data/raw/dt=2013-03-15")
    assert Dataset.of("bentoml:flightline:abc") == Dataset("bentoml", "flightline:abc")
