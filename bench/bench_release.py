"""What the release approval costs a training run, under the live scheduler.

One local stack (`make airflow`, LocalExecutor) on a fresh Airflow home and data root with 12
days of features; then training runs of the same window (XGBoost, force-promoted, so each
packages, checks and releases a Bento):

1. approval ``off`` (the unattended default): the time from the serving check's end to the
   release's end (the approval task and the release task, with the scheduler's hand-offs),
   against the run's wall time;
2. approval ``on``, answered through the REST API as soon as the run waits: the time from the
   answer to ``released`` moving and to the run's end.

    .venv/bin/python bench/bench_release.py [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "infra"), str(ROOT / "plugins"), str(ROOT)]

from live_airflow import LiveAirflow  # noqa: E402

BIN = Path(sys.executable).parent
CONF = {"window_days": 14, "model_family": "xgboost", "budget_minutes": 5, "force_promote": True}


def _t(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else float("nan")


def _tis(af: LiveAirflow, run_id: str) -> dict[str, dict]:
    return {t["task_id"]: t for t in af.task_instances("flightline_training", run_id)}


def unattended(af: LiveAirflow, n: int) -> list[dict]:
    out = []
    for i in range(n):
        run = af.trigger("flightline_training", logical_date=f"2013-03-15T{10 + i:02d}:00:00Z",
                         conf={**CONF, "release_approval": "off"})
        done = af.wait_run("flightline_training", run["dag_run_id"], timeout=900)
        assert done["state"] == "success", done
        tis = _tis(af, run["dag_run_id"])
        out.append({"run_s": _t(done["end_date"]) - _t(done["start_date"]),
                    "after_check_s": _t(tis["release"]["end_date"]) - _t(tis["check_serving"]["end_date"]),
                    "approval_task_s": tis["approve_release"]["duration"] or 0.0})
    return out


def answered(af: LiveAirflow, n: int) -> list[dict]:
    released = af.data / "models" / "registry" / "released.json"
    out = []
    for i in range(n):
        run = af.trigger("flightline_training", logical_date=f"2013-03-15T{20 + i:02d}:00:00Z",
                         conf={**CONF, "release_approval": "on"})
        rid = run["dag_run_id"]
        while _tis(af, rid)["approve_release"]["state"] != "awaiting_input":
            time.sleep(0.5)
        t = time.monotonic()
        af.request("PATCH", f"/api/v2/dags/flightline_training/dagRuns/{quote(rid, safe='')}/"
                            "taskInstances/approve_release/-1/hitlDetails",
                   {"chosen_options": ["Approve"], "params_input": {"comment": "bench"}})
        while json.loads(released.read_text()).get("approval", {}).get("comment") != "bench" or \
                json.loads(released.read_text())["version"] == (out[-1]["version"] if out else None):
            time.sleep(0.1)
        moved = time.monotonic() - t
        done = af.wait_run("flightline_training", rid, timeout=300)
        out.append({"moved_s": moved, "run_end_s": time.monotonic() - t,
                    "version": json.loads(released.read_text())["version"], "state": done["state"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="flightline-bench-release-") as tmp:
        work, data = Path(tmp), Path(tmp) / "data"
        env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml"),
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "",
               "AWS_SECRET_ACCESS_KEY": "", "FLIGHTLINE_TRAINING_SCHEDULE": "off"}
        full = dict(os.environ, **env)
        for cmd in (["land", "--date", "2013-03-03", "--to", "2013-03-15"],
                    ["features-range", "--from", "2013-03-04", "--to", "2013-03-15"]):
            subprocess.run([str(BIN / "flightline"), *cmd], env=full, check=True, capture_output=True)
        af = LiveAirflow(work, env)
        af.start()
        af.data = data
        try:
            af.wait_dags("flightline_training")
            off = unattended(af, args.runs)
            on = answered(af, args.runs)
        finally:
            af.stop()
    run_s = statistics.median(r["run_s"] for r in off)
    after = statistics.median(r["after_check_s"] for r in off)
    task = statistics.median(r["approval_task_s"] for r in off)
    print(f"approval off, {len(off)} runs: run {run_s:.1f} s; serving check's end to release's end "
          f"{after:.1f} s = {after / run_s:.3f} x the run (the approval task itself {task:.2f} s; "
          "the rest is the scheduler handing over to two more tasks and the alias move)")
    print(f"approval on, answered through the REST API, {len(on)} runs: released moved "
          f"{statistics.median(r['moved_s'] for r in on):.1f} s after the answer (max "
          f"{max(r['moved_s'] for r in on):.1f} s; target 10 s), the run ended after "
          f"{statistics.median(r['run_end_s'] for r in on):.1f} s")


if __name__ == "__main__":
    main()
