"""Registers Flightline's Airflow extensions: the reports app behind Airflow's login, the cost
ledger's listener, every task's Cost link and the cost report in the UI's *Browse* menu.

The gate's Data Docs button needs no registration here: ``QualityGateOperator`` declares its
``DataDocsLink``, the worker stores the link's URL in XCom when the task ends, and the API server
reads it from there (a link registered through a plugin would take precedence and be resolved in
the API server, where no run-time value exists).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from flightline_airflow import cost_ledger
from flightline_airflow.operators import CostLink
from flightline_airflow.reports_app import COST_REPORT_PATH, URL_PREFIX, create_app


class FlightlinePlugin(AirflowPlugin):
    name = "flightline"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Flightline reports"}
    ]
    # Browse > Flightline costs: the cost report of the ledger's last 30 days, with links to other
    # ranges and to every run's cost page. No ``url_route`` on purpose: with one the UI would show
    # the page in a frame, where the page's sandbox (an opaque origin) sends its links' requests
    # without the login cookie (SameSite=Lax), so every link would answer 401. Without one the
    # entry opens the page in a tab of its own, where links are top-level navigations and keep the
    # login.
    external_views = [
        {"name": "Flightline costs", "href": COST_REPORT_PATH, "destination": "nav",
         "category": "browse"}
    ]
    # Every task attempt priced into the cost ledger; each run's cost appended to its note.
    listeners = [cost_ledger]
    # The run's cost page on every task (its URL needs only the run's id).
    global_operator_extra_links = [CostLink()]
