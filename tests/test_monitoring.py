"""Monitoring: scoring, Evidently drift and quality reports, the metrics table, the retrain
policy (one request, then a cool-down; never on a failed-gate day) and the DAG end to end."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tasks.feature_contract import MODEL_FEATURES

END = date(2013, 3, 16)  # the model trains on the window ending here; later days are "new"
LATER = [date(2013, 3, 17) + timedelta(days=i) for i in range(8)]  # published, after training


@pytest.fixture(scope="module")
def monitored(history, tmp_path_factory):
    """Its own data root (the shared features copied in) with an XGBoost champion trained on
    the days up to END."""
    from tasks.flows.training import decide_promotion, prepare_split, train_candidate

    root = tmp_path_factory.mktemp("monitoring") / "data"
    shutil.copytree(history.zone("features"), root / "features")
    s = history.with_overrides(data_root=str(root), reference_rows=3000)
    split = prepare_split(END, 16, s)
    decide_promotion([train_candidate("xgboost", split, run_key="m-xgb", settings=s)], s, force=True)
    return s, split


def _policy(settings, **changes):
    return settings.with_overrides(**changes)


def _shifted(df):
    """A day as if the world moved: stormy, delayed, with different schedules and planes."""
    out = df.copy()
    out["temp"] = out["temp"] - 40
    out["wind_speed"] = out["wind_speed"].fillna(10) * 3 + 20
    out["visib"] = 0.5
    out["precip"] = 0.8
    out["pressure"] = out["pressure"] - 40
    out["dep_hour"] = (out["dep_hour"] + 9) % 24
    out["dep_minute_of_day"] = out["dep_hour"] * 60
    out["origin_dep_delay_mean_3h"] = out["origin_dep_delay_mean_3h"].fillna(0) + 90
    out["origin_late_dep_share_3h"] = 0.9
    out["carrier_late_arr_share_6h"] = 0.85
    out["dest_arr_delay_mean_6h"] = out["dest_arr_delay_mean_6h"].fillna(0) + 80
    out["prev_leg_dep_delay"] = out["prev_leg_dep_delay"].fillna(0) + 120
    out["prev_leg_arr_delay"] = out["prev_leg_arr_delay"].fillna(0) + 120
    out["distance"] = out["distance"] * 2.5
    # the trends of a stormy, delayed world move with it
    out["precip_3h"], out["precip_6h"] = 2.4, 4.8
    out["visib_min_3h"] = 0.25
    out["wind_gust_max_3h"] = 55.0
    out["pressure_change_3h"] = -9.0
    for c in ("origin_dep_delay_mean_1h", "origin_last_dep_delay",
              "carrier_origin_dep_delay_mean_3h", "dest_arr_delay_mean_2h",
              "carrier_arr_delay_mean_3h"):
        out[c] = out[c].fillna(0) + 90
    out["inbound_slack_min"] = out["inbound_slack_min"].fillna(0) - 120
    out["inbound_delay_est"] = out["inbound_delay_est"].fillna(0) + 120
    out["sched_block_min"] = out["sched_block_min"] * 2
    out["plane_age"] = out["plane_age"].fillna(10) + 25
    return out


class _Html(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)


class _Page(HTMLParser):
    """A report page as a browser reads it: its titles, the first element of its body, and
    the text and table rows of the header block."""

    def __init__(self, text: str):
        super().__init__()
        self.titles: list[str] = []
        self.first_in_body: tuple[str, str | None] | None = None
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self._in_body = self._in_title = False
        self._depth = 0  # open elements inside the header block
        self.feed(text)
        self.close()
        self.text = " ".join(" ".join(self.header).split())

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self._in_body = True
        elif self._in_body and self.first_in_body is None:
            self.first_in_body = (tag, dict(attrs).get("id"))
        if tag == "title":
            self._in_title = True
            self.titles.append("")
        if self._depth or dict(attrs).get("id") == "flightline-report-header":
            self._depth += 1
            if tag == "tr":
                self.rows.append([])

    def handle_endtag(self, tag):
        self._in_title = self._in_title and tag != "title"
        self._depth = max(self._depth - 1, 0) if self._depth else 0

    def handle_data(self, data):
        if self._in_title:
            self.titles[-1] += data
        if self._depth:
            self.header.append(data)
            if self.rows and self.lasttag in ("td", "th"):
                self.rows[-1].append(data)


def _page(uri: str, settings) -> _Page:
    """The page the report's URI points at, read back from the store."""
    from tasks.storage import Store

    return _Page(Store(settings).read_text(uri))


