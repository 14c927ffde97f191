"""Evidently 0.7 reports for one scored day, against the model version's reference sample.

- **drift**: data drift per model feature, each with the method and threshold the version
  calibrated on its training days (:mod:`tasks.monitoring.calibration`: a normed Wasserstein
  distance for numbers, the Jensen-Shannon distance for categories and numbers of few values; a
  version without calibrated thresholds gets Evidently's own choice and defaults, and its header
  says so); the share of the counted features drifted (the calendar columns of
  :data:`tasks.feature_contract.DRIFT_EXCLUDED` are not tested: one day against weeks differs
  in them by construction); and prediction drift (the model's scores against its scores on the
  reference), a signal of its own, never counted in the share;
- **quality**: the day's classification quality from its labels (a day's arrivals are known by
  the time its features are published): ROC AUC, precision and recall at the threshold
  (``THRESHOLD``), calibration (expected calibration error), beside the version's test-day
  figures from the registry.

Each writes ``reports/monitoring/dt=<day>/<report>.html`` and ``.json``, and adds its Evidently
snapshot (timestamped with the day) to the data root's Evidently workspace
(:mod:`tasks.monitoring.workspace`), whose dashboard shows the days as trends. Each page is titled
with its day and model version, and a header above Evidently's content sums it up; the quality
page's header also sets the day's figures beside the version's test-day figures (what the retrain
policy compares), since Evidently's own panels compare the day with the reference sample.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from html import escape
from pathlib import Path

from tasks.feature_contract import (
    CATEGORICAL_FEATURES,
    DRIFT_EXCLUDED,
    LABEL,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
)
from tasks.monitoring.calibration import drift_columns
from tasks.monitoring.scoring import PREDICTION, Scored, read_scored
from tasks.monitoring.workspace import add_snapshot
from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store, join
from tasks.training import registry

#: The decision threshold on P(late) that precision and recall are measured at.
THRESHOLD = 0.5
#: Served rows a day needs before the production view gets its own drift report.
SERVED_MIN_ROWS = 30
#: What a calendar column's entry says in place of a test.
EXCLUDED_NOTE = "not counted: calendar column, differs from the reference by construction"


def report_dir(day: date, settings: Settings) -> str:
    return join(settings.zone("reports"), "monitoring", f"dt={day.isoformat()}")


def report_path(day: date, report: str) -> str:
    """The report's path under the reports zone (what the reports route serves)."""
    return f"monitoring/dt={day.isoformat()}/{report}.html"


@dataclass
class DriftResult(Result):
    day: str
    version: str
    rows: int
    reference_rows: int
    drift_share: float  # share of the counted model features (tested, not calendar) drifted
    drifted: list[str]
    prediction_drift: dict  # method, score, threshold, drifted: its own signal, not in the share
    #: column -> method, score, threshold, drifted, counted (False: a calendar column, or no
    #: values), calibrated (the version's threshold, else Evidently's default)
    features: dict = field(default_factory=dict)
    html: str = ""
    json: str = ""
    #: The production view (the serving prediction log's rows for the day), when there are
    #: enough: rows, drift_share, drifted, prediction_drift, html, json, and the skew check
    #: against the batch scores (``tasks.monitoring.scoring.served_summary``).
    served: dict = field(default_factory=dict)
    #: Where the thresholds come from: source ("calibrated" or "evidently defaults"), the
    #: calibration's quantile and days, and the header's note.
    thresholds: dict = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)  # the calendar columns not counted


@dataclass
class QualityResult(Result):
    day: str
    version: str
    rows: int
    metrics: dict  # roc_auc, pr_auc, log_loss, brier, ece, precision, recall, threshold
    registry_metrics: dict  # the version's test-day figures
    auc_drop: float | None  # registry test AUC minus the day's AUC
    html: str = ""
    json: str = ""


def _dataset(df, with_label: bool):
    from evidently import BinaryClassification, DataDefinition, Dataset

    cols = MODEL_FEATURES + [PREDICTION] + ([LABEL] if with_label else [])
    definition = DataDefinition(
        numerical_columns=NUMERIC_FEATURES + [PREDICTION],
        categorical_columns=CATEGORICAL_FEATURES + ([LABEL] if with_label else []),
        classification=[BinaryClassification(target=LABEL, prediction_probas=PREDICTION)]
        if with_label else None)
    frame = df[cols].copy()
    for c in CATEGORICAL_FEATURES:
        frame[c] = frame[c].astype("object")
    return Dataset.from_pandas(frame, data_definition=definition)


