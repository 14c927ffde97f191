"""Monitoring over a stretch of 2013 under a live scheduler, with the loop closed.

What the README's "monitoring under Airflow" figures come from. A real Airflow (api-server,
scheduler, dag-processor, triggerer; SQLite) runs on a temporary home; the script:

1. publishes the features of the stretch and the 90 days before it (copied from an existing
   data root with ``--features-root``, else landed and built with ``flightline features-range``);
2. trains a first champion on the 90 days before the stretch and releases it;
3. posts one ``flightline_features`` Asset event per day of the stretch through the REST API,
   partitioned by the day, as ``publish_features`` does (the monitoring DAG runs once per
   partition, one run at a time), with the nightly daily DAG paused; each retrain request (an
   Asset event) starts ``flightline_training`` under the scheduler, which trains, decides the
   promotion, packages, checks and releases;
4. waits for every run, draws the trend picture and prints what the policy did, with the time
   each monitoring run took under the scheduler.

    .venv/bin/python bench/monitoring_backfill.py --from 2013-10-01 --to 2013-12-31 \\
        --png docs/img/monitoring-backfill.png

Run it alone (it keeps both cores busy for about half a minute per day).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
BIN = Path(sys.executable).parent

from live_airflow import LiveAirflow, task_seconds  # noqa: E402


def flightline(*args: str, env: dict) -> str:
    import os

    out = subprocess.run([str(BIN / "flightline"), *args], env={**os.environ, **env},
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"flightline {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def publish_features(first: date, last: date, data: Path, source: Path | None, env: dict) -> None:
    if source is not None:
        (data / "features").mkdir(parents=True, exist_ok=True)
        d = first
        while d <= last:
            part = source / "features" / f"dt={d.isoformat()}"
            if part.exists():
                shutil.copytree(part, data / "features" / part.name)
            d += timedelta(days=1)
        return
    flightline("land", "--date", (first - timedelta(days=1)).isoformat(), "--to", last.isoformat(), env=env)
    flightline("features-range", "--from", first.isoformat(), "--to", last.isoformat(), env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2013, 10, 1))
    ap.add_argument("--to", dest="last", type=date.fromisoformat, default=date(2013, 12, 31))
    ap.add_argument("--window-days", type=int, default=90)
    ap.add_argument("--features-root", type=Path, help="a data root whose features/ to copy")
    ap.add_argument("--work", type=Path, help="keep everything here (default: a temporary folder)")
    ap.add_argument("--png", type=Path, help="where to write the trend picture")
    ap.add_argument("--timeout-h", type=float, default=4.0)
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="flightline-backfill-"))
    data = work / "data"
    env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml")}
    t0 = time.monotonic()
    start_features = args.first - timedelta(days=args.window_days)
    publish_features(start_features, args.last, data, args.features_root, env)
    print(f"features {start_features}..{args.last} published in {time.monotonic() - t0:.0f} s", flush=True)
    t = time.monotonic()
    flightline("train", "--end", (args.first - timedelta(days=1)).isoformat(), "--window-days",
               str(args.window_days), "--family", "xgboost", env=env)
    flightline("release", env=env)
    print(f"first champion trained and released in {time.monotonic() - t:.0f} s", flush=True)

    # schedules on: retrain requests start training; no Spark: neither DAG here uses it
    # Every DAG starts paused, so the nightly daily run for today never lands a replayed drop
    # into this data root; only monitoring and training are switched on.
    af = LiveAirflow(work, {**env, "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"},
                     schedules=True, spark_connect=False)
    with af:
        af.wait_dags("flightline_daily", "flightline_monitoring", "flightline_training")
        for dag_id in ("flightline_monitoring", "flightline_training"):
            af.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        before = {r["dag_run_id"] for r in af.runs("flightline_training")}
        t = time.monotonic()
        days = (args.last - args.first).days + 1
        for i in range(days):  # what publish_features emits for each day, in day order
            af.post_features_event((args.first + timedelta(days=i)).isoformat())
        deadline = time.monotonic() + args.timeout_h * 3600
        while time.monotonic() < deadline:
            mon = af.runs("flightline_monitoring")
            train = [r for r in af.runs("flightline_training") if r["dag_run_id"] not in before]
            done = [r for r in mon if r["state"] in ("success", "failed")]
            busy = [r for r in train if r["state"] not in ("success", "failed")]
            print(f"{time.monotonic() - t:6.0f} s: {len(done)}/{days} monitoring runs finished, "
                  f"{len(train)} training runs ({len(busy)} active)", flush=True)
            if len(done) >= days and not busy:
                break
            time.sleep(60)
        elapsed = time.monotonic() - t
        mon = sorted(af.runs("flightline_monitoring"), key=lambda r: r["logical_date"] or "")
        train = [r for r in af.runs("flightline_training") if r["dag_run_id"] not in before]
        run_s, failed = [], []
        for r in mon:
            tis = af.task_instances("flightline_monitoring", r["dag_run_id"])
            if r["state"] != "success":
                failed.append((r["dag_run_id"], {ti["task_id"]: ti["state"] for ti in tis}))
            if r["start_date"] and r["end_date"]:
                from datetime import datetime

                run_s.append((datetime.fromisoformat(r["end_date"]) -
                              datetime.fromisoformat(r["start_date"])).total_seconds())
        train_s = {}
        for r in train:
            secs = task_seconds(af.task_instances("flightline_training", r["dag_run_id"]))
            train_s[r["dag_run_id"]] = {"state": r["state"], "note": r.get("note"),
                                        "task_seconds": secs}
        health = af.health()
    out = {"from": str(args.first), "to": str(args.last), "monitoring_runs": len(mon),
           "failed_runs": failed, "elapsed_s": round(elapsed),
           "monitoring_run_s": {"median": statistics.median(run_s) if run_s else None,
                                "max": max(run_s, default=None)},
           "training_runs": train_s, "scheduler": health.get("scheduler", {}).get("status")}
    out["releases"] = flightline("models", "releases", env=env)
    if args.png:
        out["trend"] = flightline("monitor", "trend", "--from", str(args.first), "--to",
                                  str(args.last), "--out", str(args.png), env=env).strip()
    metrics = flightline("monitor", "metrics", env=env)
    print(metrics)
    print(json.dumps(out, indent=1, default=str))
    (work / "summary.json").write_text(json.dumps(out, indent=1, default=str))
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