def test_a_sample_drawn_from_the_reference_period_shows_no_dataset_drift(monitored):
    """Rows drawn from the training days (not the reference rows themselves): no feature
    drifts enough to breach, and the report files are a valid page and parseable JSON."""
    from tasks.features.staging import read_features
    from tasks.monitoring.reports import drift_report
    from tasks.monitoring.scoring import PREDICTION, score_day
    from tasks.training import registry

    s, split = monitored
    scored = score_day(LATER[0], s)
    train = read_features([date.fromisoformat(d) for d in split.train_days], s)
    sample = train.sample(n=900, random_state=7)
    sample[PREDICTION] = registry.load_model(scored.version, s).predict_proba(sample)
    result = drift_report(scored, s, current=sample)
    assert result.drift_share < s.retrain_drift_share, result.drifted
    assert result.drift_share <= 0.1 and not result.prediction_drift["drifted"], result.drifted
    assert len(result.features) == len(MODEL_FEATURES) and all(
        {"method", "score", "threshold", "drifted"} <= set(e) for e in result.features.values())
    page = _Html()
    page.feed(Path(result.html).read_text())
    assert {"html", "body", "script"} <= page.tags
    body = json.loads(Path(result.json).read_text())
    assert body["drift_share"] == result.drift_share and body["evidently"]["metrics"]
    # the page names its day and model version, in its title and a header opening its body
    title = f"Flightline drift report, {LATER[0]}, model {scored.version}"
    shown = _page(result.html, s)
    assert shown.titles == [title] and shown.first_in_body == ("div", "flightline-report-header")
    counted = sum(e["counted"] for e in result.features.values())
    assert shown.text.startswith(title) and (
        f"Drift share {result.drift_share:.3f}: {len(result.drifted)} of {counted} counted model "
        f"features drifted") in shown.text and "Prediction drift: no drift (" in shown.text, shown.text
    assert "Thresholds: calibrated per column on the model's" in shown.text
    assert "900 rows of the day" in shown.text


def test_the_quality_page_shows_the_test_day_figures_beside_the_day(monitored):
    """The quality page is titled with its day and version, and its header sets the day's
    figures beside the version's test-day figures from the registry (what the retrain policy
    compares), with the policy's auc_drop."""
    from tasks.monitoring.reports import quality_report
    from tasks.monitoring.scoring import score_day
    from tasks.training import registry

    s, _ = monitored
    scored = score_day(LATER[0], s)
    result = quality_report(scored, s)
    test_days = registry.show(scored.version, s)["metrics"]
    assert result.registry_metrics == test_days
    shown = _page(result.html, s)
    title = f"Flightline quality report, {LATER[0]}, model {scored.version}"
    assert shown.titles == [title] and shown.first_in_body == ("div", "flightline-report-header")
    assert shown.text.startswith(title)
    assert f"{result.rows:,} labelled rows" in shown.text
    rows = {r[0]: r[1:] for r in shown.rows}
    assert rows["metric"] == ["this day", "the version's test days", "difference (day - test days)"]
    day, reg = result.metrics["roc_auc"], test_days["roc_auc"]
    assert rows["ROC AUC"] == [f"{day:.4f}", f"{reg:.4f}", f"{day - reg:+.4f}"], rows
    for label, key in (("PR AUC (average precision)", "pr_auc"), ("log loss", "log_loss"),
                       ("Brier score", "brier"), ("expected calibration error", "ece")):
        assert rows[label][:2] == [f"{result.metrics[key]:.4f}", f"{test_days[key]:.4f}"], label
    assert f"auc_drop (test days - this day) = {result.auc_drop:.4f}" in shown.text
    assert "compare this day with the version's reference sample" in shown.text


def test_a_report_page_header_escapes_what_it_shows():
    """The header goes after the page's real <body> (not one inside a script's data), replaces
    its title, and every value in it is escaped; a figure missing on one side is "n/a"."""
    from tasks.monitoring.reports import PageHeader, QualityResult, _quality_header, titled
    from tasks.settings import Settings

    hostile = "v1<script>alert(1)</script>&"
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Evidently</title>"
            "<script>var data = {\"a\": \"<body><title>x</title>\"};</script></head>"
            "<body class=\"x\"><div id=\"root\"></div></body></html>")
    out = titled(page, PageHeader(title=f"Flightline drift report, 2013-03-18, model {hostile}",
                                  lines=[f"drifted: {hostile}"],
                                  table=[("metric", "day"), (hostile, "0.5")], notes=[hostile]))
    assert "<script>alert" not in out and out.count("<script>") == 1
    assert out.count("v1&lt;script&gt;alert(1)&lt;/script&gt;&amp;") == 5
    shown = _Page(out)
    assert shown.titles == [f"Flightline drift report, 2013-03-18, model {hostile}"]
    assert shown.first_in_body == ("div", "flightline-report-header")
    assert shown.rows == [["metric", "day"], [hostile, "0.5"]]
    assert '{"a": "<body><title>x</title>"}' in out  # the script's data is left alone
    assert out.index('<body class="x"><div id="flightline-report-header"') > out.index("</script>")
    # a page without a title gets one in its head
    assert "<head><title>t</title><meta" in titled("<html><head><meta></head><body></body></html>",
                                                   PageHeader("t"))

    result = QualityResult(day="2013-03-18", version=hostile, rows=10,
                           metrics={"roc_auc": 0.61234, "pr_auc": 0.4, "threshold": 0.5},
                           registry_metrics={"roc_auc": 0.7, "rows": 1000}, auc_drop=0.08766)
    header = _quality_header(result, 5000, Settings.from_env({}))
    assert header.title == f"Flightline quality report, 2013-03-18, model {hostile}"
    assert list(header.table[1:]) == [("ROC AUC", "0.6123", "0.7000", "-0.0877"),
                                      ("PR AUC (average precision)", "0.4000", "n/a", "n/a")]
    assert "auc_drop (test days - this day) = 0.0877" in header.notes[0]
    assert "recall n/a" in header.lines[0] and "(the version's test days: 1,000)" in header.lines[0]


