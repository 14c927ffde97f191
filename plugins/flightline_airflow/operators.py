"""Flightline operators: the quality gate with an extra link to its Data Docs, and the
monitoring reports with a link to theirs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from flightline_airflow import logical_day
from flightline_airflow.reports_app import URL_PREFIX as REPORTS_URL_PREFIX


class CostLink(BaseOperatorLink):
    """"Cost" button on every task: the run's cost ledger, attempt by attempt, with the saving
    against on-demand. Registered by the plugin for all operators; its URL needs only the run's
    id, so the API server resolves it."""

    name = "Cost"

    def get_link(self, operator, *, ti_key) -> str:
        from urllib.parse import quote

        return (f"{REPORTS_URL_PREFIX}/costs/{quote(ti_key.dag_id, safe='')}/"
                f"{quote(ti_key.run_id, safe='')}")


class DataDocsLink(BaseOperatorLink):
    """"Data Docs" button on a gate task: the Great Expectations site its run rebuilt.

    The URL is known only at run time: the worker calls ``get_link`` on the live operator when
    the task ends (success or failure) and stores the URL in XCom (``_link_DataDocsLink``); the
    API server serves it from there. It points at the Flightline reports app that the plugin
    mounts on the API server (``/flightline/reports/...``, behind Airflow's login), so it works
    for local and S3 data roots alike.
    """

    name = "Data Docs"

    def get_link(self, operator, *, ti_key) -> str:
        # Called in the worker right after execute(); the gate recorded its docs path then.
        path = getattr(operator, "docs_path", None)
        return f"{REPORTS_URL_PREFIX}/reports/{path}" if path else ""


def _gate_step(gate: str, data: dict, settings):
    """Run the daily flow's declared gate step on the result of the step before (its XCom)."""
    from tasks.flows.steps import find

    step = find(f"daily.{gate}_gate")
    return step(*step.decode_inputs([data]), settings=settings)


class QualityGateOperator(BaseOperator):
    """Run a Great Expectations gate of the daily flow on the result of the step before:
    ``raw`` takes the drop the sensor found, ``features`` the staged partition the build wrote
    (``data``: that task's XCom, templated).

    A failing gate fails the task without retries (the data will not get better by retrying), and
    the log names each failed expectation with sample values; the drop or staged partition is
    already in ``quarantine/`` by then.
    """

    template_fields: Sequence[str] = ("data",)
    operator_extra_links = (DataDocsLink(),)
    ui_color = "#e6f4ea"

    def __init__(self, *, gate: str, data: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if gate not in ("raw", "features"):
            raise ValueError(f"QualityGateOperator: gate must be 'raw' or 'features', got {gate!r}")
        self.gate = gate
        self.data = data
        self.docs_path: str | None = None

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from flightline_airflow.run_notes import write_run_note
        from tasks.quality.context import docs_path
        from tasks.quality.gate import QualityGateFailed
        from tasks.settings import Settings

        settings = Settings.from_env()
        day = logical_day(context)
        self.docs_path = docs_path(day)  # the day's own Data Docs site
        if not self.data:
            raise AirflowFailException(f"{self.gate} gate: no result of the step before to validate")
        try:
            result = _gate_step(self.gate, self.data, settings)
        except QualityGateFailed as exc:
            self.log.error("%s", exc)
            r = exc.result
            write_run_note(context, f"{day.isoformat()}: {self.gate} gate FAILED "
                                    f"({len(r.failures)} failed expectation(s)); quarantined to "
                                    f"{r.quarantine_uri}. See the {self.task_id} log and Data Docs.")
            raise AirflowFailException(str(exc)) from exc
        self.log.info("%s (%s)", result.summary(), result.suites)
        return result.to_dict()


class MonitoringReportLink(BaseOperatorLink):
    """"Report" button on a monitoring report task: its Evidently HTML page for the day, through
    the same reports route as Data Docs (stored in XCom by the worker, like ``DataDocsLink``)."""

    name = "Report"

    def get_link(self, operator, *, ti_key) -> str:
        path = getattr(operator, "report_path", None)
        return f"{REPORTS_URL_PREFIX}/reports/{path}" if path else ""


class MonitoringReportOperator(BaseOperator):
    """Run one report step of the monitoring flow (``drift`` or ``quality``) on the scoring
    step's result (``data``: its XCom, templated); the task gets a link to the HTML report."""

    template_fields: Sequence[str] = ("data",)
    operator_extra_links = (MonitoringReportLink(),)
    ui_color = "#e8f0fe"

    def __init__(self, *, report: str, data: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if report not in ("drift", "quality"):
            raise ValueError(f"MonitoringReportOperator: report must be 'drift' or 'quality', got {report!r}")
        self.report = report
        self.data = data
        self.report_path: str | None = None

    def execute(self, context) -> dict:
        from datetime import date

        from airflow.sdk.exceptions import AirflowSkipException

        from tasks.flows import monitoring
        from tasks.monitoring.reports import report_path
        from tasks.monitoring.scoring import Scored
        from tasks.settings import Settings

        if not self.data:
            raise AirflowSkipException("nothing was scored")
        scored = Scored.from_dict(self.data)
        step = monitoring.drift_report if self.report == "drift" else monitoring.quality_report
        result = step(scored, Settings.from_env())
        self.report_path = report_path(date.fromisoformat(scored.day), self.report)
        if self.report == "drift":
            self.log.info("%s: drift share %.2f (%d features drifted: %s); prediction drift %s",
                          scored.day, result.drift_share, len(result.drifted),
                          ", ".join(result.drifted) or "none", result.prediction_drift)
        else:
            self.log.info("%s: ROC AUC %.4f (test days %.4f), ECE %.4f on %d labelled rows",
                          scored.day, result.metrics["roc_auc"],
                          result.registry_metrics.get("roc_auc", float("nan")),
                          result.metrics["ece"], result.rows)
        return result.to_dict()