@dataclass(frozen=True)
class PageHeader:
    """What a report page says above Evidently's content: plain text, escaped when written."""

    title: str
    lines: Sequence[str] = ()
    table: Sequence[Sequence[str]] = ()  # the first row names the columns
    notes: Sequence[str] = ()


#: Tokens of an HTML page up to its ``<body>``: comments and raw-text elements are matched whole
#: (so a ``<body`` or ``<title>`` inside a script's data is never taken for the page's own).
_PAGE_TOKENS = re.compile(
    r"<!--.*?-->|<(script|style|textarea|title)\b[^>]*>.*?</\1\s*>|<(/?)(html|head|body)\b[^>]*>",
    re.IGNORECASE | re.DOTALL)
_CELL = "padding:3px 14px 3px 0;text-align:{};border-bottom:1px solid #d0d7de"


def titled(page: str, header: PageHeader) -> str:
    """``page`` (a standalone HTML page, such as Evidently's) with ``header.title`` as its
    ``<title>`` (replacing the page's own, if any) and a header block opening its body: the
    title, then ``lines``, ``table`` and ``notes``. Inline styles only, no resource to load."""
    tags: dict[str, tuple[int, int]] = {}  # first title, <html>, <head>, </head>, <body>: span
    for m in _PAGE_TOKENS.finditer(page):
        name = (m.group(1) or (m.group(2) or "") + (m.group(3) or "")).lower()
        if name:  # not a comment
            tags.setdefault(name, m.span())
        if name == "body":
            break
    th, td = _CELL.format("left"), _CELL.format("right")
    rows = "".join(
        "<tr>" + "".join(f'<{cell} style="{th if i == 0 else td}">{escape(text)}</{cell}>'
                         for i, text in enumerate(row)) + "</tr>"
        for cell, row in (("th" if r == 0 else "td", row) for r, row in enumerate(header.table)))
    block = "".join([
        '<div id="flightline-report-header" style="margin:0;padding:14px 24px;'
        "background:#f6f8fa;border-bottom:1px solid #d0d7de;color:#1f2328;"
        "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
        'font-size:14px;line-height:1.5">',
        f'<h1 style="margin:0 0 6px;font-size:20px;font-weight:600">{escape(header.title)}</h1>',
        *(f'<p style="margin:2px 0">{escape(line)}</p>' for line in header.lines),
        (f'<table style="border-collapse:collapse;margin:8px 0;font-size:13px;'
         f'font-variant-numeric:tabular-nums">{rows}</table>' if rows else ""),
        *(f'<p style="margin:6px 0 0;color:#57606a;font-size:13px">{escape(note)}</p>'
          for note in header.notes),
        "</div>"])
    title = f"<title>{escape(header.title)}</title>"
    # the title replaces the page's own, else opens its head, else goes where the block goes
    # (without a <body> tag: after the head, else the <html> tag, else first)
    if "body" in tags:
        at = tags["body"][1]
    else:
        at = next((tags[t][1] for t in ("/head", "head", "html") if t in tags), 0)
    # (start, end, text), applied from the end of the page: where both go, the title comes first
    edits = [(at, at, block)]
    if "title" in tags:
        edits.append((*tags["title"], title))
    elif "head" in tags:
        edits.append((tags["head"][1], tags["head"][1], title))
    elif "body" in tags:
        edits.append((tags["body"][0], tags["body"][0], title))
    else:
        edits = [(at, at, title + block)]
    for start, end, text in sorted(edits, key=lambda e: e[0], reverse=True):
        page = page[:start] + text + page[end:]
    return page


def _publish(day: date, name: str, snapshot, payload: dict, settings: Settings, *,
             header: PageHeader, evidently: dict | None = None) -> tuple[str, str]:
    """Write ``<name>.html`` (Evidently's page, ``titled`` with ``header``) and ``<name>.json``
    (our figures and Evidently's own metrics: ``evidently``, else the snapshot's) into the day's
    report folder; each object is written atomically."""
    store = Store(settings)
    base = report_dir(day, settings)
    with tempfile.TemporaryDirectory(prefix="flightline-report-") as tmp:
        html = Path(tmp) / f"{name}.html"
        snapshot.save_html(str(html))
        html.write_text(titled(html.read_text(encoding="utf-8"), header), encoding="utf-8")
        store.upload_file(html, join(base, f"{name}.html"))
    body = {**payload, "evidently": evidently if evidently is not None else snapshot.dict()}
    store.write_text(join(base, f"{name}.json"), json.dumps(body, indent=1, default=str))
    return join(base, f"{name}.html"), join(base, f"{name}.json")


