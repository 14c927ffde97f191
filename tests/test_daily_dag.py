"""The daily DAG end to end through Airflow (dag.test on the real metadata DB)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pendulum
import pytest

from tasks.features.staging import read_features
from tasks.flows.daily import FLOW
from tasks.landing import land_day

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def daily_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "flightline_daily.py"))
    assert not bag.import_errors
    return bag.get_dag("flightline_daily")


def _states(dagrun) -> dict[str, str]:
    return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
            for ti in dagrun.get_task_instances()}


@pytest.mark.slow
def test_one_good_day_end_to_end(settings, daily_dag):
    dr = daily_dag.test(logical_date=pendulum.datetime(2013, 5, 14, tz="UTC"))
    assert _states(dr) == dict.fromkeys(FLOW.task_ids, "success")
    df = read_features([date(2013, 5, 14)], settings)
    assert len(df) > 900 and (df["flight_date"].astype(str) == "2013-05-14").all()
    docs = Path(settings.zone("reports"), "data_docs")
    assert (docs / "dt=2013-05-14" / "index.html").exists()
    assert 'href="dt=2013-05-14/index.html"' in (docs / "index.html").read_text()

    # The gate tasks carry the Data Docs extra link, and the reports app serves its target.
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient
    from flightline_airflow.reports_app import create_app
    from sqlalchemy import select

    with create_session() as session:
        links = {x.task_id: XComModel.deserialize_value(x) for x in session.scalars(select(XComModel).where(
            XComModel.run_id == dr.run_id, XComModel.key == "_link_DataDocsLink"))}
    assert links == dict.fromkeys(["raw_gate", "features_gate"],
                                  "/flightline/reports/data_docs/dt=2013-05-14/index.html")
    # The reports app refuses a caller without Airflow's token; the live-Airflow test opens the
    # same link logged in.
    client = TestClient(create_app())
    for path in ("/reports/data_docs/index.html", "/reports/../airflow.cfg", "/static/x.css",
                 "/docs", "/openapi.json"):
        assert client.get(path).status_code in (401, 404), path
    assert client.get("/reports/data_docs/index.html").status_code == 401
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404


@pytest.mark.slow
def test_a_failing_gate_stops_the_run_and_publishes_nothing(settings, daily_dag):
    day = date(2013, 5, 15)
    drop = land_day(day, settings)
    flights = Path(drop.uri, "flights.csv")
    df = pd.read_csv(flights, dtype=str, keep_default_na=False)
    df.loc[:9, "distance"] = "-1"
    flights.write_text(df.to_csv(index=False))
    dr = daily_dag.test(logical_date=pendulum.datetime(2013, 5, 15, tz="UTC"))
    states = _states(dr)
    assert states["raw_gate"] == "failed"
    after = FLOW.task_ids[FLOW.task_ids.index("raw_gate") + 1:]
    assert {states[t] for t in after} == {"upstream_failed"}, states
    assert not Path(settings.partition("features", day)).exists()
    q = Path(settings.partition("quarantine", day))
    report = json.loads((q / "validation.json").read_text())
    assert any(f["column"] == "distance" for f in report["gate"]["failures"])
