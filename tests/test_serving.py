"""Serving: the schema from the contract, the fast path's parity, a real `bentoml serve` on
loopback (build, serve, answer, bad requests, prediction log), and the serving check refusing a
Bento whose model file was swapped after packaging."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from tasks.feature_contract import CATEGORY_DOMAINS, MODEL_FEATURES, NOT_NULL_FEATURES

ROOT = Path(__file__).resolve().parent.parent
END = date(2013, 3, 24)
DAY = date(2013, 3, 23)  # a test day of the window ending at END


# ------------------------------------------------------------------ schema (no server)
def test_schema_is_the_feature_contract_and_agrees_with_the_features_suite():
    from tasks.serving.schema import FeatureRow

    fields = FeatureRow.model_fields
    assert [f for f in fields if f in MODEL_FEATURES] == MODEL_FEATURES
    assert all(fields[f].is_required() for f in MODEL_FEATURES)
    assert not any(fields[f].is_required() for f in ("flight_date", "flight", "tailnum", "sched_dep_utc"))
    suite = json.loads((ROOT / "expectations" / "features.json").read_text())["expectations"]
    not_null = {e["kwargs"]["column"] for e in suite if e["type"] == "expect_column_values_to_not_be_null"}
    assert not_null & set(MODEL_FEATURES) == set(NOT_NULL_FEATURES)
    in_set = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in suite
              if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] in MODEL_FEATURES}
    assert in_set == CATEGORY_DOMAINS


def test_prediction_log_keeps_rows_a_failed_flush_could_not_write(settings):
    """Storage down: nothing is lost and nothing half-written is visible; the next flush
    writes every row exactly once."""
    from tasks.serving.prediction_log import PredictionLog, log_root, read_prediction_log

    blocker = Path(settings.zone("predictions"))
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # the zone cannot be created: every write fails
    log = PredictionLog(settings, "v-test", flush_s=3600)
    rows = [{f: None for f in MODEL_FEATURES} | {"carrier": "AA", "origin": "JFK",
            "flight_date": DAY, "flight": i + 1} for i in range(5)]
    log.append(rows[:3], [0.1, 0.2, 0.3], "predict_batch")
    from tasks.storage import StorageError

    with pytest.raises((StorageError, OSError)):
        log.flush()
    log.append(rows[3:], [0.4, 0.5], "predict")
    blocker.unlink()
    written = log.flush()
    log.close()
    assert len(written) == 1 and written[0].startswith(log_root(settings) + f"/dt={DAY}/part-")
    got = read_prediction_log(DAY, settings).sort_values("flight")
    assert got["flight"].tolist() == [1, 2, 3, 4, 5]
    assert np.allclose(got["late_probability"], [0.1, 0.2, 0.3, 0.4, 0.5])
    assert set(got["model_version"]) == {"v-test"}
    assert [p.name for p in Path(written[0]).parent.iterdir()] == [Path(written[0]).name]
    many = PredictionLog(settings, "v-many", flush_s=3600)  # crosses the Arrow chunks
    many.append(rows * 230, [0.5] * 1150, "predict_batch")
    many.append([dict(rows[0], flight_date=None)], [0.9], "predict")  # filed under today
    many.close()
    assert len(read_prediction_log(DAY, settings)) == 5 + 1150
    today = read_prediction_log(datetime.now(UTC).date(), settings)
    assert today["late_probability"].tolist() == [0.9] and today["flight_date"].isna().all()


# ------------------------------------------------------------------ trained models
@pytest.fixture(scope="module")
def trained(history, tmp_path_factory):
    """Its own data root (the shared features copied in): an XGBoost champion, a second, weaker
    XGBoost version, and a small PyTorch model."""
    from tasks.flows.training import decide_promotion, prepare_split, train_candidate

    root = tmp_path_factory.mktemp("serving") / "data"
    shutil.copytree(history.zone("features"), root / "features")
    s = history.with_overrides(data_root=str(root))
    split = prepare_split(END, 30, s)
    champ = train_candidate("xgboost", split, run_key="s-xgb", settings=s)
    weak = train_candidate("xgboost", split, run_key="s-weak", settings=s, max_depth=1)
    decide_promotion([champ], s, force=True)
    return s, split, champ, weak


@pytest.mark.slow
def test_fast_path_predicts_exactly_as_the_offline_model(trained):
    from tasks.features.staging import read_features
    from tasks.flows.training import train_candidate
    from tasks.serving.schema import FeatureRow, to_requests
    from tasks.training import registry

    s, split, champ, _ = trained
    torch = train_candidate("torch-horovod", split, run_key="s-torch", settings=s, workers=1, epochs=2)
    df = read_features([DAY], s)
    rows = [FeatureRow.model_validate_json(json.dumps(r)).__dict__ for r in to_requests(df)]
    for version in (champ.version, torch.version):
        model = registry.load_model(version, s)
        fast, offline = model.predict_records(rows), model.predict_proba(df)
        assert len(fast) == len(df) > 500
        assert np.abs(np.asarray(fast, "float64") - offline).max() <= 1e-6, version


BAD_REQUESTS = [  # (endpoint, body, what the 400's message must name)
    ("predict", b'{"row": {"month": 3,', "json_invalid"),
    ("predict", "missing", "dep_hour"),
    ("predict", "extra", "surprise"),
    ("predict", "string", "distance"),
    ("predict", "bool", "temp"),
    ("predict", "nan", "precip"),
    ("predict", "infinity", "visib"),
    ("predict", "null", "carrier"),
    ("predict", "carrier", "carrier"),
    ("predict_batch", b'{"rows": []}', "rows"),
    ("predict_batch", "oversized", "rows"),
    ("predict_batch", "second", '"rows",1,"origin"'),
]


def _bad_body(kind, row: dict, max_rows: int) -> bytes:
    if isinstance(kind, bytes):
        return kind
    r = dict(row)
    if kind == "missing":
        del r["dep_hour"]
    elif kind == "extra":
        r["surprise"] = 1
    elif kind == "string":
        r["distance"] = "1134"
    elif kind == "bool":
        r["temp"] = True
    elif kind == "nan":
        return json.dumps({"row": r}).replace(f'"precip": {json.dumps(r["precip"])}', '"precip": NaN').encode()
    elif kind == "infinity":
        return json.dumps({"row": r}).replace(f'"visib": {json.dumps(r["visib"])}', '"visib": Infinity').encode()
    elif kind == "null":
        r["carrier"] = None
    elif kind == "carrier":
        r["carrier"] = "ZZ"
    elif kind == "oversized":
        return json.dumps({"rows": [row] * (max_rows + 1)}).encode()
    elif kind == "second":
        return json.dumps({"rows": [row, dict(row, origin="BOS")]}).encode()
    return json.dumps({"row": r}).encode()


@pytest.mark.slow
def test_released_bento_answers_refuses_bad_requests_and_logs_predictions(trained):
    import psutil
    import requests

    from tasks.features.staging import read_features
    from tasks.flows.serving import run_release
    from tasks.serving.check import server_processes, serving
    from tasks.serving.package import bento_path
    from tasks.serving.prediction_log import read_prediction_log
    from tasks.serving.schema import to_requests
    from tasks.training import registry

    s, _, champ, _ = trained
    out = run_release(s)
    rel = registry.released(s)
    assert rel["bento"] == out["release"]["bento"] and rel["version"] == champ.version
    figures = rel["figures"]
    assert figures["rows"] > 1000 and figures["max_abs_diff_batch"] <= 1e-6
    assert figures["p99_ms"] <= s.serve_check_p99_ms and figures["bad_request_status"] == 400
    history = registry.release_history(s)
    assert [(h["kind"], h.get("passed"), h.get("decision")) for h in history] == [
        ("check", True, None), ("decision", None, "approved")], history
    assert history[1]["mode"] == "off" and rel["approval"]["mode"] == "off"
    assert (bento_path(rel["bento"], s) / "src" / "model" / "model.ubj").exists()
    assert Path(out["packaged"]["archive"]).stat().st_size > 10_000  # the exported archive
    assert run_release(s)["packaged"] is None  # already released: nothing to package

    df = read_features([DAY], s)
    rows = to_requests(df)
    offline = registry.load_model(champ.version, s).predict_proba(df)
    with serving(rel["bento"], s, prediction_log=True,
                 env={"FLIGHTLINE_PREDICTION_LOG_FLUSH_S": "1"}) as server:
        http, url = requests.Session(), server.url
        assert http.get(f"{url}/livez").status_code == 200
        assert http.get(f"{url}/readyz").status_code == 200
        info = http.post(f"{url}/model", json={}).json()
        assert info["version"] == champ.version and info["metrics"]["roc_auc"] == champ.metrics["roc_auc"]
        assert info["training_window"]["test_days"][-1] == END.isoformat()
        one = http.post(f"{url}/predict", json={"row": rows[0]}).json()
        assert abs(one["late_probability"] - offline[0]) <= 1e-6 and one["model_version"] == champ.version
        batch = http.post(f"{url}/predict_batch", json={"rows": rows[1:51]}).json()
        assert np.abs(np.asarray(batch) - offline[1:51]).max() <= 1e-6

        for endpoint, kind, field in BAD_REQUESTS:
            r = http.post(f"{url}/{endpoint}", data=_bad_body(kind, rows[0], s.serve_max_batch_size),
                          headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (endpoint, kind, r.status_code, r.text[:300])
            assert field in r.text, (kind, r.text[:300])
        assert http.post(f"{url}/predict", json={"row": rows[0]}).status_code == 200  # still serving
        metrics = http.get(f"{url}/metrics").text
        assert 'endpoint="/predict",http_response_code="400"' in metrics

        time.sleep(2.5)  # past a flush: those rows are on disk, the server is then killed
        procs = server_processes(server.proc)
        assert len(procs) >= 3  # bentoml serve, its arbiter, the workers
        for p in procs:
            p.kill()  # a crash: no shutdown flush
        psutil.wait_procs(procs, timeout=10)
    assert all(not p.is_running() for p in procs)
    log = read_prediction_log(DAY, s)
    assert len(log) == 1 + 50 + 1, len(log)  # the good requests; refused ones are not logged
    assert set(log["model_version"]) == {champ.version} and set(log["endpoint"]) == {"predict", "predict_batch"}
    first = log[log["endpoint"] == "predict"].sort_values("logged_at").iloc[0]
    assert first["flight"] == rows[0]["flight"] and abs(first["late_probability"] - offline[0]) <= 1e-6
    files = list(Path(s.zone("predictions")).rglob("*"))
    assert all(not p.name.startswith(".") for p in files), files  # nothing half-written visible


@pytest.mark.slow
def test_serving_check_refuses_a_bento_whose_model_file_was_swapped(trained):
    from tasks.flows.serving import check_and_release
    from tasks.serving.check import ServingCheckFailed
    from tasks.serving.package import bento_path, package_version
    from tasks.storage import Store, join
    from tasks.training import registry

    s, _, champ, weak = trained
    before = registry.released(s)
    packaged = package_version(champ.version, s)
    model_file = bento_path(packaged.bento, s) / "src" / "model" / "model.ubj"
    Store(s).download(join(registry.show(weak.version, s)["uri"], "model.ubj"), model_file)
    with pytest.raises(ServingCheckFailed, match="differ from the offline model") as err:
        check_and_release(packaged, s)
    assert not err.value.transient  # a retry cannot pass: the DAG fails the task for good
    assert registry.released(s) == before  # the previous release stays
    last = registry.release_history(s)[-1]
    assert last["bento"] == packaged.bento and not last["passed"] and "differ" in last["reason"]
    assert model_file.exists()  # the Bento is kept for inspection


@pytest.mark.slow
def test_a_release_waits_for_its_approval_and_a_rejection_keeps_the_current_one(trained):
    """The reviewer's figures (the candidate and the released model on the same test days),
    then a rejection (nothing moves, the decision is kept with who and why), then an approval."""
    from tasks.serving.approval import Approval, approve_release, release, review
    from tasks.serving.check import check_serving
    from tasks.serving.package import package_version
    from tasks.training import registry

    s, _, champ, weak = trained
    before = registry.released(s)
    assert before is not None and before["version"] == champ.version  # released by the test above
    checked = check_serving(package_version(weak.version, s), s)
    c = checked.comparison
    assert c["released_version"] == champ.version and c["test_days"] == weak.test_days
    assert abs(c["candidate"]["roc_auc"] - weak.metrics["roc_auc"]) < 1e-9  # same rows as training's test
    assert c["released"]["rows"] == c["candidate"]["rows"] > 1000  # the released model, same rows
    text = review(checked, cost="Cost $0.01", plots_url="/flightline/models/v1")
    assert f"candidate `{weak.version}`" in text and f"released `{champ.version}`" in text
    assert f"{c['released']['roc_auc']:.4f}" in text and "ECE" in text and "p99" in text
    assert "/flightline/models/v1/roc.png" in text and "Cost $0.01" in text
    with pytest.raises(ValueError, match="waits for a person"):
        approve_release(checked, s, mode="on")  # never approved silently in one process

    no = Approval.from_response({"chosen_options": ["Reject"], "responded_by_user":
                                 {"id": "7", "name": "ana"}, "responded_at": "2026-12-06T10:00:00+00:00",
                                 "params_input": {"comment": "PR AUC dropped"}})
    assert release(checked, no, s) is None
    assert registry.released(s) == before  # the current release stays
    last = registry.release_history(s)[-1]
    assert (last["kind"], last["decision"], last["by"], last["comment"]) == (
        "decision", "rejected", "ana", "PR AUC dropped"), last
    late = Approval.from_response({"chosen_options": ["Reject"], "responded_by_user": None,
                                   "responded_at": "2026-12-07T10:00:00+00:00"}, timed_out=True)
    assert release(checked, late, s) is None and late.by is None
    assert registry.release_history(s)[-1]["timed_out"] is True and "timed out" in late.describe()

    yes = Approval.from_response({"chosen_options": ["Approve"], "responded_by_user":
                                  {"id": "7", "name": "ana"}, "responded_at": "2026-12-06T11:00:00+00:00"})
    done = release(checked, yes, s)
    assert done.version == weak.version and "approved by ana" in done.approval
    now = registry.released(s)
    assert now["version"] == weak.version and now["previous"] == before["bento"]
    assert now["approval"]["by"] == "ana"
    with pytest.raises(ValueError, match="Approve"):
        Approval.from_response({"chosen_options": ["Maybe"]})
