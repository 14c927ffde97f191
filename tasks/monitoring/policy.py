"""The retrain policy: when the world has moved for long enough, ask for one retraining.

A day **breaches** when its drift share reaches ``retrain_drift_share`` or the released model's
ROC AUC on its labels falls ``retrain_auc_drop`` or more below its test-day AUC. A retrain is
requested when the day and the ``retrain_consecutive_days - 1`` calendar days before it all
breached (a day with no row, because its data failed a gate or it was not monitored, breaks the
streak), unless an earlier request lies within ``retrain_cooldown_days``. A day whose data failed
its gate is never scored, so it never requests one. A day monitored again keeps its request
(it is not made twice).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

from tasks.monitoring import metrics
from tasks.monitoring.reports import DriftResult, QualityResult
from tasks.settings import Settings


@dataclass
class RetrainDecision:
    day: str
    version: str
    breach: bool
    streak: int  # consecutive breaching days ending at ``day``
    retrain: bool
    reason: str
    repeat: bool = False  # this day already requested it on an earlier run: not sent again

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RetrainDecision:
        return cls(**d)


def breach_reason(drift_share: float, auc_drop: float | None, settings: Settings) -> str | None:
    why = []
    if drift_share >= settings.retrain_drift_share:
        why.append(f"drift share {drift_share:.2f} >= {settings.retrain_drift_share}")
    if auc_drop is not None and auc_drop >= settings.retrain_auc_drop:
        why.append(f"ROC AUC {auc_drop:.3f} below its test days (>= {settings.retrain_auc_drop})")
    return " and ".join(why) or None


def decide_retrain(drift: DriftResult, quality: QualityResult | None,
                   settings: Settings) -> RetrainDecision:
    """Record the day's row in the metrics table and decide (see the module doc)."""
    day = date.fromisoformat(drift.day)
    auc_drop = quality.auc_drop if quality else None
    why = breach_reason(drift.drift_share, auc_drop, settings)
    table = metrics.read_metrics(settings)
    before = metrics.day_row(table, day)
    k, cool = settings.retrain_consecutive_days, settings.retrain_cooldown_days
    streak = 0
    if why:
        streak = 1
        d = day - timedelta(days=1)
        while streak < k:
            row = metrics.day_row(table, d)
            if row is None or not bool(row["breach"]):
                break
            streak += 1
            d -= timedelta(days=1)
    earlier = [r for r in table[(table["retrain"] == True) & (table["day"] < day)]["day"]]  # noqa: E712
    last = max(earlier) if earlier else None
    repeat = before is not None and bool(before["retrain"])
    if not why:
        retrain, reason = False, f"no breach (drift share {drift.drift_share:.2f})"
    elif streak < k:
        retrain, reason = False, f"breach {streak} of {k} consecutive days: {why}"
    elif last is not None and (day - last).days <= cool:
        retrain, reason = False, (f"breach {streak} days running ({why}), but a retrain was "
                                  f"requested on {last}: cool-down of {cool} days until "
                                  f"{last + timedelta(days=cool)}")
    else:
        retrain, reason = True, f"{k} consecutive breaching days up to {day}: {why}"
    q = quality.metrics if quality else {}
    metrics.upsert({
        "day": day, "model_version": drift.version, "rows": drift.rows,
        "drift_share": drift.drift_share, "drifted_features": len(drift.drifted),
        "drifted": ",".join(drift.drifted),
        "prediction_drift_score": drift.prediction_drift.get("score"),
        "prediction_drifted": drift.prediction_drift.get("drifted"),
        "roc_auc": q.get("roc_auc"), "registry_auc": (quality.registry_metrics.get("roc_auc")
                                                      if quality else None),
        "auc_drop": auc_drop, "ece": q.get("ece"), "breach": bool(why),
        "retrain": retrain or repeat, "retrain_reason": reason if retrain else None,
    }, settings)
    return RetrainDecision(day=drift.day, version=drift.version, breach=bool(why), streak=streak,
                           retrain=retrain and not repeat, reason=reason, repeat=repeat)