def _number(value, digits: int = 4, *, sign: bool = False) -> str:
    """``value`` to ``digits`` decimals (``+`` shown with ``sign``); "n/a" when there is none."""
    if value is None or isinstance(value, bool):
        return "n/a"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else f"{x:{'+' if sign else ''}.{digits}f}"


def _drift_header(kind: str, day: str, version: str, rows: str, reference_rows: int,
                  share: float, features: dict, prediction: dict,
                  extra: Sequence[str] = (), thresholds: str = "") -> PageHeader:
    """The drift page's header: its share of drifted features (the calendar columns left out),
    prediction drift as its own signal, where the thresholds come from, the rows."""
    counted = [c for c, e in features.items() if e.get("counted", e.get("threshold") is not None)]
    drifted = sorted(c for c, e in features.items() if e.get("drifted"))
    excluded = [c for c in features if c in DRIFT_EXCLUDED]
    untested = [c for c, e in features.items() if c not in excluded and c not in counted]
    if prediction:
        verdict = "drifted" if prediction.get("drifted") else "no drift"
        pred = (f"Prediction drift: {verdict} ({prediction.get('method')}, score "
                f"{_number(prediction.get('score'))}, threshold {_number(prediction.get('threshold'))}; "
                "its own signal, not part of the drift share).")
    else:
        pred = "Prediction drift: not tested."
    left_out = []
    if excluded:
        left_out.append(f"not counted: {', '.join(excluded)}, calendar columns that differ "
                        "from a reference of weeks by construction")
    if untested:
        left_out.append(f"{len(untested)} not tested: no values")
    shown = [f"{c} ({_number(features[c].get('score'), 3)} > {_number(features[c].get('threshold'), 3)})"
             for c in sorted(drifted, key=lambda c: -_ratio(features[c]))]
    return PageHeader(
        title=f"Flightline {kind} report, {day}, model {version}",
        lines=[f"Drift share {_number(share, 3)}: {len(drifted)} of {len(counted)} counted model "
               f"features drifted" + (f" ({'; '.join(left_out)})" if left_out else "") + ". "
               + pred,
               *([thresholds] if thresholds else []),
               f"{rows} against the version's reference sample ({reference_rows:,} training rows)."
               + "".join(f" {e}" for e in extra),
               *([f"Drifted: {', '.join(shown)}."] if drifted else [])])


def _ratio(entry: dict) -> float:
    """How far a column's score went past its threshold (score / threshold)."""
    score, threshold = entry.get("score"), entry.get("threshold")
    if score is None or not threshold:
        return 0.0
    return float(score) / float(threshold)


#: The quality figures both the day and the version's test days have, in the order shown.
_QUALITY_FIGURES = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC (average precision)",
                    "log_loss": "log loss", "brier": "Brier score",
                    "ece": "expected calibration error", "positive_rate": "late share"}


def _quality_header(result: QualityResult, reference_rows: int,
                    settings: Settings) -> PageHeader:
    """The quality page's header: the day's figures beside the version's test days'."""
    day, reg = result.metrics, result.registry_metrics
    keys = [k for k in _QUALITY_FIGURES if k == "roc_auc" or k in day or k in reg]
    keys += sorted(k for k in day.keys() & reg.keys()
                   if k not in _QUALITY_FIGURES and k != "rows"
                   and isinstance(day[k], int | float) and isinstance(reg[k], int | float))
    table = [("metric", "this day", "the version's test days", "difference (day - test days)")]
    for k in keys:
        a, b = day.get(k), reg.get(k)
        diff = (float(a) - float(b) if _number(a) != "n/a" and _number(b) != "n/a" else None)
        table.append((_QUALITY_FIGURES.get(k, k), _number(a), _number(b), _number(diff, sign=True)))
    test_rows = f"{reg['rows']:,}" if isinstance(reg.get("rows"), int) else "n/a"
    at = _number(day.get("threshold"), 2)
    return PageHeader(
        title=f"Flightline quality report, {result.day}, model {result.version}",
        lines=[f"{result.rows:,} labelled rows (the version's test days: {test_rows}). ROC AUC "
               f"{_number(day.get('roc_auc'))}; precision {_number(day.get('precision'))} and "
               f"recall {_number(day.get('recall'))} at P(late) >= {at}."],
        table=table,
        notes=[f"The retrain policy compares ROC AUC with the version's test days: auc_drop "
               f"(test days - this day) = {_number(result.auc_drop)}; its quality rule pools the "
               f"labelled rows of the last {settings.retrain_auc_window_days} days and asks for "
               f"a retrain at a drop of {settings.retrain_auc_drop} or more. Evidently's panels "
               f"below compare this day with the version's reference sample "
               f"({reference_rows:,} training rows), not with the test days."])


