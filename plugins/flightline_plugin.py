"""Registers Flightline's Airflow extensions: the reports app behind Airflow's login, the cost
ledger's listener and every task's Cost link.

The gate's Data Docs button needs no registration here: ``QualityGateOperator`` declares its
``DataDocsLink``, the worker stores the link's URL in XCom when the task ends, and the API server
reads it from there (a link registered through a plugin would take precedence and be resolved in
the API server, where no run-time value exists).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from flightline_airflow import cost_ledger
from flightline_airflow.operators import CostLink
from flightline_airflow.reports_app import create_app


class FlightlinePlugin(AirflowPlugin):
    name = "flightline"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": "/flightline", "name": "Flightline reports"}
    ]
    # Every task attempt priced into the cost ledger; each run's cost appended to its note.
    listeners = [cost_ledger]
    # The run's cost page on every task (its URL needs only the run's id).
    global_operator_extra_links = [CostLink()]
