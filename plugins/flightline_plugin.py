"""Registers Flightline's Airflow extensions: the Data Docs extra link and the reports app."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from flightline_airflow import listeners
from flightline_airflow.operators import DataDocsLink, QualityGateOperator
from flightline_airflow.reports_app import create_app

DataDocsLink.operators = [QualityGateOperator]


class FlightlinePlugin(AirflowPlugin):
    name = "flightline"
    operator_extra_links = [DataDocsLink()]
    listeners = [listeners]
    fastapi_apps = [
        {"app": create_app(), "url_prefix": "/flightline", "name": "Flightline reports"}
    ]
