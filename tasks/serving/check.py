"""The serving check (what TFX calls infra validation), then the ``released`` alias.

The packaged Bento is started with ``bentoml serve`` on loopback (a free port, its own process
group, the prediction log off) and must:

1. report the packaged registry version on ``/model``;
2. answer every feature row of the version's test days (``/predict_batch``) with the offline
   model's probability, within ``TOLERANCE``;
3. answer ``serve_check_requests`` single-row requests (``/predict``), again equal to the
   offline model, with a p99 latency at or under ``serve_check_p99_ms``;
4. refuse a malformed request with a 400 and keep serving.

Only then may the ``released`` alias move to the Bento (:func:`tasks.serving.approval.release`), when a person approves
it in the Airflow UI or approval is off (:mod:`tasks.serving.approval`). Every check, passed or not, is kept in
the release history with its figures; a failed one raises :class:`ServingCheckFailed` with the
reason, keeps the previous release, and leaves the Bento in the store for inspection.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from tasks.localhost import dies_with_parent, free_port, process_tree
from tasks.results import Result
from tasks.serving.package import Packaged, bentoml_env, ensure_local
from tasks.settings import Settings
from tasks.training import registry

TOLERANCE = 1e-6


class ServingCheckFailed(ValueError):
    """The Bento did not pass its serving check; the message says which figure failed.
    ``transient`` is True when another attempt may pass (latency over the bound on a busy
    machine, a server that did not start), False when it cannot (predictions differ)."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class ServerFailed(RuntimeError):
    """``bentoml serve`` exited or never became ready (the message holds its log's tail)."""


@dataclass
class Release(Result):
    """The serving check's result: the figures, and the alias when the Bento was released."""

    bento: str
    version: str
    passed: bool
    reason: str
    figures: dict
    record: str  # URI of this check (or of the approval decision) in the release history
    alias: dict | None = None
    approval: str = ""  # who approved it and when, or that approval was off


@dataclass
class Server:
    url: str  # http://127.0.0.1:<port>
    proc: subprocess.Popen  # the process group's leader


@contextmanager
def serving(bento: str, settings: Settings, *, port: int | None = None, prediction_log: bool = False,
            ready_timeout_s: float = 180, env: dict | None = None) -> Iterator[Server]:
    """``bentoml serve BENTO`` on 127.0.0.1 while the block runs, once ready. Every process of
    the server is stopped on the way out (SIGINT, then SIGKILL), none left behind."""
    import requests

    port = port or free_port()
    exe = Path(sys.executable).with_name("bentoml")
    extra = {"FLIGHTLINE_PREDICTION_LOG": "on" if prediction_log else "off", **(env or {})}
    with tempfile.NamedTemporaryFile("w+", prefix="bentoml-serve-", suffix=".log") as log:
        proc = subprocess.Popen(
            [str(exe) if exe.exists() else "bentoml", "serve", bento, "--host", "127.0.0.1",
             "--port", str(port)],
            env=bentoml_env(settings, **extra), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=tempfile.gettempdir(),
            preexec_fn=dies_with_parent(signal.SIGTERM))
        # (a new session keeps a Ctrl-C meant for the caller from reaching the server directly;
        # if the caller is killed, the server is told to stop its workers and exit)
        url = f"http://127.0.0.1:{port}"

        def tail() -> str:
            log.flush()
            return "\n".join(Path(log.name).read_text(errors="replace").splitlines()[-20:])

        try:
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if proc.poll() is not None:
                    raise ServerFailed(f"bentoml serve {bento} exited ({proc.returncode}):\n{tail()}")
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):  # still starting
                    pass
                if time.monotonic() > deadline:
                    raise ServerFailed(f"bentoml serve {bento} not ready after {ready_timeout_s:.0f} s:\n{tail()}")
                time.sleep(0.25)
            yield Server(url, proc)
        finally:
            _stop(proc)


def server_processes(proc: subprocess.Popen) -> list:
    """The server's processes: ``bentoml serve``, its circus arbiter and the workers (each of
    those in a session of its own, so a process group does not reach them)."""
    import psutil

    procs = []
    for pid in sorted(process_tree([proc.pid])):
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return procs


