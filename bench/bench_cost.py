"""Cost benchmark: the spot step against a loopback endpoint, and the ledger's cost per task.

1. **Spot step**: moto in server mode on loopback holds a 90-day spot price history of 6 GPU
   instance types in 6 zones, at two densities: a price every hour for every pair (the worst
   case) and one every 6 hours (AWS records a price when it changes, a few times a day at most
   since 2017); the whole step (every page, the rule, the choice) is timed beside the paginated
   fetch alone, in the same run. Target: under 5 s.
2. **Ledger overhead**: a DAG of N no-op tasks runs through ``dag.test()`` with the cost
   ledger's listener registered and with it removed, alternately, in the same process; the
   difference per task instance is the ledger's cost. Target: under 50 ms.

    .venv/bin/python bench/bench_cost.py
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))  # migrated by `make install`
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# dag.test() runs DAGs of the configured DAG folder's bundle: the benchmark's own DAG lives here
BENCH_DAGS = Path(tempfile.mkdtemp(prefix="flightline-bench-dags-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(BENCH_DAGS)

TYPES = ["g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g5.2xlarge", "g6.xlarge", "p3.2xlarge"]
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"]


def history(now: datetime, days: int = 90, every_h: int = 1) -> list[dict]:
    import random

    rng = random.Random(7)
    base = {"g4dn.xlarge": 0.17, "g4dn.2xlarge": 0.25, "g5.xlarge": 0.38, "g5.2xlarge": 0.48,
            "g6.xlarge": 0.29, "p3.2xlarge": 0.95}
    out = []
    for t in TYPES:
        for z in ZONES:
            zf = rng.uniform(0.9, 1.15)
            for h in range(0, days * 24, every_h):
                ts = now - timedelta(hours=h)
                out.append({"InstanceType": t, "AvailabilityZone": z, "ProductDescription": "Linux/UNIX",
                            "SpotPrice": f"{base[t] * zf * (1 + rng.gauss(0, 0.03)):.6f}",
                            "Timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


def bench_spot(tmp: Path, every_h: int) -> dict:
    from tasks.cost import spot
    from tasks.settings import Settings

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    prices = tmp / "prices.json"
    points = history(now, every_h=every_h)
    prices.write_text(json.dumps(points))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "moto_spot.py"), "--port", str(port),
                             "--prices", str(prices)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        settings = Settings.from_env().with_overrides(
            ec2_endpoint_url=f"http://127.0.0.1:{port}", cost_instance_types=",".join(TYPES),
            cost_zones=",".join(ZONES), cost_lookback_days=90, cost_job_gpu_memory_gib=16)
        spot.fetch_history(TYPES[:1], ZONES[:1], now - timedelta(days=1), now, settings)  # warm
        fetch_s, step_s, pages = [], [], 0
        for _ in range(3):
            t = time.perf_counter()
            entries, pages = spot.fetch_history(TYPES, ZONES, now - timedelta(days=90), now, settings)
            fetch_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            cap = spot.choose_capacity(settings, now=now)
            step_s.append(time.perf_counter() - t)
        return {"price_every_h": every_h, "points": len(points), "entries_read": len(entries), "pages": pages,
                "fetch_s": round(statistics.median(fetch_s), 3),
                "step_s": round(statistics.median(step_s), 3),
                "step_over_fetch": round(statistics.median(step_s) / statistics.median(fetch_s), 2),
                "choice": cap.reason}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_ledger(n_tasks: int = 20, rounds: int = 5) -> dict:
    import pendulum
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager
    from flightline_airflow import cost_ledger

    folder = BENCH_DAGS
    (folder / "bench_cost_ledger.py").write_text(f"""
import pendulum
from airflow.sdk import dag, task

@dag(dag_id="bench_cost_ledger", schedule=None, start_date=pendulum.datetime(2013, 1, 1, tz="UTC"))
def bench_cost_ledger():
    prev = None
    for i in range({n_tasks}):
        t = task(task_id=f"noop_{{i}}")(lambda: None)()
        if prev is not None:
            prev >> t
        prev = t

bench_cost_ledger()
""")
    d = DagBag(dag_folder=str(folder)).get_dag("bench_cost_ledger")
    manager = get_listener_manager()

    def run(on: bool, k: int) -> float:
        for p in list(manager.pm.get_plugins()):
            if getattr(p, "__name__", "") == cost_ledger.__name__:
                manager.pm.unregister(p)
        if on:
            manager.add_listener(cost_ledger)
        t = time.perf_counter()
        dr = d.test(logical_date=pendulum.datetime(2013, 1, 1, tz="UTC").add(days=k))
        elapsed = time.perf_counter() - t
        assert str(getattr(dr.state, "value", dr.state)) == "success", dr.state
        return elapsed / n_tasks

    run(False, 0)  # warm-up: imports, DAG serialisation
    on, off = [], []
    for r in range(rounds):
        off.append(run(False, 1 + 2 * r))
        on.append(run(True, 2 + 2 * r))
    from tasks.cost.ledger import read_ledger
    from tasks.settings import Settings

    recorded = len(read_ledger(Settings.from_env(), dag_id="bench_cost_ledger"))
    assert recorded == n_tasks * rounds, f"{recorded} attempts recorded, expected {n_tasks * rounds}"
    return {"tasks_per_run": n_tasks, "rounds": rounds,
            "record_ms_median": round(statistics.median(cost_ledger.RECORD_MS), 2),
            "record_ms_p95": round(sorted(cost_ledger.RECORD_MS)[int(0.95 * len(cost_ledger.RECORD_MS))], 2),
            "per_ti_off_ms": round(statistics.median(off) * 1000, 1),
            "per_ti_on_ms": round(statistics.median(on) * 1000, 1),
            "overhead_ms": round((statistics.median(on) - statistics.median(off)) * 1000, 1),
            "on_over_off": round(statistics.median(on) / statistics.median(off), 3)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="flightline-bench-cost-") as tmp:
        os.environ["FLIGHTLINE_DATA_ROOT"] = str(Path(tmp) / "data")
        spots = [bench_spot(Path(tmp), h) for h in (6, 1)]
        for f in spots:
            print("spot step:", json.dumps(f, indent=1), flush=True)
        ledger = bench_ledger()
        print("ledger:", json.dumps(ledger, indent=1), flush=True)
        for f in spots:
            print(f"spot step, a price every {f['price_every_h']} h: {f['step_s']:.2f} s for "
                  f"{f['entries_read']} prices in {f['pages']} pages ({f['step_over_fetch']}x the "
                  "fetch alone; target < 5 s)")
        print(f"ledger: {ledger['record_ms_median']} ms per task instance inside the listener "
              f"(p95 {ledger['record_ms_p95']}); whole runs {ledger['overhead_ms']} ms per task "
              f"instance apart ({ledger['on_over_off']}x the run without it); target < 50 ms")


if __name__ == "__main__":
    main()
