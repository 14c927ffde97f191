"""The retrain policy: when the world has moved for long enough, ask for one retraining.

A retrain is requested when either rule holds:

- **drift**: the drift share (the counted features past the version's calibrated thresholds,
  :mod:`tasks.monitoring.reports`) reached ``retrain_drift_share`` on each of the K =
  ``retrain_consecutive_days`` calendar days ending at the day (a day with no row, because its
  data failed a gate or it was not monitored, breaks the streak);
- **quality**: the model's ROC AUC on the labelled rows of the W = ``retrain_auc_window_days``
  days ending at the day, taken together, fell ``retrain_auc_drop`` or more below its test-day
  AUC. All W days must have been scored by the same model version (a new model is judged on
  its own days). One day's 600-1,000 flights give an AUC too noisy to act on (over 2013 a
  single day's AUC sat 0.067 below its test days at the median). Pooled over 3 days, 52 of the
  285 days judged still fell 0.08 below and the rule asked after nearly every cool-down of the
  summer; over 7 days, 15 of 245 (``bench/policy_replay.py``, on the March-December backfill's
  scores).

unless an earlier request lies within ``retrain_cooldown_days``. Prediction drift is stated in
every reason, as a signal of its own: neither rule counts it. A day whose data failed
its gate is never scored, so it never requests one. A day monitored again keeps its request
(it is not made twice). The rules are judged in day order whatever order the days are
monitored in: a day recorded late is judged, and so is every later day recorded before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tasks.monitoring import metrics
from tasks.monitoring.reports import DriftResult, QualityResult
from tasks.results import Result
from tasks.settings import Settings


@dataclass
class RetrainDecision(Result):
    day: str
    version: str
    breach: bool
    streak: int  # consecutive breaching days ending at ``day``
    retrain: bool
    reason: str
    repeat: bool = False  # this day already requested it on an earlier run: not sent again
    #: the later day whose request this day's arrival made (it completed that day's streak or
    #: window); None when the request, if any, is this day's own
    request_day: str | None = None


def window_auc(day: date, version: str, settings: Settings) -> float | None:
    """ROC AUC of ``version``'s scores over the W days ending at ``day``, their labelled rows
    pooled; None unless each of the W days was scored by that version."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from tasks.feature_contract import LABEL
    from tasks.monitoring.scoring import PREDICTION, read_scored

    frames = []
    for i in range(settings.retrain_auc_window_days):
        try:
            df = read_scored(day - timedelta(days=i), settings)
        except LookupError:
            return None
        if set(df["model_version"]) != {version}:
            return None
        frames.append(df[[LABEL, PREDICTION]])
    rows = pd.concat(frames, ignore_index=True).dropna()
    if rows[LABEL].nunique() < 2:
        return None
    return float(roc_auc_score(rows[LABEL].astype(int), rows[PREDICTION]))


def breach_reasons(drift_share: float, window_drop: float | None,
                   settings: Settings) -> tuple[str | None, str | None]:
    """(the drift breach, the quality breach): why each rule breached the day, or None."""
    drift = (f"drift share {drift_share:.2f} >= {settings.retrain_drift_share}"
             if drift_share >= settings.retrain_drift_share else None)
    quality = (f"ROC AUC over the last {settings.retrain_auc_window_days} days "
               f"{window_drop:.3f} below its test days (>= {settings.retrain_auc_drop})"
               if window_drop is not None and window_drop >= settings.retrain_auc_drop else None)
    return drift, quality


def decide_retrain(drift: DriftResult, quality: QualityResult | None,
                   settings: Settings) -> RetrainDecision:
    """Record the day's row in the metrics table and decide (see the module doc).

    Days may be monitored out of order (a backfill publishes them as its runs finish): the
    policy is judged over the table in day order, from this day to the newest day recorded, so
    a day that arrives late completes the streak or the AUC window of the days after it, and a
    request those days now make is made by this run (``request_day`` names the day)."""
    day = date.fromisoformat(drift.day)
    registry_auc = quality.registry_metrics.get("roc_auc") if quality else None
    table = metrics.read_metrics(settings)
    before = metrics.day_row(table, day)
    q = quality.metrics if quality else {}
    row = {
        "day": day, "model_version": drift.version, "rows": drift.rows,
        "drift_share": drift.drift_share, "drifted_features": len(drift.drifted),
        "drifted": ",".join(drift.drifted),
        "prediction_drift_score": drift.prediction_drift.get("score"),
        "prediction_drift_threshold": drift.prediction_drift.get("threshold"),
        "prediction_drifted": drift.prediction_drift.get("drifted"),
        "thresholds": drift.thresholds.get("source"),
        "roc_auc": q.get("roc_auc"), "registry_auc": registry_auc,
        "auc_drop": quality.auc_drop if quality else None, "ece": q.get("ece"),
        "served_rows": drift.served.get("rows", 0),
        "served_drift_share": drift.served.get("drift_share"),
        "served_skewed": drift.served.get("skewed"),
        "retrain": bool(before is not None and before["retrain"]),
        "retrain_reason": before["retrain_reason"] if before is not None else None,
    }
    table = metrics.with_row(table, row)
    judged = {}
    reach = timedelta(days=settings.retrain_auc_window_days)  # windows that hold this day
    for d in sorted({d for d in table["day"] if d >= day}):
        table, judged[d] = _judge(table, d, settings, window=d - day < reach)
    metrics.write(table, settings)
    mine = judged[day]
    later = [(d, j) for d, j in judged.items() if d > day and j.retrain]
    if mine.retrain or not later:
        return mine
    d, j = later[0]  # the first later day this one's arrival made request (the cool-down
    #                  stops the ones after it from requesting as well)
    return RetrainDecision(day=mine.day, version=mine.version, breach=mine.breach,
                           streak=mine.streak, retrain=True, request_day=d.isoformat(),
                           reason=f"{d} judged again now that {day} is recorded: {j.reason}")


