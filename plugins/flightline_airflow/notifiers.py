"""Notifications: the monitoring DAG's retrain request and missed deadlines, told to people.

``FLIGHTLINE_NOTIFY`` chooses where (read when the notice is sent, not at parse time):
``log`` (the default: a warning line in the task's or the triggerer's log), ``email:a@x.org,b@y.org``
(Airflow's SMTP provider, connection ``smtp_default``), or ``slack:<connection id>`` (needs
``apache-airflow-providers-slack``, not installed by default). A notifier that cannot send logs
why; it never fails the task whose request it reports.
"""

from __future__ import annotations

import logging

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def channel() -> str:
    from flightline_airflow.deployment import Deployment

    return Deployment.from_env().notify


def send(subject: str, message: str, *, context=None, logger: logging.Logger = log) -> str:
    """Tell ``message`` where ``FLIGHTLINE_NOTIFY`` says; returns where it went (``log`` also
    when the channel is misconfigured or its sending failed: the message is logged then)."""
    try:
        where = channel()
    except ValueError as exc:  # a bad FLIGHTLINE_NOTIFY: said once, the message still logged
        logger.error("%s; logging instead: %s", exc, message)
        return "log"
    try:
        if where == "log":
            logger.warning("%s", message)
        elif where.startswith("email:"):
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(to=where[len("email:"):].split(","), subject=subject,
                         html_content=message).notify(context or {})
        elif where.startswith("slack:"):
            from airflow.providers.slack.notifications.slack import SlackNotifier

            SlackNotifier(slack_conn_id=where[len("slack:"):], text=message).notify(context or {})
        return where
    except Exception as exc:  # a notice must not fail what it reports
        logger.error("notice not sent to %s (%s): %s", where, exc, message)
        return "log"


class RetrainNotifier(BaseNotifier):
    """Sends "retrain requested" with the day, model version and reason (the task's result)."""

    template_fields = ()

    def notify(self, context) -> None:
        ti = context["ti"]
        request = ti.xcom_pull(task_ids=ti.task_id) or {}
        message = (f"Flightline: retrain requested on {request.get('day')} for model "
                   f"{request.get('model_version')}: {request.get('reason')}")
        send("Flightline: retrain requested", message, context=context, logger=self.log)


def retrain_notifier() -> RetrainNotifier:
    return RetrainNotifier()
