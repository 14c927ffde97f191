"""Registers Flightline's Airflow extensions: the reports app behind Airflow's login.

The gate's Data Docs button needs no registration here: ``QualityGateOperator`` declares its
``DataDocsLink``, the worker stores the link's URL in XCom when the task ends, and the API server
reads it from there (a link registered through a plugin would take precedence and be resolved in
the API server, where no run-time value exists).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from flightline_airflow.reports_app import create_app


class FlightlinePlugin(AirflowPlugin):
    name = "flightline"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": "/flightline", "name": "Flightline reports"}
    ]
