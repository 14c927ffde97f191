"""A year of features in one command, and the features gate in one pass against once per day.

1. ``run_range`` over 2013 (`flightline features-range --from 2013-01-01 --to 2013-12-31`) on a
   fresh data root: Spark, then the one-pass gate (:mod:`tasks.quality.range_gate`) and publish.
2. On the same published days, in the same process: the one-pass screen against the daily gate
   run once per day (what the range build did before), both on the same frames.

    .venv/bin/python bench/bench_range.py [--days 365]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta

FIRST = date(2013, 1, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    args = ap.parse_args()
    from tasks.features.staging import read_features
    from tasks.flows.range_build import run_range
    from tasks.landing import land_day
    from tasks.quality.features import frame_batch
    from tasks.quality.gate import gate
    from tasks.quality.range_gate import screen
    from tasks.settings import Settings

    last = FIRST + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="flightline-bench-range-") as tmp:
        s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": f"{tmp}/data"})
        for i in range(-1, args.days):
            land_day(FIRST + timedelta(days=i), s)
        t = time.perf_counter()
        out = run_range(FIRST, last, s)
        wall = time.perf_counter() - t
        print(f"features-range {FIRST}..{last}: {out['published']} days published, "
              f"{len(out['failed'])} quarantined, {out['rows']} rows in {wall:.1f} s "
              f"(Spark {out['seconds']['spark']:.1f} s, gate and publish "
              f"{out['seconds']['gate_and_publish']:.1f} s; one-pass screen "
              f"{out['gate']['screen_seconds']:.1f} s, days gated alone: "
              f"{len(out['gate']['gated_alone'])})")

        days = [FIRST + timedelta(days=i) for i in range(args.days)]
        frames = {d: read_features([d], s) for d in days}
        t = time.perf_counter()
        flagged, info = screen([frame_batch(d, frames[d].copy(), "unused", s) for d in days])
        one_pass = time.perf_counter() - t
        t = time.perf_counter()
        for d in days:
            gate(frame_batch(d, frames[d].copy(), "unused", s), s)
        per_day = time.perf_counter() - t
    print(f"the features gate over {args.days} days: once per day {per_day:.1f} s "
          f"({per_day / args.days * 1000:.0f} ms a day); one pass {one_pass:.1f} s "
          f"({len(flagged)} days flagged) = {one_pass / per_day:.3f} x "
          f"({per_day / one_pass:.1f} times faster)")


if __name__ == "__main__":
    main()