#: The Evidently metric types the drift report adds (its per-column table and its share of
#: drifted features), as the workspace's dashboard names them.
COLUMN_DRIFT_METRIC = "evidently:metric_v2:FlightlineColumnDrift"
FEATURE_DRIFT_METRIC = "evidently:metric_v2:FlightlineFeatureDrift"


@cache
def _drift_types():
    """Evidently's data drift page computed once per column, and its figures as metric results.

    ``DataDriftPreset`` computes every column's drift three times (its dataset-drift count, one
    ``ValueDrift`` per column, and the table it renders) and draws each column twice: at 100k
    rows 13 s against 1.1 s for the same tests in scipy. This preset keeps only the table (each
    column's test, score, threshold and verdict, with its distribution plots), whose drift
    entries are the same figures (checked to 5e-7): about half the time.

    Its two metrics read that one table (Evidently caches it by fingerprint, so nothing is
    computed twice) and put its figures into the snapshot's metric results, where Evidently's
    public API (``Snapshot.metric_results``) and its UI (a workspace's dashboard) read them:
    ``FlightlineColumnDrift``, a frame with one row per tested column (``feature``,
    ``column_type``, ``method``, ``score``, ``threshold``, ``drifted`` as 0/1), and
    ``FlightlineFeatureDrift``, the count and share of the model features (not the prediction)
    that drifted. Returns (preset, column metric, feature metric) types.
    """
    import pandas as pd
    from evidently.core.container import MetricContainer
    from evidently.core.metric_types import (
        CountCalculation,
        CountMetric,
        DataframeCalculation,
        DataframeMetric,
    )
    from evidently.legacy.metrics import DataDriftTable

    def table(context, columns, methods, thresholds):
        """The one legacy drift table of ``columns`` (computed once per report, then cached),
        with the given method and threshold per column (Evidently's defaults for the others)."""
        return context.get_legacy_metric(DataDriftTable(
            columns=list(columns), per_column_stattest=dict(methods) or None,
            per_column_stattest_threshold=dict(thresholds) or None), None, None)

    def frame(context, metric):
        result = table(context, metric.columns, metric.methods, metric.thresholds)[0]
        return pd.DataFrame(
            [{"feature": column, "column_type": str(m.column_type), "method": str(m.stattest_name),
              "score": float(m.drift_score), "threshold": float(m.stattest_threshold),
              "drifted": int(bool(m.drift_detected))}
             for column, m in result.drift_by_columns.items()],
            columns=["feature", "column_type", "method", "score", "threshold", "drifted"])

    class FlightlineColumnDrift(DataframeMetric):
        columns: list[str]
        methods: dict[str, str] = {}  # column -> Evidently's test name (calibrated versions)
        thresholds: dict[str, float] = {}  # column -> threshold

    class FlightlineColumnDriftCalculation(DataframeCalculation[FlightlineColumnDrift]):
        def calculate(self, context, current_data, reference_data):
            result = self.result(frame(context, self.metric))
            result.widget = []  # the preset draws the table
            return result

        def display_name(self) -> str:
            return "Drift per column"

    class FlightlineFeatureDrift(CountMetric):
        columns: list[str]  # every tested column: the table's
        features: list[str]  # those counted (the model features, not the prediction)
        methods: dict[str, str] = {}
        thresholds: dict[str, float] = {}

    class FlightlineFeatureDriftCalculation(CountCalculation[FlightlineFeatureDrift]):
        def calculate(self, context, current_data, reference_data):
            rows = frame(context, self.metric)
            rows = rows[rows["feature"].isin(self.metric.features)]
            drifted = int(rows["drifted"].sum())
            result = self.result(drifted, drifted / len(rows) if len(rows) else 0.0)
            result.widget = []
            return result

        def display_name(self) -> str:
            return "Drifted model features"

    class DriftTablePreset(MetricContainer):
        columns: list[str]
        features: list[str]
        methods: dict[str, str] = {}
        thresholds: dict[str, float] = {}

        def column_metric(self):
            return FlightlineColumnDrift(columns=self.columns, methods=self.methods,
                                         thresholds=self.thresholds)

        def generate_metrics(self, context):
            return [self.column_metric(),
                    FlightlineFeatureDrift(columns=self.columns, features=self.features,
                                           methods=self.methods, thresholds=self.thresholds)]

        def render(self, context, child_widgets=None):
            return table(context, self.columns, self.methods, self.thresholds)[1]

    return DriftTablePreset, FlightlineColumnDrift, FlightlineFeatureDrift