def test_scoring_a_day_again_writes_the_same_rows(monitored):
    from tasks.monitoring.scoring import read_scored, score_day

    s, _ = monitored
    first = score_day(LATER[1], s)
    rows = read_scored(LATER[1], s)
    again = score_day(LATER[1], s)
    assert again.uri == first.uri and again.rows == first.rows == len(rows) > 500
    assert read_scored(LATER[1], s).equals(rows)
    assert set(rows["model_version"]) == {first.version}
    assert rows["prediction"].between(0, 1).all()


@pytest.mark.slow  # six days scored and reported: about 40 s
def test_a_shifted_world_requests_exactly_one_retrain_then_cools_down(monitored):
    """K=2 breaching days request one retrain; the next days inside the cool-down request none,
    though they breach too; the day after the cool-down may ask again."""
    from tasks.monitoring.metrics import read_metrics
    from tasks.monitoring.policy import decide_retrain
    from tasks.monitoring.reports import drift_report, quality_report
    from tasks.monitoring.scoring import read_scored, score_day
    from tasks.training import registry

    s, _ = monitored
    s = _policy(s, retrain_consecutive_days=2, retrain_cooldown_days=3, retrain_drift_share=0.3)
    decisions = []
    for day in LATER[2:8]:
        scored = score_day(day, s)
        shifted = _shifted(read_scored(day, s))
        shifted["prediction"] = registry.load_model(scored.version, s).predict_proba(shifted)
        drift = drift_report(scored, s, current=shifted)
        assert drift.drift_share >= s.retrain_drift_share and drift.prediction_drift["drifted"]
        decisions.append(decide_retrain(drift, quality_report(scored, s, current=shifted), s))
    assert [d.breach for d in decisions] == [True] * 6
    assert [d.retrain for d in decisions] == [False, True, False, False, False, True], \
        [d.reason for d in decisions]
    assert "cool-down" in decisions[2].reason and "1 of 2" in decisions[0].reason
    table = read_metrics(s)
    assert table[table["retrain"] == True]["day"].tolist() == [LATER[3], LATER[7]]  # noqa: E712
    # monitoring a requesting day again does not request twice
    scored = score_day(LATER[3], s)
    shifted = _shifted(read_scored(LATER[3], s))
    shifted["prediction"] = 0.5
    again = decide_retrain(drift_report(scored, s, current=shifted), None, s)
    assert again.repeat and not again.retrain
    # the trend picture marks the two requests
    from tasks.monitoring.trend import draw_trend

    out = draw_trend(LATER[0], LATER[-1], s)
    assert out["retrain_requests"] == [LATER[3].isoformat(), LATER[7].isoformat()]
    assert Path(out["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(LookupError, match="no monitored day"):
        draw_trend(date(2013, 1, 1), date(2013, 1, 31), s)


def test_days_monitored_out_of_order_are_judged_in_day_order(monitored):
    """A backfill publishes its days as its runs end, not in day order: the policy's requests
    are those of day order, and the late day's run makes the request its arrival completed;
    monitoring the late day again requests nothing more."""
    from tasks.flows.monitoring import request_retrain
    from tasks.monitoring.metrics import metrics_uri, read_metrics
    from tasks.monitoring.policy import decide_retrain
    from tasks.monitoring.reports import drift_report
    from tasks.monitoring.scoring import read_scored, score_day
    from tasks.training import registry

    s = _policy(monitored[0], retrain_consecutive_days=2, retrain_cooldown_days=3,
                retrain_drift_share=0.3)
    table = Path(metrics_uri(s))
    saved = table.read_bytes() if table.exists() else None

    drifts = {}

    def monitor(day):  # one Evidently report per day: monitoring a day again reuses it
        if day not in drifts:
            scored = score_day(day, s)
            shifted = _shifted(read_scored(day, s))
            shifted["prediction"] = registry.load_model(scored.version, s).predict_proba(shifted)
            drifts[day] = drift_report(scored, s, current=shifted)
        return decide_retrain(drifts[day], None, s)

    try:
        table.unlink(missing_ok=True)
        first = monitor(LATER[3])  # the day before it is not recorded yet: 1 of 2
        assert not first.retrain and "1 of 2" in first.reason, first
        late = monitor(LATER[2])  # completes the streak of the day after it
        assert late.retrain and late.request_day == LATER[3].isoformat(), late
        assert request_retrain(late, s)["day"] == LATER[3].isoformat()
        after = monitor(LATER[4])
        assert not after.retrain and "cool-down" in after.reason, after
        again = monitor(LATER[2])
        assert not again.retrain and again.request_day is None, again
        rows = read_metrics(s)
        assert rows["day"].tolist() == LATER[2:5]
        assert rows[rows["retrain"] == True]["day"].tolist() == [LATER[3]]  # noqa: E712
    finally:
        if saved is not None:
            table.write_bytes(saved)
        else:
            table.unlink(missing_ok=True)


def test_a_day_whose_data_failed_its_gate_is_not_scored(monitored):
    from tasks.monitoring.scoring import score_day

    s, _ = monitored
    with pytest.raises(LookupError, match="no published features"):
        score_day(date(2013, 3, 25), s)  # never published: as after a failed gate


@pytest.mark.slow
def test_monitoring_dag_reports_and_requests_a_retrain_through_the_asset(monitored, monkeypatch):
    import pendulum
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    s, _ = monitored
    monkeypatch.setenv("FLIGHTLINE_DATA_ROOT", s.data_root)
    dag = DagBag(dag_folder=str(Path(__file__).parent.parent / "dags" / "flightline_monitoring.py")
                 ).get_dag("flightline_monitoring")

    def run(day: date, **conf):
        dr = dag.test(logical_date=pendulum.datetime(day.year, day.month, day.day, 3, tz="UTC"),
                      run_conf={"day": day.isoformat(), **conf})
        return dr, {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}

    _, states = run(date(2013, 3, 25))  # no published features: nothing downstream runs
    assert states["score_day"] == "skipped" and states["request_retrain"] == "skipped", states

    monkeypatch.setenv("FLIGHTLINE_RETRAIN_CONSECUTIVE_DAYS", "1")
    monkeypatch.setenv("FLIGHTLINE_RETRAIN_DRIFT_SHARE", "0")  # every day breaches: one request
    monkeypatch.setenv("FLIGHTLINE_RETRAIN_COOLDOWN_DAYS", "30")
    with create_session() as session:
        before = session.scalar(select(AssetEvent.id).order_by(AssetEvent.id.desc()).limit(1)) or 0
    dr, states = run(LATER[0])
    assert states == {"score_day": "success", "drift_report": "success", "quality_report": "success",
                      "decide_retrain": "success", "request_retrain": "success"}, states
    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.id > before)).all()
        extras = [e.extra for e in events if e.asset.name == "flightline_retrain_request"]
    assert len(extras) == 1 and extras[0]["day"] == LATER[0].isoformat() and "breaching" in extras[0]["reason"]
    assert (Path(s.zone("reports")) / "monitoring" / f"dt={LATER[0]}" / "drift.html").exists()
    _, states = run(LATER[1])  # inside the cool-down: no second request
    assert states["request_retrain"] == "skipped", states


