"""The release approval task: Airflow's own human-in-the-loop wait around the serving flow's
declared ``approve_release`` step (:mod:`tasks.serving.approval`).

With the run's *Release approval* Param at ``on``, the task writes its question (the reviewer's
figures, :func:`tasks.serving.approval.review`) and waits in the UI's *Required actions* with
Approve and Reject and a comment field; Airflow 3.3 parks it in ``awaiting_input`` (no worker
slot, no triggerer). An answer through the UI or the REST API resumes it; no answer within
``FLIGHTLINE_RELEASE_APPROVAL_TIMEOUT_MINUTES`` resumes it with Reject, marked as a time-out. At
``off`` or ``auto`` it runs the declared step at once. Either way its XCom is the
:class:`~tasks.serving.approval.Approval` that the ``release`` task takes, and its line of the
run's note says who decided what.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

APPROVE, REJECT = "Approve", "Reject"  # as tasks.serving.approval names them


class ReleaseApprovalOperator(HITLOperator):
    """Approve or reject the release of the Bento the serving check passed (``checked``: that
    task's XCom, templated)."""

    template_fields = ("subject", "body", "checked")

    def __init__(self, *, checked: Any, timeout_minutes: int, **kwargs: Any) -> None:
        # The form's one field is this task's own; the run's Params stay in its context.
        kwargs.pop("params", None)
        params = {"comment": Param("", type="string", title="Why", source="task",
                                   description="Kept in the release history with your name.")}
        super().__init__(
            subject="Release the checked Bento?",  # replaced by the Bento's name at run time
            options=[APPROVE, REJECT], defaults=[REJECT], multiple=False, params=params,
            response_timeout=timedelta(minutes=timeout_minutes), **kwargs)
        self.checked = checked

    def execute(self, context) -> Any:
        from flightline_airflow.run_notes import write_run_note
        from flightline_airflow.step_tasks import run_declared

        mode = (context.get("params") or {}).get("release_approval", "off")
        if mode != "on":
            approval = run_declared("serving.approve_release", [self.checked], {"mode": mode})
            write_run_note(context, _describe(approval))
            return approval
        self.subject, self.body = self._question(context)
        write_run_note(context, f"Waiting for a person to approve the release of "
                                f"{self.checked['bento']} (Required actions).")
        return super().execute(context)  # parks the task until an answer or the time-out

    def _question(self, context) -> tuple[str, str]:
        from urllib.parse import quote

        from flightline_airflow.operators import REPORTS_URL_PREFIX
        from tasks.cost.ledger import run_summary, summary_line
        from tasks.serving.approval import review
        from tasks.serving.check import Checked
        from tasks.settings import Settings

        checked = Checked.from_dict(self.checked)
        ti = context["ti"]
        try:
            cost = summary_line(run_summary(ti.dag_id, ti.run_id, Settings.from_env()))
        except Exception as exc:  # the question is still worth asking without the cost
            cost = f"not available ({exc})"
        timeout = (datetime.now(UTC) + self.response_timeout).isoformat(timespec="minutes")
        body = review(checked, cost=cost, timeout=timeout,
                      plots_url=f"{REPORTS_URL_PREFIX}/models/{quote(checked.version, safe='')}")
        return f"Release {checked.bento}?", body

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        from flightline_airflow.run_notes import write_run_note
        from tasks.serving.approval import Approval

        response = super().execute_complete(context, event)
        approval = Approval.from_response(dict(response), timed_out=bool(event.get("timedout")))
        print(f"release {approval.decision}: {approval.describe()}")
        write_run_note(context, _describe(approval.to_dict()))
        return approval.to_dict()


def _describe(approval: dict) -> str:
    from tasks.serving.approval import Approval

    return f"Release {Approval.from_dict(approval).describe()}."
