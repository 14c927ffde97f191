"""How Airflow deploys Flightline: schedules, which steps run as Kubernetes pods, where
notifications go. The DAGs and this plugin read it (``Deployment.from_env()``); the steps never
do (their settings are :class:`tasks.settings.Settings`).

Each field reads ``FLIGHTLINE_<FIELD>``, through the same pydantic-settings base, and a bad value
is refused naming its variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from tasks.settings import Concern, Settings, SettingsError, build


class Deployment(Concern):
    #: Cron expression of the nightly data DAG (02:00 UTC: the day before has fully landed).
    schedule: str = "0 2 * * *"
    #: Cron expression of the training DAG's regular run (Sundays 04:00 UTC), besides the runs
    #: retrain requests start; ``off``: only retrain requests (and people) start training.
    training_schedule: str = "0 4 * * 0"
    #: The heavy steps that run as pods in the task image instead of in the Airflow worker:
    #: task ids of steps declared with a ``pod`` (:func:`tasks.flows.steps.pod_steps`),
    #: comma-separated, or ``all``; empty runs every step locally (the default).
    k8s_steps: str = ""
    #: Minutes after a nightly run is queued (its interval's end, for a scheduled run) by which
    #: the day's features must be published, else an alert (:mod:`flightline_airflow.deadlines`).
    features_deadline_minutes: float = Field(default=240, gt=0, le=10080)
    #: Minutes a training run may take from being queued before an alert.
    training_deadline_minutes: float = Field(default=180, gt=0, le=10080)
    #: Where a retrain request or a missed deadline is told (:mod:`flightline_airflow.notifiers`): ``log``,
    #: ``email:a@x.org,b@y.org`` or ``slack:<connection id>``.
    notify: str = "log"
    #: Seconds before a failed task's first retry (doubling after each further failure); a
    #: task killed with its machine, a dropped connection, a busy store get this long to clear.
    retry_delay_seconds: int = Field(default=120, ge=1, le=3600)
    #: Whether a Bento that passed its serving check waits for a person before ``released``
    #: moves (:mod:`tasks.serving.approval`): ``off`` (released at once), ``auto`` (approved
    #: automatically and recorded so), ``on`` (the training run waits in the UI's Required
    #: actions). The default of the training DAG's *Release approval* Param.
    release_approval: Literal["off", "auto", "on"] = "off"
    #: Minutes a release waits for an answer before it counts as rejected (default a day).
    release_approval_timeout_minutes: int = Field(default=1440, ge=1, le=43200)

    @field_validator("schedule", "training_schedule")
    @classmethod
    def _cron(cls, schedule: str, info) -> str:
        if info.field_name == "training_schedule" and schedule == "off":
            return schedule
        if len(schedule.split()) != 5 and not schedule.startswith("@"):
            raise ValueError("expected a 5-field cron" + (" or off" if info.field_name ==
                                                          "training_schedule" else ""))
        return schedule

    def training_timetable(self, retrain_asset):
        """The training DAG's schedule: retrain requests, and the regular run unless ``off``."""
        from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

        if self.training_schedule == "off":
            return retrain_asset
        return AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(self.training_schedule, timezone="UTC"),
            assets=retrain_asset)

    @field_validator("notify")
    @classmethod
    def _channel(cls, notify: str) -> str:
        if notify != "log" and not notify.startswith(("email:", "slack:")):
            raise ValueError("expected log, email:ADDRESSES or slack:CONNECTION")
        return notify

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Deployment:
        return build(cls, env)

    def pod_steps(self, settings: Settings | None = None) -> tuple[str, ...]:
        """The task ids that run as pods (``all`` expanded), each checked against the step
        declarations; with ``settings``, also that the pods can see the data."""
        from tasks.flows.steps import pod_steps

        names = [n.strip() for n in self.k8s_steps.split(",") if n.strip()]
        can = pod_steps()
        if names == ["all"]:
            names = list(can)
        unknown = [n for n in names if n not in can]
        if unknown:
            raise SettingsError(f"FLIGHTLINE_K8S_STEPS={self.k8s_steps!r}: {', '.join(unknown)} "
                                f"cannot run as a pod; the steps that can: {', '.join(can)} "
                                "(or 'all')")
        if names and settings is not None and not settings.k8s_data_pvc and not settings.is_s3:
            raise SettingsError("FLIGHTLINE_K8S_DATA_PVC is empty and FLIGHTLINE_DATA_ROOT is not "
                                "s3://: pods would not see the data; set one of them")
        return tuple(names)