def _timestamp(day: date):
    """The snapshot's timestamp: the monitored day (midnight), so trends run over days."""
    from datetime import datetime

    return datetime(day.year, day.month, day.day)


def _drift(cur, ref, day: date, version: str, report: str = "drift",
           calibrated: dict | None = None):
    """Evidently's drift of ``cur`` against ``ref`` on ``day`` (``report``: its name in the
    snapshot's metadata and tags), with the version's ``calibrated`` method and threshold per
    column (None: Evidently's defaults): (snapshot, per-feature entries, prediction drift, share
    of the counted features drifted, drifted features, Evidently's table as a dict). The figures
    are read from the snapshot's metric results. The calendar columns
    (:data:`tasks.feature_contract.DRIFT_EXCLUDED`) are not tested: they differ by construction."""
    from evidently import Report

    # A column with no value on one side (a calm day has no wind gusts at all) cannot be tested;
    # it is reported as such and left out of the drift share.
    counted = drift_columns()
    tested = [c for c in counted if c in cur and c in ref and cur[c].notna().any()
              and ref[c].notna().any()]
    columns = [*tested, PREDICTION]
    cal = (calibrated or {}).get("columns", {})
    preset_type, _, _ = _drift_types()
    preset = preset_type(columns=columns, features=tested,
                         methods={c: cal[c]["method"] for c in columns if c in cal},
                         thresholds={c: float(cal[c]["threshold"]) for c in columns if c in cal})
    snapshot = Report([preset]).run(
        current_data=_dataset(cur, False), reference_data=_dataset(ref, False),
        timestamp=_timestamp(day), metadata={"day": day.isoformat(), "report": report,
                                             "model_version": version}, tags=[report])
    table = snapshot.metric_results[preset.column_metric().metric_id].value
    features: dict = {c: {"method": EXCLUDED_NOTE, "score": None, "threshold": None,
                          "drifted": False, "counted": False}
                      for c in MODEL_FEATURES if c in DRIFT_EXCLUDED}
    features |= {c: {"method": "not tested: no values", "score": None, "threshold": None,
                     "drifted": False, "counted": False} for c in counted if c not in tested}
    prediction: dict = {}
    columns_out = {}
    for row in table.itertuples(index=False):
        entry = {"method": row.method, "score": round(float(row.score), 6),
                 "threshold": float(row.threshold), "drifted": bool(row.drifted),
                 "calibrated": row.feature in preset.thresholds}
        columns_out[row.feature] = {**entry, "column_type": row.column_type}
        if row.feature == PREDICTION:
            prediction = entry
        else:
            features[row.feature] = {**entry, "counted": True}
    features = {c: features[c] for c in MODEL_FEATURES if c in features}
    drifted = sorted(c for c, e in features.items() if e["drifted"])
    evidently = {"metrics": [{"metric": "DataDriftTable", "columns": columns_out,
                              "number_of_columns": len(table),
                              "number_of_drifted_columns": int(table["drifted"].sum())}]}
    share = round(len(drifted) / len(tested), 4) if tested else 0.0
    return snapshot, features, prediction, share, drifted, evidently


def _thresholds_note(version: str, calibrated: dict | None) -> dict:
    """Where the report's thresholds come from (the result's ``thresholds``)."""
    if calibrated is None:
        return {"source": "evidently defaults",
                "note": f"Thresholds: Evidently's defaults (0.1 on each distance): model version "
                        f"{version} has no calibrated thresholds (it was trained before versions "
                        f"kept them; retrain it to calibrate)."}
    days = calibrated.get("days", [])
    first, last = (days[0], days[-1]) if days else ("n/a", "n/a")
    return {"source": "calibrated", "quantile": calibrated.get("quantile"), "days": len(days),
            "first_day": first, "last_day": last,
            "note": f"Thresholds: calibrated per column on the model's {len(days)} training days "
                    f"({first} to {last}): the {calibrated.get('quantile')} quantile of each "
                    f"column's score on those days against the reference sample."}


