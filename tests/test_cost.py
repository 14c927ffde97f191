"""Cost: the spot step against moto in server mode (price histories loaded into it), the
snapshot fallback, bad price data, the cost ledger of real task runs, budgets."""

from __future__ import annotations

import html
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _points(itype, zone, prices, *, every_h=6, end=NOW):
    """A price history ending at ``end``, one price every ``every_h`` hours, oldest first."""
    n = len(prices)
    return [{"InstanceType": itype, "AvailabilityZone": zone, "ProductDescription": "Linux/UNIX",
             "SpotPrice": f"{p:.6f}",
             "Timestamp": (end - timedelta(hours=every_h * (n - 1 - i))).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for i, p in enumerate(prices)]


class SpotEndpoint:
    """moto in server mode on loopback, answering spot price history from a loaded file."""

    def __init__(self, tmp: Path, throttle: int = 0):
        self.file = tmp / "prices.json"
        self.file.write_text("[]")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "moto.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "moto_spot.py"), "--port", str(self.port),
             "--prices", str(self.file), "--throttle", str(throttle)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto did not start")

    def load(self, points: list[dict]) -> None:
        self.file.write_text(json.dumps(points))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    ep = SpotEndpoint(tmp_path_factory.mktemp("moto-spot"))
    yield ep
    ep.stop()


@pytest.fixture
def live(endpoint, monkeypatch, settings) -> Settings:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return settings.with_overrides(ec2_endpoint_url=endpoint.url,
                                   cost_zones="us-east-1a,us-east-1b",
                                   cost_instance_types="g4dn.xlarge,g5.xlarge,g6.xlarge,p3.2xlarge")


def test_the_cheapest_steady_spot_capacity_wins(endpoint, live):
    from tasks.cost.spot import choose_capacity

    endpoint.load(
        _points("g4dn.xlarge", "us-east-1a", [0.16] * 28)
        + _points("g4dn.xlarge", "us-east-1b", [0.17] * 28)
        + _points("g6.xlarge", "us-east-1a", [0.22] * 28)
        + _points("g5.xlarge", "us-east-1b", [0.30] * 28))
    cap = choose_capacity(live, now=NOW)
    assert (cap.instance_type, cap.zone, cap.capacity_type) == ("g4dn.xlarge", "us-east-1a", "spot")
    assert cap.hourly_usd == pytest.approx(0.16) and cap.on_demand_usd == pytest.approx(0.526)
    assert "live us-east-1" in cap.source and "70% below" in cap.reason
    assert cap.runners_up[0]["instance_type"] == "g4dn.xlarge" and cap.runners_up[0]["zone"] == "us-east-1b"


def test_a_volatile_price_loses_to_a_steady_one_a_little_dearer(endpoint, live):
    from tasks.cost.spot import choose_capacity

    swinging = [0.10, 0.30] * 14  # mean 0.20, swings 50%
    endpoint.load(_points("g4dn.xlarge", "us-east-1a", swinging)
                  + _points("g6.xlarge", "us-east-1b", [0.23] * 28))
    cap = choose_capacity(live, now=NOW)
    assert (cap.instance_type, cap.zone) == ("g6.xlarge", "us-east-1b"), cap.reason


def test_a_price_spike_now_counts_and_a_dear_spot_market_means_on_demand(endpoint, live):
    from tasks.cost.spot import choose_capacity

    endpoint.load(_points("g4dn.xlarge", "us-east-1a", [0.16] * 27 + [0.50])
                  + _points("g6.xlarge", "us-east-1a", [0.24] * 28))
    assert choose_capacity(live, now=NOW).instance_type == "g6.xlarge"
    # every spot price at or above on-demand once risk is counted: on-demand, cheapest type
    endpoint.load(_points("g4dn.xlarge", "us-east-1a", [0.55] * 28)
                  + _points("g6.xlarge", "us-east-1a", [0.90] * 28))
    cap = choose_capacity(live, now=NOW)
    assert (cap.capacity_type, cap.instance_type, cap.zone) == ("on-demand", "g4dn.xlarge", None)
    assert cap.hourly_usd == pytest.approx(0.526) and "not below on-demand" in cap.reason
    endpoint.load(_points("g4dn.xlarge", "us-east-1a", [0.16] * 28))
    asked = choose_capacity(live, now=NOW, on_demand=True)
    assert asked.capacity_type == "on-demand" and "interrupted" in asked.reason


def test_every_page_is_read(endpoint, live):
    """A 90-day hourly history of two types in two zones spans many pages of 1,000."""
    from tasks.cost.spot import choose_capacity, fetch_history

    hourly = 24 * 90
    endpoint.load(_points("g4dn.xlarge", "us-east-1a", [0.2] * hourly, every_h=1)
                  + _points("g4dn.xlarge", "us-east-1b", [0.2] * hourly, every_h=1)
                  + _points("g6.xlarge", "us-east-1a", [0.25] * hourly, every_h=1)
                  + _points("g6.xlarge", "us-east-1b", [0.15] * hourly, every_h=1))
    entries, pages = fetch_history(["g4dn.xlarge", "g6.xlarge"], ["us-east-1a", "us-east-1b"],
                                   NOW - timedelta(days=90), NOW, live)
    # each type its own stream of 5 pages (4,320 prices); every price of the window is read
    assert len(entries) == 4 * hourly and pages == 2 * 5
    # the cheapest pair comes last in the endpoint's order: only a full read sees it
    s = live.with_overrides(cost_lookback_days=90)
    cap = choose_capacity(s, now=NOW)
    assert (cap.instance_type, cap.zone, cap.hourly_usd) == ("g6.xlarge", "us-east-1b", 0.15)


def test_bad_or_missing_prices_are_named_errors_never_zero(endpoint, live):
    from tasks.cost.spot import PriceDataError, choose_capacity

    endpoint.load(_points("g4dn.xlarge", "us-east-1a", [0.16, 0.0, 0.17]))
    with pytest.raises(PriceDataError, match=r"non-positive price '0.000000' \(g4dn.xlarge in us-east-1a"):
        choose_capacity(live, now=NOW)
    endpoint.load(_points("g4dn.xlarge", "us-east-1a", [0.16] * 3, end=NOW - timedelta(days=400)))
    with pytest.raises(PriceDataError, match=r"no spot price .* \(the newest price is from 2025-"):
        choose_capacity(live, now=NOW)
    endpoint.load([])
    with pytest.raises(PriceDataError, match=r"no price at all"):
        choose_capacity(live, now=NOW)
    with pytest.raises(PriceDataError, match="does not describe"):
        choose_capacity(live.with_overrides(cost_instance_types="g4dn.xlarge,x9.huge"), now=NOW)
    from tasks.cost.spot import NoCapacityFits

    with pytest.raises(NoCapacityFits, match="4 GPU"):
        choose_capacity(live.with_overrides(cost_job_gpus=4), now=NOW)


def test_throttling_is_transient_not_bad_data(tmp_path, monkeypatch, settings):
    """The endpoint refuses every call (more than botocore's own retries): a transient error
    the task retries, never mistaken for missing prices."""
    from tasks.cost.spot import TransientPriceError, choose_capacity

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ep = SpotEndpoint(tmp_path, throttle=100)
    try:
        ep.load(_points("g4dn.xlarge", "us-east-1a", [0.16] * 28))
        with pytest.raises(TransientPriceError, match="RequestLimitExceeded"):
            choose_capacity(settings.with_overrides(ec2_endpoint_url=ep.url), now=NOW)
    finally:
        ep.stop()


def test_without_credentials_the_dated_snapshot_is_used_and_said(settings, monkeypatch, caplog):
    from tasks.cost.spot import choose_capacity, load_snapshot

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with caplog.at_level("WARNING"):
        cap = choose_capacity(settings)
    date = load_snapshot()["snapshot_date"]
    assert cap.source == f"snapshot {date}" and cap.capacity_type == "spot"
    assert f"snapshot of {date}" in caplog.text
    assert 0 < cap.hourly_usd < cap.on_demand_usd


def test_spot_cli_prints_the_choice(settings, monkeypatch):
    env = {**os.environ, **settings.to_env(), "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(var, None)
    out = subprocess.run([str(Path(sys.executable).parent / "flightline"), "cost", "spot"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["capacity_type"] == "spot" and body["source"].startswith("snapshot ")


def _attempt(settings, task, try_number, seconds, capacity=None, state="success", day="2013-03-04",
             run="r1", dag="flightline_training"):
    from tasks.cost.ledger import price_attempt

    start = datetime(2026, 11, 20, 10, tzinfo=UTC) + timedelta(minutes=try_number)
    return price_attempt(dag_id=dag, run_id=run, task_id=task, map_index=-1,
                         try_number=try_number, state=state, start=start,
                         end=start + timedelta(seconds=seconds), capacity=capacity,
                         settings=settings, run_day=datetime.fromisoformat(day).date())


SPOT = {"capacity_type": "spot", "instance_type": "g4dn.xlarge", "zone": "us-east-1a",
        "hourly_usd": 0.18, "on_demand_usd": 0.526}


def test_the_ledger_prices_attempts_and_sums_a_run_with_its_saving(settings):
    from tasks.cost.ledger import read_ledger, record, run_summary, summary_line

    s = settings.with_overrides(cost_local_hourly_usd=0.10)
    record(_attempt(s, "prepare_split", 1, 36), s)
    record(_attempt(s, "train_xgboost", 1, 1800, SPOT, state="interrupted"), s)
    record(_attempt(s, "train_xgboost", 2, 3600, SPOT), s)
    again = _attempt(s, "train_xgboost", 2, 3600, SPOT)
    record(again, s)  # an attempt recorded twice replaces itself
    ledger = read_ledger(s, dag_id="flightline_training", run_id="r1")
    assert len(ledger) == 3 and list(ledger["try_number"]) == [1, 1, 2]
    summary = run_summary("flightline_training", "r1", s)
    assert summary["cost_usd"] == pytest.approx(0.001 + 0.09 + 0.18)
    assert summary["on_demand_cost_usd"] == pytest.approx(0.001 + 0.263 + 0.526)
    assert summary["saving_usd"] == pytest.approx(0.790 - 0.271)
    assert summary["interruptions"] == 1 and summary["interruption_cost_usd"] == pytest.approx(0.09)
    line = summary_line(summary)
    assert line.startswith("Cost $0.2710 for 3 task attempt(s)") and "1 spot interruption(s)" in line


def test_cost_report_totals_per_dag_and_step_and_draws_the_days(settings, tmp_path):
    from tasks.cost.ledger import record
    from tasks.cost.report import cost_report, run_page

    for i, day in enumerate(["2013-03-04", "2013-03-05", "2013-03-06"]):
        record(_attempt(settings, "train_xgboost", 1, 600, SPOT, day=day, run=f"t{i}"), settings)
        record(_attempt(settings, "build_features", 1, 60, day=day, run=f"d{i}",
                        dag="flightline_daily"), settings)
    out = cost_report(datetime(2013, 3, 5).date(), datetime(2013, 3, 6).date(), settings,
                      tmp_path / "cost.png")
    assert out["attempts"] == 4 and (tmp_path / "cost.png").read_bytes()[:4] == b"\x89PNG"
    per_dag = {r["dag_id"]: r for r in out["per_dag"]}
    assert per_dag["flightline_training"]["cost_usd"] == pytest.approx(2 * 0.03)
    assert per_dag["flightline_daily"]["saving_usd"] == pytest.approx(0)
    assert {(r["dag_id"], r["task_id"]) for r in out["per_step"]} == {
        ("flightline_training", "train_xgboost"), ("flightline_daily", "build_features")}
    with pytest.raises(LookupError, match="no task attempt"):
        cost_report(datetime(2014, 1, 1).date(), datetime(2014, 1, 2).date(), settings)
    page = run_page("flightline_training", "t1", settings)
    assert "<table>" in page and "g4dn.xlarge / us-east-1a" in page and "Cost $0.0300" in page
    assert "&lt;script&gt;" in run_page("<script>", "x", settings)  # names are escaped


HOSTILE = 'evaluate_<img src=x onerror=alert(1)>"'
SCHEDULED = "scheduled__2013-03-15T00:00:00+00:00"


def _run_with_retries(settings):
    """A training run of 2013-03-15: an interrupted spot attempt retried, a hostile task id."""
    from tasks.cost.ledger import record

    s = settings.with_overrides(cost_local_hourly_usd=0.10)
    for task, tr, secs, cap, state in (("prepare_split", 1, 36, None, "success"),
                                       ("train_xgboost", 1, 1800, SPOT, "interrupted"),
                                       ("train_xgboost", 2, 3600, SPOT, "success"),
                                       (HOSTILE, 1, 72, None, "success")):
        record(_attempt(s, task, tr, secs, cap, state=state, day="2013-03-15", run=SCHEDULED), s)
    return s


def test_run_page_gives_context_totals_a_bar_per_task_and_links_back(settings):
    import re
    from urllib.parse import quote

    from tasks.cost.report import run_page

    s = _run_with_retries(settings)
    page = run_page("flightline_training", SCHEDULED, s, report_path="/flightline/costs/report")
    assert "<h1>flightline_training</h1>" in page and "day 2013-03-15" in page
    assert f"<code>{SCHEDULED}</code>" in page
    assert 'class="state state-success">success<' in page  # the retry's latest attempt succeeded
    assert "what the cost ledger knows" in page
    # Under Airflow the route passes the run's own state (a run waiting for its approval is
    # running, whatever its recorded attempts say).
    live = run_page("flightline_training", SCHEDULED, s, state="running")
    assert 'class="state state-running">running<' in live and "what the cost ledger knows" not in live
    # Totals: paid 0.001 + 0.09 + 0.18 + 0.002; on demand 0.001 + 0.263 + 0.526 + 0.002.
    assert "$0.2730" in page and "$0.7920" in page and "$0.5190 (66%)" in page
    # One bar per task, its width proportional to the task's cost (both attempts of the trainer).
    bars = dict(re.findall(r'<rect class="cost" data-task="([^"]*)" x="[\d.]+" y="[\d.]+" '
                           r'width="([\d.]+)"', page))
    assert set(bars) == {"prepare_split", "train_xgboost", html.escape(HOSTILE)}
    widths = {k: float(v) for k, v in bars.items()}
    assert widths["train_xgboost"] / widths["prepare_split"] == pytest.approx(0.27 / 0.001, rel=0.01)
    assert widths[html.escape(HOSTILE)] / widths["prepare_split"] == pytest.approx(2, rel=0.01)
    # Links back: the run and the DAG in the Airflow UI (quoted), and the report of its day.
    assert (f'href="/dags/flightline_training/runs/{quote(SCHEDULED, safe="")}" target="_top"'
            in page)
    assert "scheduled__2013-03-15T00%3A00%3A00%2B00%3A00" in page
    assert 'href="/dags/flightline_training" target="_top"' in page
    assert 'href="/flightline/costs/report?start=2013-03-15&amp;end=2013-03-15"' in page
    # Every name is escaped, in the chart and the table alike; the page has no script.
    assert "<img" not in page and page.count(html.escape(HOSTILE)) >= 3
    assert "<script" not in page and "onerror=alert" in page  # as text only
    hostile = run_page("<b>dag</b>", "a&b", s)
    assert "<b>dag" not in hostile and "&lt;b&gt;dag&lt;/b&gt;" in hostile
    assert "/dags/%3Cb%3Edag%3C%2Fb%3E" in hostile


def test_run_state_follows_the_latest_attempt_of_each_task():
    from tasks.cost.report import run_state

    def a(task, tr, state):
        return {"task_id": task, "map_index": -1, "try_number": tr, "state": state}

    assert run_state([a("x", 1, "interrupted"), a("x", 2, "success"), a("y", 1, "skipped")]) == "success"
    assert run_state([a("x", 2, "success"), a("x", 1, "up_for_retry")]) == "success"  # any order
    assert run_state([a("x", 1, "success"), a("y", 1, "up_for_retry")]) == "running"
    assert run_state([a("x", 1, "interrupted")]) == "running"
    assert run_state([a("x", 1, "failed"), a("y", 1, "up_for_retry")]) == "failed"


def _report_client(monkeypatch, authorized=True):
    """The reports app with Airflow's check replaced: a caller without the stand-in token gets
    the 401 Airflow gives."""
    from fastapi import HTTPException
    from fastapi.testclient import TestClient
    from flightline_airflow import reports_app

    async def check(request):
        if request.headers.get("authorization") != "Bearer good":
            raise HTTPException(status_code=401, detail="Not authenticated")

    monkeypatch.setattr(reports_app, "require_read_access", check)
    return TestClient(reports_app.create_app(),
                      headers={"Authorization": "Bearer good"} if authorized else {})


def test_report_route_needs_the_login_and_checks_its_dates(settings, monkeypatch):
    from fastapi.testclient import TestClient
    from flightline_airflow.reports_app import create_app

    # Airflow's own check, not replaced: no token, no page.
    plain = TestClient(create_app())
    assert plain.get("/costs/report").status_code == 401
    assert plain.get("/costs/report?start=2013-03-01&end=2013-03-02").status_code == 401
    client = _report_client(monkeypatch)
    assert _report_client(monkeypatch, authorized=False).get("/costs/report").status_code == 401
    r = client.get("/costs/report?start=2013-03-40&end=2013-03-02")
    assert r.status_code == 400 and "start" in r.json()["detail"]
    r = client.get("/costs/report?start=2013-03-01&end=March")
    assert r.status_code == 400 and "end" in r.json()["detail"]
    r = client.get("/costs/report?start=2013-03-05&end=2013-03-01")
    assert r.status_code == 400 and "before" in r.json()["detail"]
    assert client.get("/costs/report?start=2013-03-05").status_code == 400
    r = client.get("/costs/report")  # an empty ledger: a page that says so
    assert r.status_code == 200 and "ledger is empty" in r.text
    assert r.headers["content-security-policy"].startswith("sandbox ")


def test_report_route_shows_a_range_with_its_totals_chart_and_runs(settings, monkeypatch):
    from urllib.parse import quote

    from flightline_airflow.reports_app import PAGE_HEADERS

    s = _run_with_retries(settings)
    for i, day in enumerate(["2013-03-04", "2013-03-05", "2013-03-06"]):
        from tasks.cost.ledger import record

        record(_attempt(s, "build_features", 1, 60, day=day, run=f"d{i}", dag="flightline_daily"), s)
    client = _report_client(monkeypatch)
    r = client.get("/costs/report?start=2013-03-05&end=2013-03-15")
    assert r.status_code == 200, r.text
    for header, value in PAGE_HEADERS.items():
        assert r.headers[header] == value
    page = r.text
    assert "Costs of runs from 2013-03-05 to 2013-03-15" in page
    # Totals as cost_report gives them: 2 daily runs of 0.00167 and the training run.
    assert "$0.2763" in page and "$0.5190" in page
    assert "<svg" in page and "<script" not in page and "saved against on-demand" in page
    assert "<h2>Per DAG</h2>" in page and "<h2>Per step</h2>" in page
    assert html.escape(HOSTILE) in page and "<img" not in page
    assert f'href="/flightline/costs/flightline_training/{quote(SCHEDULED, safe="")}"' in page
    assert 'href="/flightline/costs/flightline_daily/d0"' not in page  # 03-04: outside the range
    # Other ranges are links (the page has no forms): the ledger's last 7 days and all of it.
    assert 'href="/flightline/costs/report?start=2013-03-09&amp;end=2013-03-15"' in page
    assert "the whole ledger" in page
    empty = client.get("/costs/report?start=2014-01-01&end=2014-01-02")
    assert empty.status_code == 200 and "no task attempt in the cost ledger" in empty.text
    # Without a range: the last 30 days of the ledger.
    assert "Costs of runs from 2013-03-04 to 2013-03-15" in client.get("/costs/report").text
    # The run page links to the report of its day.
    run = client.get(f"/costs/flightline_training/{quote(SCHEDULED, safe='')}")
    assert run.status_code == 200
    assert 'href="/flightline/costs/report?start=2013-03-15&amp;end=2013-03-15"' in run.text


def test_the_plugin_puts_the_cost_report_in_the_browse_menu():
    from flightline_plugin import FlightlinePlugin

    (view,) = FlightlinePlugin.external_views
    assert view["href"] == "/flightline/costs/report" and view["destination"] == "nav"
    assert view["category"] == "browse" and view["name"] == "Flightline costs"
    # A url_route would frame the page; framed, its links lose the login (see the plugin).
    assert "url_route" not in view
