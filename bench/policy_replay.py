"""Replay the retrain policy's quality rule over a monitored stretch, for several window lengths.

Reads what a monitoring backfill left in a data root: each day's scored rows
(``predictions/``, with the model version that scored them) and each version's test-day ROC AUC
(the metrics table). For each window W it walks the days in order and applies the quality rule
as ``tasks.monitoring.policy`` does (the labelled rows of the W days ending at the day, all
scored by one version, pooled; a drop of ``--auc-drop`` or more below the version's test days
is a breach; a request, then none for ``--cooldown`` days). Prints, per W: the days judged, the
breaching days, and the requests with their drops.

The versions are those the backfill really served, chosen by the requests it really made (W =
3 when it ran): with another W the requests differ, so later versions would too. The replay of
the W the backfill used reproduces its requests exactly; the others say how often each window
would have asked of the same models. No timing: this is a policy check, not a benchmark.

    .venv/bin/python bench/policy_replay.py --data-root DATA_ROOT [--from 2013-03-01 --to 2013-12-31]
"""

from __future__ import annotations

import argparse
import os
from datetime import date, timedelta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="the monitored backfill's FLIGHTLINE_DATA_ROOT")
    ap.add_argument("--from", dest="first", default="2013-03-01")
    ap.add_argument("--to", dest="last", default="2013-12-31")
    ap.add_argument("--windows", default="1,3,5,7,10")
    ap.add_argument("--auc-drop", type=float, default=None, help="default: the setting")
    ap.add_argument("--cooldown", type=int, default=None, help="default: the setting")
    args = ap.parse_args()

    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from tasks.feature_contract import LABEL
    from tasks.monitoring.metrics import read_metrics
    from tasks.monitoring.scoring import PREDICTION, read_scored
    from tasks.settings import Settings

    s = Settings.from_env({**os.environ, "FLIGHTLINE_DATA_ROOT": args.data_root})
    drop_at = s.retrain_auc_drop if args.auc_drop is None else args.auc_drop
    cool = s.retrain_cooldown_days if args.cooldown is None else args.cooldown
    table = read_metrics(s)
    test_auc = dict(zip(table["model_version"], table["registry_auc"].astype(float), strict=True))
    days: dict[date, pd.DataFrame] = {}
    d, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    while d <= last:
        try:
            days[d] = read_scored(d, s)[[LABEL, PREDICTION, "model_version"]].dropna()
        except LookupError:
            pass
        d += timedelta(days=1)
    versions = sorted({v for f in days.values() for v in f["model_version"]})
    print(f"{len(days)} scored days {args.first}..{args.last}, {len(versions)} model versions; "
          f"breach: pooled ROC AUC {drop_at} or more below the test days; cool-down {cool} days")
    for w in (int(x) for x in args.windows.split(",")):
        judged, breaches, requests, previous = 0, 0, [], None
        for day in sorted(days):
            version = days[day]["model_version"].iloc[0]
            window = [days.get(day - timedelta(days=i)) for i in range(w)]
            if any(f is None or set(f["model_version"]) != {version} for f in window):
                continue
            rows = pd.concat(window)
            if rows[LABEL].nunique() < 2 or version not in test_auc:
                continue
            drop = test_auc[version] - roc_auc_score(rows[LABEL].astype(int), rows[PREDICTION])
            judged += 1
            if drop >= drop_at:
                breaches += 1
                if previous is None or (day - previous).days > cool:
                    requests.append(f"{day:%b %d} ({drop:.3f})")
                    previous = day
        print(f"  W={w:2d}: {judged:3d} days judged, {breaches:3d} breaching "
              f"({breaches / max(judged, 1):.0%}), {len(requests):2d} requests: "
              + (", ".join(requests) or "none"))


if __name__ == "__main__":
    main()