def drift_report(scored: Scored, settings: Settings, *, current=None) -> DriftResult:
    """Data and prediction drift of the scored day against the version's reference sample
    (``current``: a frame to use instead of the scored day, for tests and benchmarks), and of
    the served rows when the prediction log has enough for the day (``drift_served``), with the
    version's calibrated thresholds (Evidently's defaults for a version without them)."""
    from tasks.monitoring.calibration import read_thresholds
    from tasks.monitoring.scoring import served_frame
    from tasks.training.reference import read_reference

    day = date.fromisoformat(scored.day)
    cur = read_scored(day, settings) if current is None else current
    ref = read_reference(scored.version, settings)
    calibrated = read_thresholds(scored.version, settings)
    thresholds = _thresholds_note(scored.version, calibrated)
    snapshot, features, prediction, share, drifted, evidently = _drift(
        cur, ref, day, scored.version, calibrated=calibrated)
    served: dict = {}
    if scored.served_rows >= SERVED_MIN_ROWS:
        rows = served_frame(day, settings)
        s_snap, s_features, s_prediction, s_share, s_drifted, s_evidently = _drift(
            rows, ref, day, scored.version, "drift_served", calibrated=calibrated)
        served = {**scored.served, "drift_share": s_share, "drifted": s_drifted,
                  "prediction_drift": s_prediction, "features": s_features}
        skew = (f"Skew: {served.get('skewed')} of the {served.get('compared')} flights this "
                f"version scored both ways (served and batch) disagree.")
        header = _drift_header("served-rows drift", scored.day, scored.version,
                               f"{len(rows):,} served rows of the day", len(ref), s_share,
                               s_features, s_prediction, [skew], thresholds["note"])
        served["html"], served["json"] = _publish(day, "drift_served", s_snap, served, settings,
                                                  header=header, evidently=s_evidently)
    elif scored.served_rows:
        served = {**scored.served, "drift_share": None,
                  "note": f"{scored.served_rows} served rows: fewer than {SERVED_MIN_ROWS}, no drift report"}
    result = DriftResult(day=scored.day, version=scored.version, rows=len(cur),
                         reference_rows=len(ref), drift_share=share, drifted=drifted,
                         prediction_drift=prediction, features=features, served=served,
                         thresholds=thresholds, excluded=list(DRIFT_EXCLUDED))
    header = _drift_header("drift", scored.day, scored.version, f"{len(cur):,} rows of the day",
                           len(ref), share, features, prediction, (), thresholds["note"])
    result.html, result.json = _publish(day, "drift", snapshot, result.to_dict(), settings,
                                        header=header, evidently=evidently)
    add_snapshot(snapshot, "drift", day, settings)
    return result


def quality_report(scored: Scored, settings: Settings, *, current=None) -> QualityResult:
    """The released model's classification quality on the day's labels, beside its test days."""
    import numpy as np
    from evidently import Report
    from evidently.presets import ClassificationPreset

    from tasks.training.evaluate import metrics as quality_metrics
    from tasks.training.reference import read_reference

    day = date.fromisoformat(scored.day)
    cur = read_scored(day, settings) if current is None else current
    y, p = cur[LABEL].to_numpy().astype(int), cur[PREDICTION].to_numpy()
    m = quality_metrics(y, p)
    late = p >= THRESHOLD
    m |= {"threshold": THRESHOLD,
          "precision": float((y[late] == 1).mean()) if late.any() else None,
          "recall": float(late[y == 1].mean()) if (y == 1).any() else None,
          "predicted_late_rate": float(np.mean(late))}
    card = registry.show(scored.version, settings)
    reg = card.get("metrics", {})
    ref = read_reference(scored.version, settings)
    snapshot = Report([ClassificationPreset()]).run(
        current_data=_dataset(cur, True), reference_data=_dataset(ref, True),
        timestamp=_timestamp(day), metadata={"day": scored.day, "report": "quality",
                                             "model_version": scored.version}, tags=["quality"])
    drop = round(reg["roc_auc"] - m["roc_auc"], 6) if "roc_auc" in reg else None
    result = QualityResult(day=scored.day, version=scored.version, rows=len(cur), metrics=m,
                           registry_metrics=reg, auc_drop=drop)
    result.html, result.json = _publish(day, "quality", snapshot, result.to_dict(), settings,
                                        header=_quality_header(result, len(ref), settings))
    add_snapshot(snapshot, "quality", day, settings)
    return result
