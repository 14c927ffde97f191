"""Evidently 0.7 reports for one scored day, against the model version's reference sample.

- **drift**: data drift per model feature (Evidently picks the test by column type and sample
  size: Wasserstein distance or Kolmogorov-Smirnov for numbers, Jensen-Shannon distance or
  chi-square for categories; each column's method, score and threshold are kept), the share of
  drifted features, and prediction drift (the model's scores against its scores on the
  reference);
- **quality**: the day's classification quality from its labels (a day's arrivals are known by
  the time its features are published): ROC AUC, precision and recall at the threshold
  (``THRESHOLD``), calibration (expected calibration error), beside the version's test-day
  figures from the registry.

Each writes ``reports/monitoring/dt=<day>/<report>.html`` and ``.json``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from tasks.feature_contract import CATEGORICAL_FEATURES, LABEL, MODEL_FEATURES, NUMERIC_FEATURES
from tasks.monitoring.scoring import PREDICTION, Scored, read_scored
from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store, join
from tasks.training import registry

#: The decision threshold on P(late) that precision and recall are measured at.
THRESHOLD = 0.5
#: Served rows a day needs before the production view gets its own drift report.
SERVED_MIN_ROWS = 30


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
    drift_share: float  # share of the tested model features that drifted
    drifted: list[str]
    prediction_drift: dict  # method, score, threshold, drifted
    features: dict = field(default_factory=dict)  # column -> method, score, threshold, drifted
    html: str = ""
    json: str = ""
    #: The production view (the serving prediction log's rows for the day), when there are
    #: enough: rows, drift_share, drifted, prediction_drift, html, json, and the skew check
    #: against the batch scores (``tasks.monitoring.scoring.served_summary``).
    served: dict = field(default_factory=dict)


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


def _publish(day: date, name: str, snapshot, payload: dict, settings: Settings, *,
             evidently: dict | None = None) -> tuple[str, str]:
    """Write ``<name>.html`` (Evidently's page) and ``<name>.json`` (our figures and Evidently's
    own metrics: ``evidently``, else the snapshot's) into the day's report folder; each object
    is written atomically."""
    store = Store(settings)
    base = report_dir(day, settings)
    with tempfile.TemporaryDirectory(prefix="flightline-report-") as tmp:
        html = Path(tmp) / f"{name}.html"
        snapshot.save_html(str(html))
        store.upload_file(html, join(base, f"{name}.html"))
    body = {**payload, "evidently": evidently if evidently is not None else snapshot.dict()}
    store.write_text(join(base, f"{name}.json"), json.dumps(body, indent=1, default=str))
    return join(base, f"{name}.html"), join(base, f"{name}.json")


@cache
def _drift_table_preset():
    """Evidently's data drift page computed once per column.

    ``DataDriftPreset`` computes every column's drift three times (its dataset-drift count, one
    ``ValueDrift`` per column, and the table it renders) and draws each column twice: at 100k
    rows 13 s against 1.1 s for the same tests in scipy. This preset keeps only the table (each
    column's test, score, threshold and verdict, with its distribution plots), whose drift
    entries are the same figures (checked to 5e-7): about half the time.
    """
    from evidently.legacy.metrics import DataDriftTable
    from evidently.presets import DataDriftPreset

    class DriftTablePreset(DataDriftPreset):
        def generate_metrics(self, context):
            return []

        def table(self) -> DataDriftTable:
            return DataDriftTable(columns=self.columns)

        def render(self, context, child_widgets=None):
            return context.get_legacy_metric(self.table(), None, None)[1]

    return DriftTablePreset


def _drift(cur, ref, settings: Settings):
    """Evidently's drift of ``cur`` against ``ref``: (snapshot, per-feature entries, prediction
    drift, share of tested features drifted, drifted features, Evidently's table as a dict)."""
    from evidently import Report

    # A column with no value on one side (a calm day has no wind gusts at all) cannot be tested;
    # it is reported as such and left out of the drift share.
    tested = [c for c in MODEL_FEATURES if cur[c].notna().any() and ref[c].notna().any()]
    preset = _drift_table_preset()(columns=[*tested, PREDICTION])
    snapshot = Report([preset]).run(current_data=_dataset(cur, False), reference_data=_dataset(ref, False))
    table = snapshot._context.get_legacy_metric(preset.table(), None, None)[0]  # computed: cached
    features: dict = {c: {"method": "not tested: no values", "score": None, "threshold": None,
                          "drifted": False} for c in MODEL_FEATURES if c not in tested}
    prediction: dict = {}
    columns = {}
    for column, m in table.drift_by_columns.items():
        entry = {"method": m.stattest_name, "score": round(float(m.drift_score), 6),
                 "threshold": float(m.stattest_threshold), "drifted": bool(m.drift_detected)}
        columns[column] = {**entry, "column_type": m.column_type}
        if column == PREDICTION:
            prediction = entry
        else:
            features[column] = entry
    drifted = sorted(c for c, e in features.items() if e["drifted"])
    evidently = {"metrics": [{"metric": "DataDriftTable", "columns": columns,
                              "number_of_columns": table.number_of_columns,
                              "number_of_drifted_columns": table.number_of_drifted_columns}]}
    return snapshot, features, prediction, round(len(drifted) / len(tested), 4), drifted, evidently


def drift_report(scored: Scored, settings: Settings, *, current=None) -> DriftResult:
    """Data and prediction drift of the scored day against the version's reference sample
    (``current``: a frame to use instead of the scored day, for tests and benchmarks), and of
    the served rows when the prediction log has enough for the day (``drift_served``)."""
    from tasks.monitoring.scoring import served_frame
    from tasks.training.reference import read_reference

    day = date.fromisoformat(scored.day)
    cur = read_scored(day, settings) if current is None else current
    ref = read_reference(scored.version, settings)
    snapshot, features, prediction, share, drifted, evidently = _drift(cur, ref, settings)
    served: dict = {}
    if scored.served_rows >= SERVED_MIN_ROWS:
        rows = served_frame(day, settings)
        s_snap, s_features, s_prediction, s_share, s_drifted, s_evidently = _drift(rows, ref, settings)
        served = {**scored.served, "drift_share": s_share, "drifted": s_drifted,
                  "prediction_drift": s_prediction, "features": s_features}
        served["html"], served["json"] = _publish(day, "drift_served", s_snap, served, settings,
                                                  evidently=s_evidently)
    elif scored.served_rows:
        served = {**scored.served, "drift_share": None,
                  "note": f"{scored.served_rows} served rows: fewer than {SERVED_MIN_ROWS}, no drift report"}
    result = DriftResult(day=scored.day, version=scored.version, rows=len(cur),
                         reference_rows=len(ref), drift_share=share, drifted=drifted,
                         prediction_drift=prediction, features=features, served=served)
    result.html, result.json = _publish(day, "drift", snapshot, result.to_dict(), settings,
                                        evidently=evidently)
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
    snapshot = Report([ClassificationPreset()]).run(current_data=_dataset(cur, True),
                                                    reference_data=_dataset(ref, True))
    drop = round(reg["roc_auc"] - m["roc_auc"], 6) if "roc_auc" in reg else None
    result = QualityResult(day=scored.day, version=scored.version, rows=len(cur), metrics=m,
                           registry_metrics=reg, auc_drop=drop)
    result.html, result.json = _publish(day, "quality", snapshot, result.to_dict(), settings)
    return result
