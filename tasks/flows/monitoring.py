"""The monitoring flow: one published day, scored, reported on, and the retrain decision.

=================  ======================  ===============  =====================================
task / step        takes                   returns          does
=================  ======================  ===============  =====================================
score_day          day                     Scored           the released model (else the
                                                            champion) scores the day's features
drift_report       Scored                  DriftResult      Evidently: drift per feature, drift
                                                            share, prediction drift
quality_report     Scored                  QualityResult    Evidently: ROC AUC, precision and
                                                            recall, calibration on the labels
decide_retrain     DriftResult,            RetrainDecision  the metrics table's row; the policy
                   QualityResult                            (K breaching days, cool-down)
request_retrain    RetrainDecision         the request      the retrain Asset event (DAG only)
=================  ======================  ===============  =====================================
"""

from __future__ import annotations

from datetime import date

from tasks.monitoring.policy import RetrainDecision, decide_retrain
from tasks.monitoring.reports import drift_report, quality_report
from tasks.monitoring.scoring import score_day
from tasks.settings import Settings

__all__ = ["STEPS", "decide_retrain", "drift_report", "quality_report", "request_retrain",
           "run_monitoring", "score_day"]


def request_retrain(decision: RetrainDecision, settings: Settings) -> dict | None:
    """What the retrain request carries (the Asset event's extra), or None when there is none."""
    if not decision.retrain:
        return None
    return {"day": decision.day, "model_version": decision.version, "reason": decision.reason}


STEPS = {"score_day": score_day, "drift_report": drift_report, "quality_report": quality_report,
         "decide_retrain": decide_retrain, "request_retrain": request_retrain}


def run_monitoring(day: date, settings: Settings) -> dict:
    """Every step for one day in one process (the ``flightline monitor`` CLI)."""
    scored = score_day(day, settings)
    drift = drift_report(scored, settings)
    quality = quality_report(scored, settings)
    decision = decide_retrain(drift, quality, settings)
    return {"scored": scored.to_dict(),
            "drift": {k: v for k, v in drift.to_dict().items() if k != "features"},
            "quality": quality.to_dict(), "decision": decision.to_dict(),
            "request": request_retrain(decision, settings)}
