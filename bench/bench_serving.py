"""Serving under load (2 cores, generator on the same machine): a released Bento on loopback.

The load generator is `hey` (Debian's package: `apt-get install hey`), run as its own process at
fixed request rates for DURATION seconds each. hey paces each of its workers with its own ticker,
all started together, so W workers send bursts of W requests; the rate is therefore spread over
as few workers as possible (each at most 250 requests/s, one every 4 ms; at least 2). A worker
waits for its answer before its next tick, so an overloaded server shows as an achieved rate
below the target (no hidden queue). Modes:
- single-row requests to ``/predict`` (no batching);
- single-row requests to ``/predict_batch`` (adaptive batching merges concurrent requests);
- 100-row requests to ``/predict_batch``.
For each: achieved throughput, p50/p99/max latency and errors (non-200 or no answer), from
hey's per-request CSV. The floor, in the same run: the same model's in-process
``Predictor.predict`` (no HTTP) for one row and for 100 rows. Then, per mode, the rows/s at the
highest rate held with p99 within 10 ms (and within 60 ms) and no errors, against single-row
``/predict``.

Data: 14 days of real features built into a temporary data root (untimed), an XGBoost model
trained on them, packaged and released through the serving check (its figures printed too).
The prediction log is on, as in production. Run alone: `python bench/bench_serving.py`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from tasks.settings import Settings

RATES = (100, 250, 500, 1000, 2000)
DURATION_S = 8
P99_BOUND_MS = 10.0
FIRST, LAST = date(2013, 6, 1), date(2013, 6, 14)


def _prepare(root: Path) -> tuple[Settings, dict]:
    from tasks.flows.range_build import run_range
    from tasks.flows.serving import run_release
    from tasks.flows.training import decide_promotion, prepare_split, train_candidate
    from tasks.landing import land_day

    s = Settings.from_env({**os.environ, "FLIGHTLINE_DATA_ROOT": str(root / "data"),
                           "FLIGHTLINE_BENTOML_HOME": str(root / "bentoml")})
    for i in range(-1, (LAST - FIRST).days + 1):
        land_day(FIRST + timedelta(days=i), s)
    run_range(FIRST, LAST, s)
    split = prepare_split(LAST, 14, s)
    decide_promotion([train_candidate("xgboost", split, run_key="bench", settings=s)], s, force=True)
    return s, run_release(s)["release"]


def _hey(url: str, body: bytes, rate: int, tmp: Path) -> dict:
    workers = max(2, -(-rate // 250))
    path = tmp / "body.json"
    path.write_bytes(body)
    t = time.perf_counter()
    out = subprocess.run(
        ["hey", "-z", f"{DURATION_S}s", "-c", str(workers), "-q", f"{rate / workers:.3f}",
         "-m", "POST", "-T", "application/json", "-D", str(path), "-t", "10", "-o", "csv", url],
        capture_output=True, text=True, timeout=DURATION_S + 60)
    wall = time.perf_counter() - t
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    ok = [r for r in rows if r.get("status-code") == "200"]
    lat = np.array([float(r["response-time"]) * 1000 for r in ok]) if ok else np.array([np.nan])
    sent = len(rows) + out.stderr.count("Get ") + out.stderr.count("Post ")
    return {"rate": rate, "achieved": len(ok) / DURATION_S, "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "max": float(np.max(lat)),
            "errors": sent - len(ok), "wall": wall}


def _floor(predictor, rows: list[dict]) -> dict:
    out = {}
    for n in (1, 100):
        lat = []
        for i in range(2000 if n == 1 else 300):
            batch = [rows[(i * n + k) % len(rows)] for k in range(n)]
            t = time.perf_counter()
            predictor.predict(batch)
            lat.append((time.perf_counter() - t) * 1000)
        arr = np.array(lat)
        out[n] = {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
                  "per_s": 1000 / arr.mean()}
    return out


def main() -> None:
    if shutil.which("hey") is None:
        sys.exit("bench_serving: needs the `hey` load generator (apt-get install hey)")
    from tasks.features.staging import read_features
    from tasks.serving.check import serving
    from tasks.serving.package import bento_path
    from tasks.serving.predictor import Predictor
    from tasks.serving.schema import FeatureRow, to_requests

    with tempfile.TemporaryDirectory(prefix="flightline-bench-serving-") as work:
        tmp = Path(work)
        s, release = _prepare(tmp)
        f = release["figures"]
        print(f"Serving check of {release['bento']}: {f['check_s']:.1f} s (server start "
              f"{f['startup_s']:.1f} s), {f['rows']} test rows max |diff| {f['max_abs_diff_batch']:.1g}, "
              f"{f['single_requests']} sequential single requests p50 {f['p50_ms']:.2f} ms, "
              f"p99 {f['p99_ms']:.2f} ms")
        rows = to_requests(read_features([LAST], s))
        validated = [FeatureRow.model_validate_json(json.dumps(r)).__dict__ for r in rows]
        floor = _floor(Predictor(bento_path(release["bento"], s) / "src" / "model"), validated)
        modes = {
            "single /predict": ("predict", json.dumps({"row": rows[0]}).encode()),
            "single /predict_batch (adaptive)": ("predict_batch", json.dumps({"rows": rows[:1]}).encode()),
            "100 rows /predict_batch": ("predict_batch", json.dumps({"rows": rows[:100]}).encode()),
        }
        results: dict[str, list[dict]] = {}
        with serving(release["bento"], s, prediction_log=True) as server:
            for mode, (endpoint, body) in modes.items():
                _hey(f"{server.url}/{endpoint}", body, 100, tmp)  # warm-up
                results[mode] = [_hey(f"{server.url}/{endpoint}", body, r, tmp) for r in RATES]

    print(f"\nLoad on loopback, hey as its own process, {DURATION_S} s per rate, 2 cores; "
          "latency in ms")
    print(f"{'mode':34s} {'rate/s':>7s} {'achieved/s':>10s} {'p50':>7s} {'p99':>7s} {'max':>7s} {'errors':>6s}")
    for mode, rs in results.items():
        for r in rs:
            print(f"{mode:34s} {r['rate']:7d} {r['achieved']:10.1f} {r['p50']:7.2f} {r['p99']:7.2f} "
                  f"{r['max']:7.1f} {r['errors']:6d}")
    print(f"{'floor: in-process predict, 1 row':34s} {'':7s} {floor[1]['per_s']:10.1f} "
          f"{floor[1]['p50']:7.3f} {floor[1]['p99']:7.3f}")
    print(f"{'floor: in-process predict, 100 rows':34s} {'':7s} {floor[100]['per_s']:10.1f} "
          f"{floor[100]['p50']:7.3f} {floor[100]['p99']:7.3f}")

    def held(mode: str, bound: float) -> float:
        """Rows/s at the highest rate held with p99 within ``bound`` and no errors."""
        rows = 100 if mode.startswith("100") else 1
        good = [r["achieved"] * rows for r in results[mode] if r["p99"] <= bound
                and r["errors"] == 0 and r["achieved"] >= 0.95 * r["rate"]]
        return max(good, default=0.0)

    for bound in (P99_BOUND_MS, 60.0):
        print(f"\nRows/s at the highest fixed rate held with p99 <= {bound:.0f} ms and no errors "
              "(vs single /predict):")
        base = held("single /predict", bound)
        for mode in results:
            h = held(mode, bound)
            ratio = f"{h / base:.2f}x" if base else "-"
            print(f"  {mode:34s} {h:9.0f} rows/s  {ratio}")


if __name__ == "__main__":
    main()
