"""
### flightline_monitoring: the released model's day, Evidently reports, the retrain decision

One task per step of the monitoring flow (`tasks/flows/monitoring.py`), each handed the result
of the step before. Runs once for each day the daily DAG publishes: the `flightline_features` Asset's events
are partitioned by day, and each partition (day) gets its own run, named by its partition key,
however close together a backfill publishes them. Runs go one at a time; the policy judges the
days in day order whatever order they arrive in. A day published again (a rerun) is monitored
again and replaces its own figures; its request, if it made one, is not made twice. To
monitor a past day by hand, trigger the DAG with its `day` Param.

1. **score_day**: the released model (else the champion) scores the day's published features
   into `predictions/scored/dt=.../`; skipped when the day has no published features (its data
   failed a gate) or there is no model yet. The serving prediction log's rows for the day are
   matched to them (served and batch probabilities of a flight by one model must agree).
2. **drift_report** and **quality_report**: Evidently reports against the model version's
   reference sample, each with a **Report** button: drift per feature (the test used, its
   score and the version's calibrated threshold), the share of drifted features (calendar
   columns not counted) and prediction drift, apart; ROC AUC, precision and recall at
   0.5 and calibration on the day's labels, beside the version's test-day figures. Served rows,
   when there are some, get a drift report of their own (`drift_served.html`).
3. **decide_retrain**: the day's row in the metrics table, then the policy: a retrain is
   requested when the drift share stayed over its threshold for `FLIGHTLINE_RETRAIN_CONSECUTIVE_DAYS`
   days, or the ROC AUC of those days' rows together fell too far; then none for
   `FLIGHTLINE_RETRAIN_COOLDOWN_DAYS`.
4. **request_retrain**: emits the `flightline_retrain_request` Asset event (the reason in its
   extra) that the training DAG runs on, and notifies; skipped when there is no request.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, PartitionedAssetTimetable, dag, task
from flightline_airflow import (
    DAG_TAGS_BASE,
    FEATURES_ASSET,
    RETRAIN_ASSET,
    default_args,
    event_day,
)
from flightline_airflow.notifiers import retrain_notifier
from flightline_airflow.operators import MonitoringReportOperator
from flightline_airflow.step_tasks import step_task

from tasks.settings import Settings

SETTINGS = Settings.from_env()  # environment only: which steps run as Kubernetes pods


@dag(
    dag_id="flightline_monitoring",
    schedule=PartitionedAssetTimetable(assets=FEATURES_ASSET),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # days in order: the policy counts consecutive days
    default_args=default_args(),
    tags=[*DAG_TAGS_BASE, "monitoring"],
    doc_md=__doc__,
    params={
        "day": Param(None, type=["null", "string"], format="date", title="Day to monitor",
                     description="YYYY-MM-DD. Empty: the run's partition (the published day), else the logical date."),
    },
)
def flightline_monitoring():
    @task
    def score_day(**context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from tasks.flows import monitoring

        day = event_day(context)
        try:
            scored = monitoring.score_day(day, Settings.from_env())
        except LookupError as exc:  # no published features (a failed gate), or no model yet
            from flightline_airflow.run_notes import write_run_note

            write_run_note(context, f"{day}: not monitored: {exc}")  # the run says why it skipped
            raise AirflowSkipException(f"{day}: not monitored: {exc}") from exc
        print(f"{day}: {scored.rows} rows scored by {scored.version} ({scored.model_source}); "
              f"{scored.served_rows} served rows logged")
        if scored.served.get("skewed"):
            print(f"WARNING: {scored.served['skewed']} of {scored.served['compared']} flights served "
                  f"and batch-scored by {scored.version} disagree (largest difference "
                  f"{scored.served['max_abs_diff']:.3g}): training/serving skew, e.g. "
                  f"{scored.served['skewed_examples'][:2]}")
        return scored.to_dict()

    @task
    def decide_retrain(drift: dict, quality: dict | None, **context) -> dict:
        from flightline_airflow.run_notes import write_run_note

        from tasks.flows import monitoring
        from tasks.monitoring.reports import DriftResult, QualityResult

        decision = monitoring.decide_retrain(
            DriftResult.from_dict(drift), QualityResult.from_dict(quality) if quality else None,
            Settings.from_env())
        verdict = "RETRAIN requested" if decision.retrain else "no retrain"
        print(f"{decision.day}: {verdict}: {decision.reason}")
        write_run_note(context, f"{decision.day}: drift share {drift['drift_share']:.2f}"
                                + (f", ROC AUC {quality['metrics']['roc_auc']:.3f}" if quality else "")
                                + f"; {verdict}: {decision.reason}")
        return decision.to_dict()

    @task(outlets=[RETRAIN_ASSET], on_success_callback=retrain_notifier())
    def request_retrain(decision: dict, **context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from tasks.flows import monitoring
        from tasks.monitoring.policy import RetrainDecision

        request = monitoring.request_retrain(RetrainDecision.from_dict(decision), Settings.from_env())
        if request is None:
            raise AirflowSkipException(f"no retrain request: {decision['reason']}")
        context["outlet_events"][RETRAIN_ASSET].extra = request
        return request

    def _day(context, inputs, capacity) -> dict:
        return {"inputs": [event_day(context).isoformat()]}

    # Scoring and the reports in the worker, or as pods when FLIGHTLINE_K8S_STEPS names them (a
    # day without features or model, exit 3, skips as it does here).
    scored = step_task("score_day", score_day, [], prepare=_day, settings=SETTINGS,
                       skip_on_exit_code=3)
    drift = step_task("drift_report", lambda: MonitoringReportOperator(
        task_id="drift_report", report="drift", data=scored).output, [scored], report="drift",
        settings=SETTINGS)
    quality = step_task("quality_report", lambda: MonitoringReportOperator(
        task_id="quality_report", report="quality", data=scored).output, [scored],
        report="quality", settings=SETTINGS)
    request_retrain(decide_retrain(drift, quality))


flightline_monitoring()
