"""What OpenLineage costs a task: the daily DAG for one day with lineage on, then off, in one run.

Each run is ``dag.test()`` of ``flightline_daily`` in a fresh process on a fresh data root (the
task runner, the listeners and the extractor as a worker runs them). With lineage on, the
provider's two listener calls per task instance (``on_task_instance_running``, and
``..._success`` that runs the extractor and writes the event; the task waits for both) are timed
where they run: that is what lineage adds to each task. It runs with the project's Airflow
configuration (``[openlineage] execute_in_thread``: forking the task process per event instead
costs about 4 times as much here). The same DAG with lineage off is the
baseline the figures are ratios of; its wall time against the run with lineage is printed too
(that difference is mostly Spark's own variation from run to run, so it is shown, not judged).

    python bench/bench_lineage.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = "2013-06-12"

CHILD = r'''
import functools, json, os, sys, time
from datetime import datetime, timezone
sys.path[:0] = [os.path.join(sys.argv[1], "plugins"), os.path.join(sys.argv[1], "dags")]
timings = []
if os.environ.get("AIRFLOW__OPENLINEAGE__DISABLED") != "true":
    from airflow.providers.openlineage.plugins.listener import OpenLineageListener

    for name in ("on_task_instance_running", "on_task_instance_success"):
        inner = getattr(OpenLineageListener, name)

        def timed(*args, _inner=inner, _name=name, **kwargs):
            t = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                ti = kwargs.get("task_instance") or args[-1]
                timings.append((getattr(ti, "task_id", "?"), _name, time.perf_counter() - t))

        setattr(OpenLineageListener, name, functools.wraps(inner)(timed))
from airflow.dag_processing.dagbag import DagBag

dag = DagBag(dag_folder=os.path.join(sys.argv[1], "dags", "flightline_daily.py")).get_dag("flightline_daily")
t = time.perf_counter()
run = dag.test(logical_date=datetime.fromisoformat(sys.argv[2]).replace(tzinfo=timezone.utc))
wall = time.perf_counter() - t
print("RESULT " + json.dumps({"state": str(run.state), "wall": wall, "timings": timings}))
'''


def one_run(lineage: bool, work: Path) -> dict:
    home = work / ("on" if lineage else "off")
    env = dict(os.environ, FLIGHTLINE_DATA_ROOT=str(home / "data"),
               AIRFLOW_HOME=os.environ.get("AIRFLOW_HOME", str(ROOT / ".airflow")),
               AIRFLOW__OPENLINEAGE__DISABLED="false" if lineage else "true",
               AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(
                   {"type": "file", "log_file_path": str(home / "events.jsonl"), "append": True}))
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), DAY], env=env,
                         capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None or "success" not in line:
        sys.exit("the DAG run did not succeed:\n" + (out.stdout + out.stderr)[-3000:])
    result = json.loads(line[len("RESULT "):])
    events = home / "events.jsonl"
    result["events"] = len(events.read_text().splitlines()) if events.exists() else 0
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="flightline-bench-lineage-") as tmp:
        off = one_run(False, Path(tmp))  # the baseline, also warming the OS caches
        on = one_run(True, Path(tmp))
    per_ti: dict[str, float] = {}
    for task_id, _hook, seconds in on["timings"]:
        per_ti[task_id] = per_ti.get(task_id, 0.0) + seconds
    ms = sorted(v * 1000 for v in per_ti.values())
    print(f"flightline_daily {DAY}, dag.test, {len(per_ti)} task instances, "
          f"{on['events']} OpenLineage events written (off: {off['events']})")
    for task_id, seconds in per_ti.items():
        print(f"  {task_id:18s} lineage {seconds * 1000:7.1f} ms")
    print(f"lineage per task instance: median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms "
          f"(target: under 50 ms)")
    print(f"lineage, all task instances: {sum(ms) / 1000:.2f} s = "
          f"{sum(ms) / 1000 / off['wall']:.3f} x the run without lineage ({off['wall']:.1f} s)")
    print(f"run with lineage {on['wall']:.1f} s / without {off['wall']:.1f} s = "
          f"{on['wall'] / off['wall']:.3f} (Spark's run-to-run variation included)")


if __name__ == "__main__":
    main()