def _stop(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGINT to every process of the server (workers flush their prediction log on the way
    out), then SIGKILL whatever is left after ``grace_s``."""
    import psutil

    procs = server_processes(proc)
    for p in procs:
        try:
            p.send_signal(signal.SIGINT)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    if proc.poll() is None:
        proc.wait(timeout=10)


def _test_rows(version: str, settings: Settings):
    from tasks.features.staging import read_features

    card = registry.show(version, settings)
    return read_features([date.fromisoformat(d) for d in card["split"]["test_days"]], settings)


def measure(url: str, version: str, df, offline: np.ndarray, settings: Settings) -> dict:
    """The check's figures for a running server (nothing decided here)."""
    import requests

    from tasks.serving.schema import to_requests

    rows = to_requests(df)
    session = requests.Session()
    served_version = session.post(f"{url}/model", json={}, timeout=30).json().get("version")
    batch = settings.serve_max_batch_size
    online = []
    for i in range(0, len(rows), batch):
        r = session.post(f"{url}/predict_batch", json={"rows": rows[i:i + batch]}, timeout=60)
        if r.status_code != 200:
            raise ServingCheckFailed(f"/predict_batch answered {r.status_code}: {r.text[:300]}")
        online.extend(r.json())
    online_arr = np.asarray(online, dtype="float64")
    n = min(settings.serve_check_requests, len(rows))
    latencies, single = [], []
    for row in rows[:n]:
        t = time.perf_counter()
        r = session.post(f"{url}/predict", json={"row": row}, timeout=30)
        latencies.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise ServingCheckFailed(f"/predict answered {r.status_code}: {r.text[:300]}")
        single.append(r.json()["late_probability"])
    bad = session.post(f"{url}/predict", json={"row": {**rows[0], "no_such_field": 1}}, timeout=30)
    alive = session.get(f"{url}/readyz", timeout=10).status_code
    lat = np.asarray(latencies)
    return {
        "served_version": served_version,
        "rows": len(rows),
        "max_abs_diff_batch": float(np.max(np.abs(online_arr - offline))) if len(rows) else 0.0,
        "max_abs_diff_single": float(np.max(np.abs(np.asarray(single) - offline[:n]))) if n else 0.0,
        "single_requests": n,
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if n else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if n else None,
        "max_ms": round(float(lat.max()), 3) if n else None,
        "bad_request_status": bad.status_code,
        "ready_after_bad_request": alive,
    }


def verdict(figures: dict, version: str, settings: Settings) -> str | None:
    """None when the figures pass; else the first failure, named."""
    if figures["served_version"] != version:
        return f"the Bento serves version {figures['served_version']!r}, not {version!r}"
    if figures["rows"] == 0:
        return "no test-day rows to compare"
    for key in ("max_abs_diff_batch", "max_abs_diff_single"):
        if not figures[key] <= TOLERANCE:
            return (f"served predictions differ from the offline model: {key} "
                    f"{figures[key]:.3g} > {TOLERANCE:g} over {figures['rows']} test-day rows")
    if figures["p99_ms"] > settings.serve_check_p99_ms:
        return (f"p99 latency {figures['p99_ms']:.1f} ms over {figures['single_requests']} single "
                f"requests exceeds the bound {settings.serve_check_p99_ms} ms")
    if figures["bad_request_status"] != 400 or figures["ready_after_bad_request"] != 200:
        return (f"a malformed request got {figures['bad_request_status']} (want 400) and readiness "
                f"then answered {figures['ready_after_bad_request']}")
    return None


@dataclass
class Checked(Result):
    """A Bento that passed its serving check, not released yet: what a reviewer needs to decide
    (the check's figures, and the candidate against the released model on the same test days)."""

    bento: str
    version: str
    figures: dict
    record: str  # URI of this check in the release history
    comparison: dict  # {"candidate": metrics, "released": metrics | None, "baselines": {...}, ...}
    archive: str = ""
    labels: dict = field(default_factory=dict)


def compare_with_released(version: str, df, offline: np.ndarray, settings: Settings) -> dict:
    """The candidate and the released model scored on the same rows (the candidate's test
    days), with the candidate's baselines: ROC AUC, PR AUC, log loss, Brier, ECE."""
    from tasks.feature_contract import LABEL
    from tasks.training import evaluate

    card = registry.show(version, settings)
    y = df[LABEL].to_numpy()
    out = {"test_days": card["split"]["test_days"], "train_days": card["split"].get("train_days", []),
           "candidate": evaluate.metrics(y, offline), "baselines": card.get("baselines", {}),
           "released_version": None, "released": None, "plots": card.get("plots") or {}}
    rel = registry.released(settings)
    if rel and rel["version"] != version:
        out["released_version"] = rel["version"]
        try:
            other = registry.load_model(rel["version"], settings).predict_proba(df)
            out["released"] = evaluate.metrics(y, np.asarray(other, dtype="float64"))
        except Exception as exc:  # the reviewer is told; the check itself does not depend on it
            out["released_error"] = f"{type(exc).__name__}: {exc}"
    return out


def check_serving(packaged: Packaged, settings: Settings) -> Checked:
    """Serve the Bento on loopback and check it (parity, p99, bad requests); the check is kept in
    the release history either way. Nothing is released here (see :func:`release`)."""
    started = time.perf_counter()
    ensure_local(packaged, settings)
    df = _test_rows(packaged.version, settings)
    offline = np.asarray(registry.load_model(packaged.version, settings).predict_proba(df),
                         dtype="float64")
    t = time.perf_counter()
    try:
        with serving(packaged.bento, settings) as server:
            startup = time.perf_counter() - t
            figures = measure(server.url, packaged.version, df, offline, settings)
        reason = verdict(figures, packaged.version, settings)
        transient = reason is not None and "latency" in reason
    except (ServerFailed, ServingCheckFailed) as exc:
        figures, startup, reason = {}, time.perf_counter() - t, str(exc)
        transient = isinstance(exc, ServerFailed)
    figures |= {"startup_s": round(startup, 2), "check_s": round(time.perf_counter() - started, 2),
                "p99_bound_ms": settings.serve_check_p99_ms, "tolerance": TOLERANCE}
    record = {"kind": "check", "bento": packaged.bento, "version": packaged.version,
              "archive": packaged.archive, "labels": packaged.labels,
              "checked_at": datetime.now(UTC).isoformat(),
              "passed": reason is None, "reason": reason or "passed", "figures": figures}
    uri = registry.record_release_check(record, settings)
    if reason is not None:
        raise ServingCheckFailed(
            f"serving check of {packaged.bento} ({packaged.version}) failed: {reason}. The previous "
            f"release stays; the Bento is kept for inspection (record: {uri})", transient=transient)
    return Checked(bento=packaged.bento, version=packaged.version, figures=figures, record=uri,
                   comparison=compare_with_released(packaged.version, df, offline, settings),
                   archive=packaged.archive, labels=packaged.labels)
