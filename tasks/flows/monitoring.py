"""The monitoring flow: one published day, scored, reported on, and the retrain decision.

The released model (else the champion) scores the day's features; Evidently reports drift
(per feature, drift share, prediction drift) and quality (ROC AUC, precision and recall,
calibration on the labels); the policy decides on a retrain (K breaching days, cool-down), and
the DAG's last task turns a request into the retrain Asset event. The steps, as :data:`FLOW`
declares them:

"""

from __future__ import annotations

from datetime import date

from tasks.flows.steps import Flow, Pod, step
from tasks.monitoring.policy import RetrainDecision, decide_retrain
from tasks.monitoring.reports import drift_report, quality_report
from tasks.monitoring.scoring import score_day
from tasks.settings import Settings

__all__ = ["FLOW", "decide_retrain", "drift_report", "quality_report", "request_retrain",
           "run_monitoring", "score_day"]


def request_retrain(decision: RetrainDecision, settings: Settings) -> dict | None:
    """What the retrain request carries (the Asset event's extra), or None when there is none."""
    if not decision.retrain:
        return None
    return {"day": decision.request_day or decision.day, "model_version": decision.version,
            "reason": decision.reason}


FLOW = Flow("monitoring", dag="flightline_monitoring", steps=[
    step(score_day, "the released model (else the champion) scores the day's features",
         pod=Pod(cpu="1", memory="2Gi"), writes=("predictions",)),
    step(drift_report, "Evidently: drift per feature, drift share, prediction drift; its "
         "snapshot into the Evidently workspace", pod=Pod(cpu="1", memory="3Gi"),
         writes=("reports", "evidently")),
    step(quality_report, "Evidently: ROC AUC, precision and recall, calibration; its snapshot "
         "into the Evidently workspace", pod=Pod(cpu="1", memory="2Gi"),
         writes=("reports", "evidently")),
    step(decide_retrain, "the metrics table's row; the policy (K breaching days, cool-down)",
         writes=("reports",)),
    step(request_retrain, "the retrain request (the DAG emits it as an Asset event)"),
])
__doc__ += FLOW.table()


def run_monitoring(day: date, settings: Settings) -> dict:
    """Every step of :data:`FLOW` for one day in one process (the ``flightline monitor`` CLI)."""
    r = FLOW.run(settings, day=day)
    return {"scored": r["score_day"].to_dict(),
            "drift": {k: v for k, v in r["drift_report"].to_dict().items() if k != "features"},
            "quality": r["quality_report"].to_dict(), "decision": r["decide_retrain"].to_dict(),
            "request": r["request_retrain"]}