def test_the_quality_rule_pools_its_days_scored_by_one_version(monitored):
    """The AUC rule judges the W days' labelled rows together: W-1 poorly scored days do not
    request, the W-th does (W is its own setting, not the drift rule's K); days scored by another
    model version do not count."""
    from tasks.monitoring.policy import decide_retrain, window_auc
    from tasks.monitoring.reports import drift_report, quality_report
    from tasks.monitoring.scoring import read_scored, score_day, scored_uri
    from tasks.storage import Store

    s, _ = monitored
    s = _policy(s, retrain_consecutive_days=3, retrain_auc_window_days=2, retrain_cooldown_days=3,
                retrain_drift_share=1.01, data_root=str(Path(s.data_root).parent / "quality-rule"))
    shutil.copytree(Path(monitored[0].data_root), s.data_root)
    shutil.rmtree(Path(s.zone("reports")) / "monitoring", ignore_errors=True)  # no earlier request
    shutil.rmtree(Path(s.zone("predictions")), ignore_errors=True)  # and no day scored yet
    store = Store(s)

    def score_badly(day):
        """The day's rows scored backwards (1 - p): the model ranks them the wrong way round."""
        scored = score_day(day, s)
        rows = read_scored(day, s)
        rows["prediction"] = 1 - rows["prediction"]
        folder = Path(s.data_root) / "tmp-bad" / day.isoformat()
        folder.mkdir(parents=True)
        rows.to_parquet(folder / "part-0.parquet", index=False)
        store.publish_folder(folder, scored_uri(day, s))
        return scored

    first, second = LATER[4], LATER[5]
    assert window_auc(first, "not-a-version", s) is None
    decisions = []
    for day in (first, second):
        scored = score_badly(day)
        decisions.append(decide_retrain(drift_report(scored, s), quality_report(scored, s), s))
    assert [d.retrain for d in decisions] == [False, True], [d.reason for d in decisions]
    pooled = window_auc(second, decisions[1].version, s)
    assert pooled is not None and pooled < 0.5
    assert "ROC AUC over the last 2 days" in decisions[1].reason
    # one bad day beside a good one pools to a smaller loss than the bad day alone
    score_day(first, s)
    assert window_auc(second, decisions[1].version, s) > pooled


