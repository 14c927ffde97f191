"""Flightline operators: the quality gate, with an extra link to its Data Docs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from flightline_airflow import DEFAULT_ARGS, logical_day  # noqa: F401  (re-export for DAGs)

REPORTS_URL_PREFIX = "/flightline"


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


class QualityGateOperator(BaseOperator):
    """Run a Great Expectations gate (``raw`` drop or staged ``features``) for the run's day.

    A failing gate fails the task without retries (the data will not get better by retrying), and
    the log names each failed expectation with sample values; the drop or staged partition is
    already in ``quarantine/`` by then.
    """

    template_fields: Sequence[str] = ("staged_uri",)
    operator_extra_links = (DataDocsLink(),)
    ui_color = "#e6f4ea"

    def __init__(self, *, gate: str, staged_uri: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if gate not in ("raw", "features"):
            raise ValueError(f"QualityGateOperator: gate must be 'raw' or 'features', got {gate!r}")
        self.gate = gate
        self.staged_uri = staged_uri
        self.docs_path: str | None = None

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from flightline_airflow.run_notes import write_run_note
        from tasks.quality import QualityGateFailed, docs_path, gate_features, gate_raw_drop
        from tasks.settings import Settings

        settings = Settings.from_env()
        day = logical_day(context)
        self.docs_path = docs_path(day)  # the day's own Data Docs site
        try:
            if self.gate == "raw":
                result = gate_raw_drop(day, settings)
            else:
                if not self.staged_uri:
                    raise AirflowFailException("features gate: no staged partition to validate")
                result = gate_features(day, self.staged_uri, settings)
        except QualityGateFailed as exc:
            self.log.error("%s", exc)
            r = exc.result
            write_run_note(context, f"{day.isoformat()}: {self.gate} gate FAILED "
                                    f"({len(r.failures)} failed expectation(s)); quarantined to "
                                    f"{r.quarantine_uri}. See the {self.task_id} log and Data Docs.")
            raise AirflowFailException(str(exc)) from exc
        self.log.info("%s (%s)", result.summary(), result.suites)
        return result.to_dict()