def _judge(table, day: date, settings: Settings, *, window: bool = True):
    """The policy's verdict on one recorded day, given the rows before it; the table with the
    day's row updated (its window AUC, breach and retrain flags). ``window=False`` keeps the
    row's recorded window AUC (the changed day is not in its window)."""
    row = metrics.day_row(table, day)
    version = row["model_version"]
    registry_auc = row["registry_auc"]
    if window:
        has_auc = registry_auc is not None and not _isna(registry_auc)
        pooled = window_auc(day, version, settings) if has_auc else None
    else:
        pooled = None if _isna(row["window_auc"]) else float(row["window_auc"])
    window_drop = round(float(registry_auc) - pooled, 6) if pooled is not None else None
    drift_why, quality_why = breach_reasons(float(row["drift_share"]), window_drop, settings)
    k, cool = settings.retrain_consecutive_days, settings.retrain_cooldown_days
    streak = 0
    if drift_why:
        streak = 1
        d = day - timedelta(days=1)
        while streak < k:
            prev = metrics.day_row(table, d)
            if prev is None or not _drift_breached(prev, settings):
                break
            streak += 1
            d -= timedelta(days=1)
    earlier = [r for r in table[(table["retrain"] == True) & (table["day"] < day)]["day"]]  # noqa: E712
    last = max(earlier) if earlier else None
    repeat = bool(row["retrain"])  # requested on an earlier run: a request is never taken back
    why = " and ".join(w for w in (drift_why if streak >= k else None, quality_why) if w)
    if not drift_why and not quality_why:
        retrain, reason = False, (f"no breach (drift share {float(row['drift_share']):.2f}"
                                  + (f", {settings.retrain_auc_window_days}-day ROC AUC {pooled:.3f}"
                                     if pooled is not None else "")
                                  + ")")
    elif not why:
        retrain, reason = False, f"breach {streak} of {k} consecutive days: {drift_why}"
    elif last is not None and (day - last).days <= cool:
        retrain, reason = False, (f"{why}, but a retrain was requested on {last}: cool-down of "
                                  f"{cool} days until {last + timedelta(days=cool)}")
    else:
        retrain, reason = True, (f"{k} consecutive breaching days up to {day}: {why}"
                                 if streak >= k else f"up to {day}: {why}")
    reason += f"; {prediction_note(row)}"
    if repeat:
        reason = row["retrain_reason"] or reason
    table = metrics.with_row(table, dict(row) | {
        "window_auc": pooled, "window_auc_drop": window_drop, "drift_breach": bool(drift_why),
        "breach": bool(drift_why or quality_why), "retrain": retrain or repeat,
        "retrain_reason": reason if (retrain or repeat) else None}, keep_time=not retrain)
    return table, RetrainDecision(day=day.isoformat(), version=version,
                                  breach=bool(drift_why or quality_why), streak=streak,
                                  retrain=retrain and not repeat, reason=reason, repeat=repeat)


def prediction_note(row) -> str:
    """Prediction drift as the reason states it: its own signal, beside the rules (neither
    rule counts it; a shift of the model's scores with no feature drift says the model, not
    the world, changed, and the quality rule judges what it costs)."""
    score = row.get("prediction_drift_score")
    if score is None or _isna(score):
        return "prediction drift not tested"
    threshold = row.get("prediction_drift_threshold")
    drifted = row.get("prediction_drifted")
    verdict = "drifted" if drifted is not None and not _isna(drifted) and bool(drifted) else "no drift"
    limit = "" if threshold is None or _isna(threshold) else f" vs threshold {float(threshold):.3f}"
    return f"prediction drift: {verdict} (score {float(score):.3f}{limit})"


def _isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _drift_breached(row, settings: Settings) -> bool:
    """Whether a recorded day breached the drift rule (rows recorded before the quality rule
    pooled its days carry only ``breach``)."""
    import pandas as pd

    flag = row.get("drift_breach")
    if flag is None or pd.isna(flag):
        return bool(row["breach"]) and float(row["drift_share"]) >= settings.retrain_drift_share
    return bool(flag)
