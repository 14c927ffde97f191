"""Flightline under a live Airflow, as users run it: api-server, scheduler, dag-processor and
triggerer (``make airflow``'s supervisor) on a temporary Airflow home, once with the SQLite
metadata DB and once with the local PostgreSQL server, driven only through the public REST API
with a login token.

One module-scoped stack; the tests run in order and share it:
daily run for a day -> its Data Docs links behind the login -> a hostile report in Chromium,
refused the login and the REST API by its sandbox -> a training run (XGBoost and
Horovod) that ends with the scheduler still healthy and the run's note written -> a 5-day
backfill at 3 active runs, each day monitored once by the monitoring DAG and judged in day
order, then the same backfill again (no new run, byte-identical partitions) -> one SIGINT
stops everything within the grace period with no process left.
Later stages (serving, monitoring, cost) add their DAGs here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

from flightline_airflow.api import parse_note  # noqa: E402
from live_airflow import LiveAirflow  # noqa: E402

from tasks.flows import daily, training  # noqa: E402
from tasks.localhost import process_tree  # noqa: E402

FLOW = daily.FLOW

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

DAY = "2013-03-15"
HISTORY = ("2013-03-04", "2013-03-14")  # features the training window needs besides DAY
BACKFILL = ("2013-03-16", "2013-03-21")  # run_after range: logical days 03-16 .. 03-20
BACKFILL_DAYS = [f"2013-03-{d}" for d in range(16, 21)]
BIN = Path(sys.executable).parent


def _flightline(*args: str, env: dict) -> None:
    out = subprocess.run([str(BIN / "flightline"), *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def _states(af: LiveAirflow, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in af.task_instances(dag_id, run_id)}


def _digest(root: Path, days: list[str]) -> str:
    h = hashlib.sha256()
    for zone in ("features", "raw"):
        for d in days:
            for p in sorted((root / zone / f"dt={d}").rglob("*")):
                if p.is_file():
                    h.update(p.relative_to(root).as_posix().encode())
                    h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request, tmp_path_factory):
    """The stack on either metadata DB: SQLite (the default) or the local PostgreSQL server
    (``make airflow DB=postgres``); every test below runs on both."""
    work = tmp_path_factory.mktemp(f"live-{request.param}")
    data = work / "data"
    env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml"),
           # spot prices from the project's snapshot, whatever credentials this machine has
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           # every monitored day breaches the drift rule: its streak counts the days in order
           "FLIGHTLINE_RETRAIN_DRIFT_SHARE": "0", "FLIGHTLINE_RETRAIN_CONSECUTIVE_DAYS": "3",
           "FLIGHTLINE_RETRAIN_COOLDOWN_DAYS": "7",
           # training only when a test starts it (its weekly run would start at once)
           "FLIGHTLINE_TRAINING_SCHEDULE": "off",
           # deadlines every run misses: the alerts are checked (a day's run takes over 6 s)
           "FLIGHTLINE_FEATURES_DEADLINE_MINUTES": "0.1", "FLIGHTLINE_TRAINING_DEADLINE_MINUTES": "0.1"}
    import os

    full = dict(os.environ, **env)
    first_landing = "2013-03-03"
    _flightline("land", "--date", first_landing, "--to", HISTORY[1], env=full)
    _flightline("features-range", "--from", HISTORY[0], "--to", HISTORY[1], env=full)
    # Schedules on, as users run it (the monitoring DAG's runs are created by the scheduler
    # from the partitioned features events). With catchup off, the daily DAG's schedule makes
    # one run at once, for yesterday (a replayed 2013 day): let it and its monitoring run (no
    # model yet: skipped) finish before the tests start.
    af = LiveAirflow(work, env, db=request.param, schedules=True)
    try:
        af.start()
        af.data = data
        af.wait_dags("flightline_daily", "flightline_training", "flightline_monitoring")
        af.wait_nightly()
        yield af
    finally:
        af.stop()


@pytest.fixture(scope="module")
def daily_run(live):
    run = live.trigger("flightline_daily", conf={"day": DAY})
    return live.wait_run("flightline_daily", run["dag_run_id"], timeout=600)


def test_daily_run_succeeds_and_says_which_day(live, daily_run):
    states = _states(live, "flightline_daily", daily_run["dag_run_id"])
    assert states == dict.fromkeys(FLOW.task_ids, "success"), states
    assert daily_run["state"] == "success"
    note = parse_note(live.run("flightline_daily", daily_run["dag_run_id"])["note"])
    # Each task's section of the note: the day it processed, what it published, the summary.
    assert note["land_demo_drop"].startswith(f"Processing {DAY}"), note
    assert note["publish_features"].startswith(f"Processed {DAY}: "), note
    assert "feature rows" in note["publish_features"], note
    assert note["summarize_day"].startswith(f"{DAY}: ") and "arrived 15+ min late" in note["summarize_day"], note
    assert (live.data / "features" / f"dt={DAY}" / "_SUCCESS").exists()


def test_every_component_listens_on_loopback_and_task_logs_read(live, daily_run):
    """Nothing of the stack is reachable from another machine (the scheduler's and triggerer's
    log servers bound every interface: the stack skips them), and a task's log still opens."""
    import ipaddress

    import psutil

    stack = process_tree([live.proc.pid])
    listening = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in stack}
    def loopback(ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return (getattr(addr, "ipv4_mapped", None) or addr).is_loopback  # Java's ::ffff:127.0.0.1

    assert listening and all(loopback(ip) for ip, _ in listening), listening
    if live.db == "postgres":  # the metadata DB's server is the stack's, on loopback too
        from local_postgres import Cluster

        assert ("127.0.0.1", Cluster(live.home).port) in listening, listening
        assert "postgresql+psycopg2://" in (live.home / "airflow.cfg").read_text()
        assert (live.home / ".postgres_password").stat().st_mode & 0o077 == 0
    rid = quote(daily_run["dag_run_id"], safe="")
    log = live.request("GET", f"/api/v2/dags/flightline_daily/dagRuns/{rid}/taskInstances/"
                              "publish_features/logs/1", params={"full_content": "true"})
    assert f"Processed {DAY}" in json.dumps(log), str(log)[:2000]


def test_gate_links_open_data_docs_behind_the_login(live, daily_run):
    for task in ("raw_gate", "features_gate"):
        links = live.links("flightline_daily", daily_run["dag_run_id"], task)["extra_links"]
        url = links.get("Data Docs")
        assert url == f"/flightline/reports/data_docs/dt={DAY}/index.html", links
        status, body, headers = live.request("GET", url, raw=True)
        assert status == 200 and headers["content-type"].startswith("text/html")
        html = body.decode()
        assert "raw_flights" in html and "features" in html
        # Rendered offline: no stylesheet or script from a CDN, the local copies are served.
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
        assert "/flightline/static/" in html
        assert live.request("GET", url, token="", raw=True)[0] == 401
        assert headers["x-frame-options"] == "SAMEORIGIN" and headers["x-content-type-options"] == "nosniff"
    # Logged in, bad paths are 404, never 500, and nothing outside the reports zone is served:
    # a control character, a symlink placed in the data root pointing out of it.
    (live.data / "reports" / "passwd.html").symlink_to("/etc/passwd")
    for path in ("/flightline/reports/data_docs/%00index.html", "/flightline/reports/passwd.html",
                 "/flightline/reports/data_docs/%0a"):
        assert live.request("GET", path, raw=True)[0] == 404, path
    # A run the cost ledger has never seen has no cost page (it said "$0.0000 for 0 attempts").
    assert live.request("GET", "/flightline/costs/flightline_daily/no-such-run", raw=True)[0] == 404
    # The Data Docs home lists the day's site.
    status, body, _ = live.request("GET", "/flightline/reports/data_docs/index.html", raw=True)
    assert status == 200 and f'href="dt={DAY}/index.html"' in body.decode()
    # Every report and cost route needs the login, missing pages included; the vendored
    # open-source assets are public (a sandboxed page's requests carry no login); the app
    # exposes no API docs at all.
    for path in ("/flightline/reports/data_docs/index.html", "/flightline/reports/nope.html"):
        assert live.request("GET", path, token="", raw=True)[0] == 401, path
    assert live.request("GET", "/flightline/static/nope.css", token="", raw=True)[0] == 404
    assert live.request("GET", "/flightline/static/%2e%2e/%2e%2e/reports_app.py", token="",
                        raw=True)[0] == 404
    for path in ("/flightline/docs", "/flightline/openapi.json", "/flightline/redoc"):
        assert live.request("GET", path, token="", raw=True)[0] == 404, path
        assert live.request("GET", path, raw=True)[0] == 404, path
    # Logged in: vendored assets are served, traversal is refused, the UI cookie works too.
    css = "/flightline/static/bootstrap@4.3.1/dist/css/bootstrap.min.css"
    status, _, headers = live.request("GET", css, raw=True)
    assert status == 200 and headers["content-type"].startswith("text/css"), (status, headers)
    assert live.request("GET", "/flightline/reports/../airflow.cfg", raw=True)[0] == 404
    req = urllib.request.Request(live.url + "/flightline/reports/data_docs/index.html",
                                 headers={"Cookie": f"_token={live.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


@pytest.fixture(scope="module")
def browser():
    """The distribution's Chromium driven by Playwright (``make install`` adds it as root)."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH: apt-get install chromium (make install does as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


def _logged_in(live: LiveAirflow, browser):
    """A browser context holding the UI's login cookie, as Airflow's login sets it."""
    context = browser.new_context()
    context.add_cookies([{"name": "_token", "value": live.token, "url": live.url,
                          "httpOnly": True, "sameSite": "Lax"}])
    return context


#: A report whose script tries everything a hostile page would: read the login cookie and the
#: UI's storage, call the REST API (read, and trigger a run), load a page that needs the login.
HOSTILE_REPORT = """<!doctype html><html><head><title>hostile</title>
<link rel="stylesheet" href="/flightline/static/bootstrap@4.3.1/dist/css/bootstrap.min.css">
<script src="/flightline/static/jquery@3.7.1/dist/jquery.min.js"></script></head>
<body><pre id="out">running</pre><script>
(async () => {
  const out = {jquery: typeof window.jQuery, origin: String(window.origin)};
  try { out.cookie = document.cookie; } catch (e) { out.cookie = "refused: " + e.name; }
  try { out.storage = String(window.localStorage.length); } catch (e) { out.storage = "refused: " + e.name; }
  const api = "/api/v2/dags/flightline_daily/dagRuns";
  const calls = {read: {}, trigger: {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify({logical_date: null, conf: {day: "2013-03-02"}})},
                 simple: {method: "POST", mode: "no-cors", body: "logical_date=null"}};
  for (const [name, init] of Object.entries(calls)) {
    try { const r = await fetch(api, {credentials: "include", ...init}); out[name] = "HTTP " + r.status; }
    catch (e) { out[name] = "refused: " + e.name; }
  }
  try { out.beacon = String(navigator.sendBeacon(api, "x")); } catch (e) { out.beacon = "refused: " + e.name; }
  out.image = await new Promise(done => {
    const img = new Image();
    img.onload = () => done("loaded"); img.onerror = () => done("refused");
    img.src = "/flightline/reports/probe.png";
  });
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script></body></html>"""


def test_a_report_page_cannot_act_as_the_logged_in_user(live, daily_run, browser):
    """Report pages are sandboxed (CSP): a report's script cannot read the login cookie or call
    the REST API as the user, and its own requests carry no login; Data Docs still render, their
    vendored assets loaded from the public static route."""
    import base64

    reports = live.data / "reports"
    (reports / "hostile.html").write_text(HOSTILE_REPORT)
    (reports / "probe.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="))
    status, _, headers = live.request("GET", "/flightline/reports/hostile.html", raw=True)
    assert status == 200 and "sandbox" in headers["content-security-policy"], headers
    runs_before = len(live.runs("flightline_daily"))
    context = _logged_in(live, browser)
    page = context.new_page()
    answers: dict[str, int] = {}
    page.on("response", lambda r: answers.__setitem__(r.url.removeprefix(live.url), r.status))
    console: list[str] = []  # Chromium's word on each refusal
    page.on("console", lambda m: console.append(m.text))
    page.goto(live.url + "/flightline/reports/hostile.html")  # a top-level visit: logged in
    page.wait_for_function("document.getElementById('out').textContent !== 'running'", timeout=30_000)
    out = json.loads(page.text_content("#out"))
    assert out["jquery"] == "function", out  # the vendored script loaded in the sandbox
    assert out["origin"] == "null", out  # an opaque origin of its own
    assert out["cookie"].startswith("refused") and live.token not in json.dumps(out), out
    assert out["storage"].startswith("refused"), out
    for call in ("read", "trigger", "simple"):  # connect-src 'none'
        assert out[call].startswith("refused"), out
    assert len(live.runs("flightline_daily")) == runs_before
    # The page's own request for a report image carried no login, though the same image opens
    # in a top-level visit of the same browser.
    assert out["image"] == "refused", (out, answers, console)
    visit = context.new_page().goto(live.url + "/flightline/reports/probe.png")
    assert visit.status == 200 and visit.headers["content-type"] == "image/png"
    # A Data Docs page in the same sandbox: every vendored asset served, none refused.
    page.goto(live.url + f"/flightline/reports/data_docs/dt={DAY}/index.html")
    page.wait_for_load_state("load")
    static = {u: s for u, s in answers.items() if u.startswith("/flightline/static/")}
    assert len(static) >= 5 and set(static.values()) == {200}, static
    assert page.evaluate("typeof window.jQuery") == "function"
    assert "raw_flights" in page.content() or "features" in page.content()
    context.close()


def _alerts(af: LiveAirflow, run_id: str) -> list[str]:
    """The deadline alerts the triggerer logged for ``run_id`` (FLIGHTLINE_NOTIFY=log)."""
    log = af.home / "logs" / "stack" / "triggerer.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines()
            if "Flightline deadline missed" in line and f"run {run_id} " in line]


def _alert_delay(line: str) -> float:
    """Seconds from the deadline to its alert, as the alert states them."""
    from datetime import datetime

    due, alerted = re.search(r"due ([^;]+); alerted ([^)]+)\)", line).groups()
    return (datetime.fromisoformat(alerted) - datetime.fromisoformat(due)).total_seconds()


def _wait_state(af: LiveAirflow, dag_id: str, run_id: str, task_id: str, state: str,
                timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while (now := _states(af, dag_id, run_id).get(task_id)) != state:
        assert af.run(dag_id, run_id)["state"] in ("queued", "running"), _states(af, dag_id, run_id)
        assert time.monotonic() < deadline, (task_id, now)
        time.sleep(2)


def _answer(af: LiveAirflow, run_id: str, option: str, comment: str) -> dict:
    """What a reviewer's click in Required actions sends."""
    rid = quote(run_id, safe="")
    return af.request("PATCH", f"/api/v2/dags/flightline_training/dagRuns/{rid}/taskInstances/"
                               "approve_release/-1/hitlDetails",
                      {"chosen_options": [option], "params_input": {"comment": comment}})


def _released(af: LiveAirflow) -> dict | None:
    path = af.data / "models" / "registry" / "released.json"
    return json.loads(path.read_text()) if path.exists() else None


def _lineage_from_drop_to_bento(af: LiveAirflow, daily_id: str, training_id: str, bento: str) -> None:
    """The OpenLineage events the tasks emitted (the file transport): one COMPLETE event per
    task of both runs, and a path of datasets from the day's flights drop to the released Bento."""
    events = [json.loads(line) for line in
              (af.home / "openlineage" / "events.jsonl").read_text().splitlines() if line.strip()]

    def completed(dag_id: str, run_id: str) -> dict[str, dict]:
        out = {}
        for e in events:
            airflow = e["run"]["facets"].get("airflow", {})
            if e["eventType"] == "COMPLETE" and airflow.get("dagRun", {}).get("run_id") == run_id:
                out[e["job"]["name"].split(".", 1)[1]] = e
        return out

    daily_events = completed("flightline_daily", daily_id)
    train_events = completed("flightline_training", training_id)
    assert set(daily_events) == set(daily.FLOW.task_ids), sorted(daily_events)
    assert set(train_events) == set(training.FLOW.task_ids), sorted(train_events)
    edges: dict[str, set[str]] = {}
    for e in [*daily_events.values(), *train_events.values()]:
        for i in e["inputs"]:
            edges.setdefault(f"{i['namespace']}:{i['name']}", set()).update(
                f"{o['namespace']}:{o['name']}" for o in e["outputs"])
    start = f"file:{af.data / 'landing' / f'dt={DAY}' / 'flights.csv'}"
    goal = f"bentoml:{bento}"
    seen, todo, came = {start}, [start], {}
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                came[nxt] = node
                todo.append(nxt)
    assert goal in seen, (start, goal, sorted(seen))
    path, node = [goal], goal
    while node != start:
        node = came[node]
        path.append(node)
    print("lineage:", " <- ".join(path))
    assert any("/features/dt=" in p for p in path) and any("/models/registry/versions/" in p for p in path), path


def test_training_run_waits_for_approval_keeps_the_scheduler_alive_and_notes_it(live, daily_run):
    run = live.trigger("flightline_training", logical_date=f"{DAY}T12:00:00Z",
                       conf={"window_days": 14, "model_family": "both", "horovod_workers": 2,
                             "budget_minutes": 10, "release_approval": "on"})
    rid = run["dag_run_id"]
    # The release waits for a person: the run parks its approval task (no worker slot held).
    _wait_state(live, "flightline_training", rid, "approve_release", "awaiting_input")
    detail = live.request("GET", f"/api/v2/dags/flightline_training/dagRuns/{quote(rid, safe='')}/"
                                 "taskInstances/approve_release/-1/hitlDetails")
    assert detail["subject"].startswith("Release flightline:"), detail
    for shown in ("ROC AUC", "PR AUC", "ECE", "baseline", "p99", "Training window", "Cost $",
                  "/flightline/models/"):
        assert shown in detail["body"], (shown, detail["body"])
    plot = re.search(r"\((/flightline/models/[^)]+\.png)\)", detail["body"]).group(1)
    status, png = live.request("GET", plot, raw=True)[:2]
    assert status == 200 and png[:4] == b"\x89PNG", status  # the evaluation plots behind the login
    assert live.request("GET", plot, token="", raw=True)[0] == 401
    assert _released(live) is None  # nothing released while it waits
    # The training run outlasted its 6-s deadline long ago: alerted within 60 s of it.
    assert _alerts(live, rid) and 0 <= _alert_delay(_alerts(live, rid)[0]) <= 60, _alerts(live, rid)

    clicked = time.monotonic()
    _answer(live, rid, "Approve", "parity and AUC fine")
    while (_released(live) or {}).get("approval", {}).get("by") != "admin":
        assert time.monotonic() - clicked < 10, "released did not move within 10 s of the approval"
        time.sleep(0.2)
    print(f"released moved {time.monotonic() - clicked:.1f} s after the approval")
    done = live.wait_run("flightline_training", rid, timeout=300)
    states = _states(live, "flightline_training", rid)
    assert states == dict.fromkeys(training.FLOW.task_ids, "success"), states
    assert done["state"] == "success"
    note = parse_note(live.run("flightline_training", rid)["note"])
    assert note["decide_promotion"].startswith("[Manual run] Promoted: "), note
    assert note["approve_release"].startswith("Release approved by admin at "), note
    assert "parity and AUC fine" in note["approve_release"], note
    assert "Released flightline:" in note["release"], note  # passed its check under the scheduler
    history = json.loads(subprocess.run(
        [str(BIN / "flightline"), "models", "releases"], env=dict(os.environ, **live.env),
        capture_output=True, text=True, check=True).stdout)
    assert [(h["kind"], h.get("decision")) for h in history] == [("check", None), ("decision", "approved")]
    assert history[-1]["by"] == "admin" and history[-1]["comment"] == "parity and AUC fine"
    _lineage_from_drop_to_bento(live, daily_run["dag_run_id"], rid, history[-1]["bento"])
    # The scheduler outlives the run's end (the old listener killed it right there): healthy
    # through a few heartbeats, never restarted by the supervisor.
    time.sleep(12)
    health = live.health()
    assert health["scheduler"]["status"] == "healthy", health
    assert health["dag_processor"]["status"] == "healthy", health
    assert health["triggerer"]["status"] == "healthy", health
    assert "exited" not in live.stack_output(), live.stack_output()
    # The run's cost: appended to its note when it ended (by the scheduler's listener, through
    # the REST API), and a Cost button on every task opening the ledger behind the login.
    deadline = time.time() + 60
    while "cost" not in (note := parse_note(live.run("flightline_training", rid)["note"])):
        assert time.time() < deadline, note
        time.sleep(2)
    assert note["cost"].startswith("Cost $") and "saved $" in note["cost"], note
    assert "Released flightline:" in note["release"], note  # kept beside the cost
    url = live.links("flightline_training", rid, "train_xgboost")["extra_links"]["Cost"]
    assert url == f"/flightline/costs/flightline_training/{quote(rid, safe='')}", url
    status, body = live.request("GET", url, raw=True)[:2]
    assert status == 200 and b"train_torch_horovod" in body and b"spot" in body, body[:500]
    assert live.request("GET", url, token="", raw=True)[0] == 401


def test_a_rejected_release_keeps_the_current_one_and_says_who_and_why(live, daily_run):
    before = _released(live)
    assert before is not None, "runs after the approved release"
    run = live.trigger("flightline_training", logical_date=f"{DAY}T13:00:00Z",
                       conf={"window_days": 14, "model_family": "xgboost", "budget_minutes": 5,
                             "force_promote": True, "release_approval": "on"})
    rid = run["dag_run_id"]
    _wait_state(live, "flightline_training", rid, "approve_release", "awaiting_input")
    _answer(live, rid, "Reject", "wait for Monday")
    done = live.wait_run("flightline_training", rid, timeout=300)
    states = _states(live, "flightline_training", rid)
    assert done["state"] == "success" and states["approve_release"] == "success", states
    assert states["release"] == "skipped", states
    assert _released(live) == before  # the current release stays
    note = parse_note(live.run("flightline_training", rid)["note"])
    assert note["approve_release"].startswith("Release rejected by admin at "), note
    assert "wait for Monday" in note["release"] and "NOT released" in note["release"], note
    last = sorted((live.data / "models" / "registry" / "releases").glob("*.json"))[-1]
    record = json.loads(last.read_text())
    assert (record["kind"], record["decision"], record["by"], record["comment"]) == (
        "decision", "rejected", "admin", "wait for Monday"), record
    # The daily run of the fixture missed its 6-s deadline too: the alert names it.
    alerts = _alerts(live, daily_run["dag_run_id"])
    assert alerts and "the day's features published" in alerts[0], alerts


def test_backfill_then_the_same_backfill_again_changes_nothing(live, daily_run):
    """5 days at 3 active runs: their features events arrive in any order and close together;
    the monitoring DAG still monitors each day exactly once, and the policy counts the days'
    streak in day order (every day breaches here: the third requests, the next two cool down)."""
    # The retrain request queues a training run: not here (it would only load the machine).
    live.request("PATCH", "/api/v2/dags/flightline_training", {"is_paused": True})
    bf = live.backfill("flightline_daily", *BACKFILL, max_active_runs=3)
    time.sleep(3)
    runs = [r for r in live.runs("flightline_daily") if r["run_type"] == "backfill"]
    assert len(runs) == 5, [r["dag_run_id"] for r in runs]
    finished = live.wait_runs("flightline_daily", [r["dag_run_id"] for r in runs], timeout=900)
    assert {r["state"] for r in finished} == {"success"}, [(r["dag_run_id"], r["state"]) for r in finished]
    days = sorted(r["logical_date"][:10] for r in finished)
    assert days == BACKFILL_DAYS, days
    before = _digest(live.data, days)

    # One monitoring run per published day (DAY's, before any model, skips its scoring).
    monitoring = live.wait_monitoring([*live.monitored, DAY, *BACKFILL_DAYS])
    assert {r["state"] for r in monitoring} == {"success"}, monitoring
    import pandas as pd

    table = pd.read_parquet(live.data / "reports" / "monitoring" / "metrics.parquet")
    recorded = sorted(str(d)[:10] for d in table["day"])
    assert recorded == BACKFILL_DAYS, recorded  # each day once, none skipped
    requested = sorted(str(d)[:10] for d in table[table["retrain"]]["day"])
    assert requested == ["2013-03-18"], table[["day", "retrain", "retrain_reason"]]
    notes = {r["partition_key"]: parse_note(r["note"] or "") for r in live.runs("flightline_monitoring")}
    # One run made the request: 03-18's own, or a run of a day before it that arrived later and
    # completed its streak (the days are monitored in whatever order the backfill published them).
    requests = [n["decide_retrain"] for n in notes.values()
                if "RETRAIN requested" in n.get("decide_retrain", "")]
    assert len(requests) == 1 and "up to 2013-03-18" in requests[0], notes
    assert "not monitored: " in notes[DAY]["score_day"], notes  # no model yet: the note says so

    try:
        again = live.backfill("flightline_daily", *BACKFILL, max_active_runs=2)
    except Exception as exc:  # Airflow refuses a backfill with nothing to run: also fine
        again = {"refused": str(exc)}
    time.sleep(10)
    runs_after = [r for r in live.runs("flightline_daily") if r["run_type"] == "backfill"]
    assert len(runs_after) == 5, (again, [r["dag_run_id"] for r in runs_after])
    assert all(r["state"] == "success" for r in runs_after)
    assert _digest(live.data, days) == before
    assert len(live.runs("flightline_monitoring")) == len(live.monitored) + 6  # none more
    assert bf["dag_id"] == "flightline_daily"

    # The requesting day published again (its event posted as publish_features emits it): one
    # more monitoring run; the day still counts once and its request is not made again.
    live.post_features_event("2013-03-18")
    runs = live.wait_monitoring([*live.monitored, DAY, *BACKFILL_DAYS, "2013-03-18"])
    assert {r["state"] for r in runs} == {"success"}, runs
    table = pd.read_parquet(live.data / "reports" / "monitoring" / "metrics.parquet")
    assert sorted(str(d)[:10] for d in table["day"]) == BACKFILL_DAYS
    assert sorted(str(d)[:10] for d in table[table["retrain"]]["day"]) == ["2013-03-18"]
    rerun = parse_note(runs[-1]["note"] or "").get("decide_retrain", "")  # runs come by id
    assert rerun.startswith("2013-03-18: ") and "no retrain" in rerun, rerun


def test_one_sigint_stops_everything(live):
    """Even after a component died hard and was restarted: what the dead scheduler left (its
    forkserver's idle LocalExecutor workers, no longer anyone's children) is stopped too."""
    import psutil

    stack = psutil.Process(live.proc.pid)
    scheduler = next(p for p in stack.children()
                     if p.status() != psutil.STATUS_ZOMBIE and "scheduler" in " ".join(p.cmdline()))
    orphans_to_be = [p.pid for p in scheduler.children(recursive=True)]
    # On SQLite the scheduler may already have exited once on its own (ObjectDeletedError while
    # a backfill is created, restarted by the supervisor): wait for this kill's line.
    exits = live.stack_output().count("scheduler exited")
    scheduler.kill()
    deadline = time.time() + 60
    while live.stack_output().count("scheduler exited") <= exits:
        assert time.time() < deadline, live.stack_output()
        time.sleep(0.5)
    assert "restarting" in live.stack_output()
    live.stop()
    assert not [p for p in orphans_to_be if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], orphans_to_be
    assert live.stop_seconds is not None and live.stop_seconds < 15, live.stop_seconds
    assert live.left_behind == [], live.left_behind
    assert "stopped in" in live.stack_output()
