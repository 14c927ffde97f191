"""Airflow-side helpers shared by Flightline's DAGs (the plugins folder is on Airflow's sys.path).

Only light imports here: DAG files import this module at parse time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta


def default_args() -> dict:
    """The DAGs' default task arguments; the retry delay is a deployment setting. Called by
    each DAG file (a bad setting fails its parse, visibly), never when the plugin loads."""
    from flightline_airflow.deployment import Deployment

    return {"owner": "flightline", "retries": 2,
            "retry_delay": timedelta(seconds=Deployment.from_env().retry_delay_seconds),
            "retry_exponential_backoff": True}

DAG_TAGS_BASE = ["flightline"]


def _features_asset():
    from airflow.sdk import Asset

    # Downstream DAGs (training, drift) schedule on this; each event's extra names the day.
    return Asset(name="flightline_features", uri="flightline://features", group="flightline")


FEATURES_ASSET = _features_asset()


def _retrain_asset():
    from airflow.sdk import Asset

    # The monitoring DAG's retrain request; the training DAG schedules on it. The event's extra
    # says why (day, model version, reason).
    return Asset(name="flightline_retrain_request", uri="flightline://retrain", group="flightline")


RETRAIN_ASSET = _retrain_asset()


def event_day(context) -> date:
    """The day a run processes: the ``day`` Param when given, else the run's partition key (a
    partitioned run: one day), else the newest day named by its triggering asset events, else
    :func:`logical_day`."""
    if (context.get("params") or {}).get("day"):
        return logical_day(context)
    key = getattr(context.get("dag_run"), "partition_key", None)
    if key:
        return date.fromisoformat(str(key)[:10])
    days = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for ev in events:
            if (ev.extra or {}).get("day"):
                days.append(date.fromisoformat(ev.extra["day"]))
    return max(days) if days else logical_day(context)


def logical_day(context) -> date:
    """The day a run processes: the ``day`` Param when given, else the logical date (UTC).

    Runs triggered with no logical date fall back to the start of their data interval, then to
    yesterday.
    """
    params = context.get("params") or {}
    explicit = params.get("day")
    if explicit:
        return date.fromisoformat(str(explicit))
    for key in ("logical_date", "data_interval_start"):
        value = context.get(key)
        if value is not None:
            return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10])
    return (datetime.utcnow() - timedelta(days=1)).date()
