"""Notifications: the monitoring DAG's retrain request, told to people.

``FLIGHTLINE_NOTIFY`` chooses where (read when the notice is sent, not at parse time):
``log`` (the default: a warning line in the task log), ``email:a@x.org,b@y.org`` (Airflow's SMTP
provider, connection ``smtp_default``), or ``slack:<connection id>`` (needs
``apache-airflow-providers-slack``, not installed by default). A notifier that cannot send logs
why; it never fails the task whose request it reports.
"""

from __future__ import annotations

from airflow.sdk import BaseNotifier


def channel() -> str:
    from flightline_airflow.deployment import Deployment

    return Deployment.from_env().notify


class RetrainNotifier(BaseNotifier):
    """Sends "retrain requested" with the day, model version and reason (the task's result)."""

    template_fields = ()

    def notify(self, context) -> None:
        ti = context["ti"]
        request = ti.xcom_pull(task_ids=ti.task_id) or {}
        message = (f"Flightline: retrain requested on {request.get('day')} for model "
                   f"{request.get('model_version')}: {request.get('reason')}")
        try:
            where = channel()
        except ValueError as exc:  # a bad FLIGHTLINE_NOTIFY: said once, the request still logged
            self.log.error("%s; logging instead: %s", exc, message)
            return
        try:
            if where == "log":
                self.log.warning("%s", message)
            elif where.startswith("email:"):
                from airflow.providers.smtp.notifications.smtp import SmtpNotifier

                SmtpNotifier(to=where[len("email:"):].split(","), subject="Flightline: retrain requested",
                             html_content=message).notify(context)
            elif where.startswith("slack:"):
                from airflow.providers.slack.notifications.slack import SlackNotifier

                SlackNotifier(slack_conn_id=where[len("slack:"):], text=message).notify(context)
        except Exception as exc:  # a notice must not fail the request it reports
            self.log.error("retrain notice not sent to %s (%s): %s", where, exc, message)


def retrain_notifier() -> RetrainNotifier:
    return RetrainNotifier()
