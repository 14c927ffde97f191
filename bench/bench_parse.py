"""DAG parse time beside bare interpreter start-up (fresh processes, median of N runs).

Prints: bare `python -c pass`; `import airflow.sdk` (the floor any DAG file pays); parsing every
file in dags/ with Airflow's DagBag; and each as a ratio to the bare start-up.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5

CASES = {
    "bare interpreter": "pass",
    "import airflow.sdk": "import airflow.sdk",
    "parse all DAG files (DagBag)": (
        "import sys; sys.path[:0] = [{!r}, {!r}]\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "b = DagBag(dag_folder={!r})\n"
        "assert not b.import_errors, b.import_errors\n"
        "print(len(b.dags))".format(str(ROOT / "plugins"), str(ROOT), str(ROOT / "dags"))
    ),
}


def timed(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    results = {}
    for name, code in CASES.items():
        timed(code)  # warm the OS file cache
        results[name] = statistics.median(timed(code) for _ in range(RUNS))
    base = results["bare interpreter"]
    n_files = len(list((ROOT / "dags").glob("*.py")))
    print(f"DAG parse benchmark ({n_files} DAG files, median of {RUNS} fresh processes)")
    for name, secs in results.items():
        print(f"  {name:32s} {secs:7.3f} s   {secs / base:6.1f}x bare start-up")
    extra = results["parse all DAG files (DagBag)"] - results["import airflow.sdk"]
    print(f"  DAG files' own cost beyond airflow.sdk: {extra:.3f} s")


if __name__ == "__main__":
    main()