def test_served_rows_are_the_production_view_and_skew_is_caught(monitored):
    """Rows the server logged for a day get their own drift report; served and batch
    probabilities of the same flight by the same model must agree, and those that do not are
    counted and named."""
    from tasks.features.staging import read_features
    from tasks.monitoring.policy import decide_retrain
    from tasks.monitoring.reports import drift_report, quality_report
    from tasks.monitoring.scoring import score_day
    from tasks.serving.prediction_log import PredictionLog
    from tasks.serving.schema import FeatureRow, to_requests
    from tasks.training import registry

    s, _ = monitored
    s = s.with_overrides(data_root=str(Path(s.data_root).parent / "served-view"))
    shutil.copytree(Path(monitored[0].data_root) / "features", Path(s.zone("features")))
    shutil.copytree(Path(monitored[0].data_root) / "models", Path(s.zone("models")))
    day = LATER[6]
    version = registry.champion(s)["version"]
    rows = read_features([day], s).sample(n=200, random_state=3)
    probabilities = list(registry.load_model(version, s).predict_proba(rows))
    probabilities[:3] = [p + 0.01 for p in probabilities[:3]]  # a client computed a feature wrongly
    log = PredictionLog(s, version, flush_s=3600)
    log.append([FeatureRow.model_validate_json(json.dumps(r)).model_dump() for r in to_requests(rows)],
               probabilities, "predict_batch")
    log.close()

    scored = score_day(day, s)
    assert scored.served_rows == 200
    assert scored.served["matched"] == scored.served["compared"] == 200
    assert scored.served["skewed"] == 3 and abs(scored.served["max_abs_diff"] - 0.01) < 1e-6
    drift = drift_report(scored, s)
    assert drift.served["rows"] == 200 and 0 <= drift.served["drift_share"] <= 1
    assert Path(drift.served["html"]).name == "drift_served.html" and Path(drift.served["html"]).exists()
    shown = _page(drift.served["html"], s)
    assert shown.titles == [f"Flightline served-rows drift report, {day}, model {version}"]
    assert "200 served rows of the day" in shown.text and "3 of the 200" in shown.text
    assert json.loads(Path(drift.json).read_text())["served"]["skewed"] == 3
    decide_retrain(drift, quality_report(scored, s), s)
    from tasks.monitoring.metrics import read_metrics

    row = read_metrics(s).iloc[-1]
    assert row["served_rows"] == 200 and row["served_skewed"] == 3


@pytest.fixture(scope="module")
def workspace_days(monitored, tmp_path_factory):
    """Three days monitored (scored, drift and quality reports) into a data root of their own,
    the middle one twice: its Evidently workspace and the days."""
    from tasks.monitoring.reports import drift_report, quality_report
    from tasks.monitoring.scoring import score_day

    s0, _ = monitored
    root = tmp_path_factory.mktemp("evidently-workspace") / "data"
    shutil.copytree(Path(s0.zone("features")), root / "features")
    shutil.copytree(Path(s0.zone("models")), root / "models")
    s = s0.with_overrides(data_root=str(root))
    days = LATER[:3]
    for day in [*days, days[1]]:
        scored = score_day(day, s)
        drift_report(scored, s)
        quality_report(scored, s)
    return s, days


