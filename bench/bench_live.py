"""flightline_daily under a live scheduler, beside the same DAG under `airflow dags test`.

Baseline (same script, same machine, nothing else running): one day through `airflow dags test`
(one process runs every task, local Spark). Then the supervised local stack (api-server,
scheduler, dag-processor, triggerer, Spark Connect; LocalExecutor; `make airflow`) on a fresh
Airflow home and data root, driven through the REST API: once the Spark warm-up is done, two
triggered daily runs (seconds per task and from first task start to last task end), then a
30-day backfill at 2 active runs (wall time, per-task medians). Prints ratios against the
`dags test` baseline.

With ``--db postgres`` the stack's metadata DB is the local PostgreSQL server; ``--active N``
sets the backfill's active runs; ``--monitoring`` turns the schedules on, so the monitoring DAG
follows the backfill day by day (its partitioned features events), and reports how many backfill
days it monitored once, how often the scheduler exited (and was restarted by the supervisor) and
how many requests the API server refused (503, retried).

    .venv/bin/python bench/bench_live.py [--days 30] [--db postgres] [--active 4] [--monitoring]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

from live_airflow import LiveAirflow, task_seconds  # noqa: E402

from tasks.flows.daily import FLOW  # noqa: E402

BIN = Path(sys.executable).parent
TASKS = FLOW.task_ids  # the daily flow's declared steps


def dags_test(day: str, env: dict) -> float:
    t = time.perf_counter()
    out = subprocess.run([str(BIN / "airflow"), "dags", "test", "flightline_daily", day], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"dags test failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--day", default="2013-06-12")
    ap.add_argument("--day2", default="2013-06-13")
    ap.add_argument("--first", default="2013-02-01", help="first logical day of the backfill")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--active", type=int, default=2, help="the backfill's max active runs")
    ap.add_argument("--monitoring", action="store_true",
                    help="schedules on: the monitoring DAG follows the backfill")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="flightline-bench-live-"))
    data = work / "data"
    env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_TRAINING_SCHEDULE": "off"}

    # Baseline first, alone on the machine: the same DAG in one process (`airflow dags test`,
    # local Spark), in an Airflow home of its own.
    base_af = LiveAirflow(work / "baseline", env)
    base_af.init()
    base = dags_test("2013-06-11", dict(base_af.env))

    print(f"flightline_daily under a live scheduler ({os.cpu_count()} cores, LocalExecutor, "
          f"parallelism 4, metadata DB {args.db}"
          f"{', schedules on: monitoring follows' if args.monitoring else ''})")
    print(f"  baseline: `airflow dags test` one day            {base:7.1f} s   1.00x", flush=True)
    with LiveAirflow(work, env, db=args.db, schedules=args.monitoring) as af:
        af.wait_dags("flightline_daily")
        print(f"  Spark Connect warm-up at start: {af.wait_spark_warm()}", flush=True)
        if args.monitoring:  # the nightly run the schedule starts at once, and its monitoring
            af.wait_nightly()
        for label, day in (("first run", args.day), ("second run", args.day2)):
            t = time.perf_counter()
            run = af.trigger("flightline_daily", conf={"day": day})
            done = af.wait_run("flightline_daily", run["dag_run_id"])
            assert done["state"] == "success", done
            wall = time.perf_counter() - t
            one = task_seconds(af.task_instances("flightline_daily", run["dag_run_id"]))
            print(f"  {label} ({day}), first task start to last end {one['span']:7.1f} s   "
                  f"{one['span'] / base:.2f}x   (trigger to success {wall:.1f} s)")
            print("    per task: " + ", ".join(f"{k} {one[k]:.1f}" for k in TASKS if k in one),
                  flush=True)

        if args.monitoring:  # the monitoring runs of the days so far, before the backfill
            before = sorted({r["partition_key"] for r in af.runs("flightline_monitoring")}
                            | {args.day, args.day2})
            af.wait_monitoring(before)

        first = date.fromisoformat(args.first)
        last_after = first + timedelta(days=args.days)  # run_after range end (exclusive day)
        t = time.perf_counter()
        restarts = af.restarts()
        try:
            af.backfill("flightline_daily", first.isoformat(), last_after.isoformat(),
                        max_active_runs=args.active)
            time.sleep(3)
            ids = [r["dag_run_id"] for r in af.runs("flightline_daily")
                   if r["run_type"] == "backfill"]
            finished = af.wait_runs("flightline_daily", ids, timeout=3 * 3600)
        except Exception as exc:  # e.g. the supervisor gave up on a component: say so
            print(f"  the backfill did not finish: {type(exc).__name__}: {str(exc)[:300]}")
            print(f"  scheduler restarts: {af.restarts() - restarts}; requests refused (503): "
                  f"{af.refused}")
            print("  stack: " + " | ".join(af.stack_output().strip().splitlines()[-3:]))
            return
        backfill_wall = time.perf_counter() - t
        monitored = None
        if args.monitoring:
            days = sorted(r["logical_date"][:10] for r in finished if r["state"] == "success")
            try:
                runs = af.wait_monitoring([*before, *days], timeout=1800)
            except TimeoutError as exc:
                print(f"  monitoring did not follow: {exc}")
                runs = af.runs("flightline_monitoring")
            keys = [r.get("partition_key") for r in runs if r["state"] == "success"]
            monitored = sum(keys.count(d) == 1 for d in days)
            monitoring_wall = time.perf_counter() - t
        restarts = af.restarts() - restarts
        per_task = {k: [] for k in [*TASKS, "span"]}
        for r in finished:
            for k, v in task_seconds(af.task_instances("flightline_daily", r["dag_run_id"])).items():
                per_task.setdefault(k, []).append(v)
        failed = [r["dag_run_id"] for r in finished if r["state"] != "success"]
    print(f"  {len(finished)}-day backfill, {args.active} active runs          {backfill_wall:7.1f} s   "
          f"{backfill_wall / base:.2f}x   ({backfill_wall / 60:.1f} min, "
          f"{backfill_wall / max(len(finished), 1):.1f} s per day, {len(failed)} not successful)")
    print("    per-task medians: " + ", ".join(
        f"{k} {statistics.median(v):.1f}" for k, v in per_task.items() if v))
    print(f"  scheduler restarts during the backfill: {restarts}; requests refused (503): "
          f"{af.refused}")
    if monitored is not None:
        print(f"  monitored once: {monitored} of {len(finished)} days "
              f"({monitoring_wall:.1f} s from the backfill's start to the last monitoring run)")
    print(f"  stop on SIGINT: {af.stop_seconds:.1f} s, processes left: {len(af.left_behind)}")


if __name__ == "__main__":
    main()