@pytest.mark.slow  # 12 s of monitoring three days: make test-fast stays under 5 min
def test_monitored_days_are_runs_of_one_project_in_the_evidently_workspace(workspace_days):
    """Each day adds its drift and quality snapshots, timestamped with the day, to one project
    whose dashboard plots drift share, prediction drift and ROC AUC; a day monitored again
    replaces its runs; the figures in the runs are the reports' own."""
    from tasks.monitoring.reports import COLUMN_DRIFT_METRIC, FEATURE_DRIFT_METRIC
    from tasks.monitoring.workspace import PROJECT, open_workspace
    from tasks.storage import Store

    s, days = workspace_days
    ws = open_workspace(s)
    assert [p.name for p in ws.list_projects()] == [PROJECT]
    [project] = ws.search_project(PROJECT)
    runs = [ws.get_run(project.id, r) for r in ws.list_runs(project.id)]
    assert sorted((r.timestamp.date(), r.metadata["report"]) for r in runs) == \
        [(d, report) for d in days for report in ("drift", "quality")]
    assert all(r.tags == [r.metadata["report"]] and r.metadata["day"] == r.timestamp.date().isoformat()
               for r in runs)
    dashboard = project.dashboard.model()
    panels = {p.title: p for p in dashboard.panels}
    assert list(panels) == ["Drift share", "Prediction drift", "ROC AUC"]
    assert [v.metric for p in panels.values() for v in p.values] == \
        [FEATURE_DRIFT_METRIC, COLUMN_DRIFT_METRIC, "evidently:metric_v2:RocAuc"]
    assert {p.plot_params["plot_type"] for p in panels.values()} == {"line"}
    # the runs carry the figures the reports wrote (what the panels plot)
    store = Store(s)
    for run in runs:
        day = run.metadata["day"]
        figures = json.loads(store.read_text(
            f"{s.zone('reports')}/monitoring/dt={day}/{run.metadata['report']}.json"))
        values = {v.metric_value_location.metric.params["type"]: v for v in run.metric_results.values()}
        if run.metadata["report"] == "drift":
            assert round(values[FEATURE_DRIFT_METRIC].share.value, 4) == figures["drift_share"]
            table = values[COLUMN_DRIFT_METRIC].value.set_index("feature")
            assert round(float(table.loc["prediction", "score"]), 6) == figures["prediction_drift"]["score"]
        else:
            assert values["evidently:metric_v2:RocAuc"].value == pytest.approx(
                figures["metrics"]["roc_auc"], abs=1e-9)


def test_concurrent_writers_make_one_project_and_one_run_per_day_and_report(settings):
    """Days added at once into a fresh workspace (a backfill, a day's two report steps): one
    project, one run per day and report, the same day twice keeping one."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd
    from evidently import Report
    from evidently.metrics import RowCount

    from tasks.monitoring.workspace import PROJECT, add_snapshot, open_workspace

    def add(day_report):
        day, report = day_report
        snapshot = Report([RowCount()]).run(pd.DataFrame({"x": [1, 2, 3]}), None,
                                            metadata={"day": day.isoformat(), "report": report})
        return add_snapshot(snapshot, report, day, settings)

    work = [(d, r) for d in LATER[:3] for r in ("drift", "quality")] + [(LATER[0], "drift")] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(add, work))
    assert all(ids)
    ws = open_workspace(settings)
    [project] = ws.list_projects()
    assert project.name == PROJECT and len(project.dashboard.model().panels) == 3
    runs = [ws.get_run(project.id, r) for r in ws.list_runs(project.id)]
    assert sorted((r.metadata["day"], r.metadata["report"]) for r in runs) == \
        sorted({(d.isoformat(), r) for d, r in work})
    with pytest.raises(ValueError, match="report 'served'"):
        add_snapshot(None, "served", LATER[0], settings)


def test_the_workspace_keeps_its_last_days_only(settings):
    """Bounded: days older than FLIGHTLINE_EVIDENTLY_WORKSPACE_DAYS before the newest one kept
    leave the workspace; an older day backfilled late removes nothing newer."""
    from datetime import timedelta

    import pandas as pd
    from evidently import Report
    from evidently.metrics import RowCount

    from tasks.monitoring.workspace import add_snapshot, open_workspace

    s = settings.with_overrides(evidently_workspace_days=3)
    first = LATER[0]
    for d in [first + timedelta(days=i) for i in (0, 1, 2, 4, 1)]:  # then day 1 again, late
        snapshot = Report([RowCount()]).run(pd.DataFrame({"x": [1]}), None,
                                            metadata={"day": d.isoformat(), "report": "drift"})
        add_snapshot(snapshot, "drift", d, s)
    ws = open_workspace(s)
    [project] = ws.list_projects()
    kept = sorted(ws.get_run(project.id, r).metadata["day"] for r in ws.list_runs(project.id))
    assert kept == [(first + timedelta(days=i)).isoformat() for i in (2, 4)], kept


def test_an_s3_data_root_adds_no_snapshot_and_says_why(caplog):
    import logging

    from tasks.monitoring.workspace import add_snapshot
    from tasks.settings import Settings

    with caplog.at_level(logging.INFO, logger="tasks.monitoring.workspace"):
        assert add_snapshot(object(), "drift", LATER[0], Settings(data_root="s3://bucket/lake")) is None
    assert "local only" in caplog.text and "s3://bucket/lake" in caplog.text


@pytest.mark.slow  # 12 s of monitoring three days: make test-fast stays under 5 min
def test_monitoring_ui_serves_the_workspace_on_loopback(workspace_days):
    """`flightline monitoring-ui` starts Evidently's UI on 127.0.0.1 over the workspace: its API
    lists the project and the days' runs."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from tasks.localhost import free_port
    from tasks.monitoring.workspace import PROJECT

    s, days = workspace_days
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "tasks.cli", "monitoring-ui", "--port", str(port)],
                            cwd=root, env={**os.environ, "FLIGHTLINE_DATA_ROOT": s.data_root},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def get(path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.loads(r.read())

    try:
        deadline, projects = time.time() + 60, None
        while projects is None:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                projects = get("/api/projects")
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        assert [p["name"] for p in projects] == [PROJECT]
        snapshots = get(f"/api/projects/{projects[0]['id']}/snapshots")
        assert sorted(x["timestamp"][:10] for x in snapshots) == sorted(
            d.isoformat() for d in days for _ in range(2))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def calibrated(monitored):
    """The champion's calibrated thresholds, its quietest training day (the fewest columns past
    their thresholds, from the calibration's own day scores) with the model's predictions, and
    that day's drift report."""
    from tasks.features.staging import read_features
    from tasks.monitoring.calibration import read_thresholds
    from tasks.monitoring.reports import drift_report
    from tasks.monitoring.scoring import PREDICTION, Scored
    from tasks.training import registry

    s, split = monitored
    version = registry.champion(s)["version"]
    doc = read_thresholds(version, s)
    cols = doc["columns"]

    def breaches(day):
        return sum(e["days"].get(day, 0) >= e["threshold"] for c, e in cols.items() if c != PREDICTION)

    day = min(split.train_days, key=lambda d: (breaches(d), d))
    rows = read_features([date.fromisoformat(day)], s)
    rows[PREDICTION] = registry.load_model(version, s).predict_proba(rows)

    def report(frame, settings=s):
        scored = Scored(day=day, version=version, model_source="champion", uri="",
                        rows=len(frame), served_rows=0)
        return drift_report(scored, settings, current=frame)

    return {"s": s, "split": split, "version": version, "doc": doc, "day": day, "rows": rows,
            "report": report, "result": report(rows)}


def test_thresholds_are_calibrated_on_the_training_days_with_evidentlys_own_scores(calibrated):
    """Each version keeps a threshold per counted column (and the prediction) next to its
    reference sample: the 0.95 quantile of that column's scores on the training days. The scores
    computed at training time (numpy/scipy) are Evidently's: on a training day, the drift report
    gives each column the same method, score and threshold, and flags exactly the columns whose
    calibration score reached its threshold."""
    import numpy as np

    from tasks.feature_contract import DRIFT_EXCLUDED, MODEL_FEATURES
    from tasks.monitoring.calibration import FLOOR, QUANTILE, THRESHOLDS_FILE
    from tasks.training import registry

    s, doc, day, result = calibrated["s"], calibrated["doc"], calibrated["day"], calibrated["result"]
    card = registry.show(calibrated["version"], s)
    assert card["reference"]["thresholds"]["file"] == THRESHOLDS_FILE in card["files"]
    assert card["reference"]["thresholds"]["days"] == len(calibrated["split"].train_days)
    assert doc["days"] == calibrated["split"].train_days and doc["quantile"] == QUANTILE
    counted = [c for c in MODEL_FEATURES if c not in DRIFT_EXCLUDED]
    assert set(doc["columns"]) <= {*counted, "prediction"} and "prediction" in doc["columns"]
    assert len(doc["columns"]) >= len(counted) - 2  # a column may have no value at all (gusts)
    for c, e in doc["columns"].items():
        scores = list(e["days"].values())
        assert set(e["days"]) <= set(doc["days"]) and len(scores) >= len(doc["days"]) - 2, c
        assert e["threshold"] == pytest.approx(max(np.quantile(scores, QUANTILE), FLOOR), abs=2e-6), c
    names = {"wasserstein": "Wasserstein distance (normed)", "jensenshannon": "Jensen-Shannon distance"}
    entries = {**result.features, "prediction": result.prediction_drift}
    for c, e in doc["columns"].items():
        if c not in entries or entries[c]["score"] is None:
            continue
        got = entries[c]
        assert got["method"] == names[e["method"]] and got["calibrated"], (c, got)
        assert got["threshold"] == pytest.approx(e["threshold"], abs=1e-9), c
        assert got["score"] == pytest.approx(e["days"][day], abs=2e-6), (c, got, e["days"][day])
        assert got["drifted"] == (e["days"][day] >= e["threshold"]), c
    # the quiet training day is quiet; most of the features drifted by Evidently's defaults
    assert result.drift_share <= 0.1, result.drifted
    assert result.thresholds["source"] == "calibrated"


def test_a_day_with_its_weather_moved_is_flagged_in_that_column(calibrated):
    """The same training day with its temperature 25 degrees lower drifts in ``temp`` (the
    calibrated threshold, unlike the day as it was), and in nothing else that it did not
    already drift in."""
    base, rows = calibrated["result"], calibrated["rows"].copy()
    assert not base.features["temp"]["drifted"]
    rows["temp"] = rows["temp"] - 25
    moved = calibrated["report"](rows)
    assert moved.features["temp"]["drifted"], moved.features["temp"]
    assert set(moved.drifted) == set(base.drifted) | {"temp"}
    assert moved.drift_share > base.drift_share


def test_calendar_columns_never_count_in_the_drift_share(calibrated):
    """month, day_of_week and is_weekend differ by construction (a day holds one of each): moved
    wildly, they change nothing; they are listed as not counted, and the share is the drifted
    counted columns over the counted ones."""
    from tasks.feature_contract import DRIFT_EXCLUDED, MODEL_FEATURES

    assert set(DRIFT_EXCLUDED) == {"month", "day_of_week", "is_weekend"} <= set(MODEL_FEATURES)
    base, rows = calibrated["result"], calibrated["rows"].copy()
    rows["month"] = 12
    rows["day_of_week"] = (rows["day_of_week"] + 3) % 7
    rows["is_weekend"] = 1 - rows["is_weekend"]
    moved = calibrated["report"](rows)
    assert moved.drifted == base.drifted and moved.drift_share == base.drift_share
    assert moved.excluded == DRIFT_EXCLUDED
    for c in DRIFT_EXCLUDED:
        assert moved.features[c]["counted"] is False and moved.features[c]["score"] is None
        assert c not in moved.drifted
    counted = [c for c, e in moved.features.items() if e["counted"]]
    assert not set(counted) & set(DRIFT_EXCLUDED)
    assert moved.drift_share == round(len(moved.drifted) / len(counted), 4)
    shown = _page(moved.html, calibrated["s"])
    assert f"of {len(counted)} counted model features drifted (not counted: month, day_of_week, " \
           "is_weekend" in shown.text, shown.text


def test_a_version_without_thresholds_falls_back_to_evidentlys_defaults(calibrated):
    """A version trained before versions kept thresholds still gets its report: Evidently's
    default tests and thresholds, said so in the header; the calendar columns stay out."""
    from tasks.monitoring.calibration import THRESHOLDS_FILE
    from tasks.training import registry

    s0 = calibrated["s"]
    s = s0.with_overrides(data_root=str(Path(s0.data_root).parent / "old-version"))
    shutil.copytree(Path(s0.zone("models")), Path(s.zone("models")))
    version = calibrated["version"]
    (Path(registry.show(version, s)["uri"]) / THRESHOLDS_FILE).unlink()
    old = calibrated["report"](calibrated["rows"], s)
    assert old.thresholds["source"] == "evidently defaults"
    tested = [e for e in old.features.values() if e["counted"]]
    assert tested and all(e["threshold"] == 0.1 and not e["calibrated"] for e in tested)
    assert old.prediction_drift["threshold"] == 0.1
    assert all(not old.features[c]["counted"] for c in old.excluded)
    # one day against weeks with Evidently's defaults: many features drift on a quiet day
    assert old.drift_share > calibrated["result"].drift_share + 0.2, old.drifted
    shown = _page(old.html, s)
    assert f"Thresholds: Evidently's defaults (0.1 on each distance): model version {version} " \
           "has no calibrated thresholds" in shown.text, shown.text


def test_prediction_drift_is_its_own_signal(calibrated):
    """Scores shifted up with the features unchanged: prediction drift, and the drift share as
    it was; the header, the metrics table and the policy's reason carry it apart."""
    from tasks.monitoring.metrics import read_metrics
    from tasks.monitoring.policy import decide_retrain

    s0 = calibrated["s"]
    s = s0.with_overrides(data_root=str(Path(s0.data_root).parent / "prediction-drift"))
    shutil.copytree(Path(s0.zone("models")), Path(s.zone("models")))
    base, rows = calibrated["result"], calibrated["rows"].copy()
    assert not base.prediction_drift["drifted"]
    rows["prediction"] = (rows["prediction"] + 0.5).clip(upper=1.0)
    moved = calibrated["report"](rows, s)
    assert moved.prediction_drift["drifted"] and moved.prediction_drift["calibrated"]
    assert moved.drifted == base.drifted and moved.drift_share == base.drift_share
    assert "prediction" not in moved.features
    shown = _page(moved.html, s)
    assert "Prediction drift: drifted (" in shown.text and "not part of the drift share" in shown.text
    decision = decide_retrain(moved, None, s)
    assert "prediction drift: drifted (score" in decision.reason, decision.reason
    row = read_metrics(s).iloc[-1]
    assert bool(row["prediction_drifted"]) and row["thresholds"] == "calibrated"
    assert row["prediction_drift_threshold"] == pytest.approx(moved.prediction_drift["threshold"])
    assert row["drift_share"] == base.drift_share
