"""Replay 2013's drift offline: calibrated thresholds, in the model's window and the months after.

What the README's "drift that means something" figures come from. No scheduler: in one process,
on a temporary data root (features copied from ``--features-root``, never written to):

1. train an XGBoost model on the ``--window-days`` before ``--from`` through the project's own
   training code (split, fit, evaluate, reference sample and its calibrated thresholds,
   registry; promoted as champion);
2. run the project's own drift step (``drift_report``) on the model's training days (every one
   for the first version, ``--in-window-sample`` of them for later ones; into a reports zone of
   their own) and then, day by day from ``--from`` to ``--to``, score the day with the champion,
   report its drift and apply the retrain policy (``decide_retrain``; the drift rule alone: no
   quality report, so the AUC rule is silent);
3. retrain on the window ending at a day whose policy asked for it, and every
   ``--retrain-every`` days in any case (a stand-in for the training DAG's weekly fallback);
4. print the in-window median drift share, the out-of-window median, the days that stand out
   with their top drifted columns (score over threshold), the known events' days, the policy's
   requests, and the calibration's cost against Evidently's on the same in-window days (the
   baseline, measured in this run); draw the trend picture (``--png``).

    .venv/bin/python bench/drift_replay.py --features-root DATA_ROOT --png docs/img/drift-2013.png

Run it alone (about 2.5 s a monitored day on 2 cores, and a training every few weeks).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Days of 2013 known to be unusual, for the summary (the picture marks them).
EVENTS = {
    date(2013, 2, 8): "Nemo blizzard", date(2013, 2, 9): "Nemo blizzard",
    date(2013, 5, 27): "Memorial Day", date(2013, 7, 4): "Independence Day",
    date(2013, 9, 2): "Labor Day", date(2013, 11, 28): "Thanksgiving",
    date(2013, 11, 29): "day after Thanksgiving", date(2013, 12, 8): "snow storm",
    date(2013, 12, 14): "winter storm", date(2013, 12, 15): "winter storm",
    date(2013, 12, 24): "Christmas Eve", date(2013, 12, 25): "Christmas",
    date(2013, 12, 31): "New Year's Eve",
}


def copy_features(first: date, last: date, source: Path, data: Path) -> int:
    """The published partitions ``[first, last]`` of ``source`` copied into ``data``."""
    import shutil

    (data / "features").mkdir(parents=True, exist_ok=True)
    n, d = 0, first
    while d <= last:
        part = source / "features" / f"dt={d.isoformat()}"
        if part.exists():
            shutil.copytree(part, data / "features" / part.name)
            n += 1
        d += timedelta(days=1)
    return n


def top_columns(features: dict, n: int = 4) -> list[str]:
    """The drifted columns, furthest past their thresholds first: ``name score/threshold``."""
    out = [(float(e["score"]) / float(e["threshold"]), c) for c, e in features.items()
           if e.get("drifted") and e.get("threshold")]
    return [f"{c} {r:.1f}x" for r, c in sorted(out, reverse=True)[:n]]


def main() -> None:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features-root", type=Path, required=True,
                    help="a data root whose features/ to copy (read only)")
    ap.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2013, 3, 1))
    ap.add_argument("--to", dest="last", type=date.fromisoformat, default=date(2013, 12, 31))
    ap.add_argument("--window-days", type=int, default=60)
    ap.add_argument("--retrain-every", type=int, default=28,
                    help="days after which the model is retrained anyway (0: only on requests)")
    ap.add_argument("--in-window-sample", type=int, default=6,
                    help="training days each later version's drift step is run on")
    ap.add_argument("--drift-share", type=float, help="the policy's threshold (default: the setting)")
    ap.add_argument("--work", type=Path, help="keep everything here (default: a temporary folder)")
    ap.add_argument("--png", type=Path, help="where to write the trend picture")
    args = ap.parse_args()

    from tasks.features.staging import read_features
    from tasks.flows.training import decide_promotion, prepare_split, train_candidate
    from tasks.monitoring.policy import decide_retrain
    from tasks.monitoring.reports import drift_report
    from tasks.monitoring.scoring import Scored, score_day
    from tasks.settings import Settings
    from tasks.training import registry

    work = args.work or Path(tempfile.mkdtemp(prefix="flightline-drift-replay-"))
    data = work / "data"
    env = {"FLIGHTLINE_DATA_ROOT": str(data), "FLIGHTLINE_BENTOML_HOME": str(work / "bentoml")}
    s = Settings.from_env(env).with_overrides(evidently_workspace_days=7)
    if args.drift_share is not None:
        s = s.with_overrides(retrain_drift_share=args.drift_share)
    # the in-window runs write their reports and predictions beside the daily ones
    inside = s.with_overrides(zone_dirs=(("reports", "reports-in-window"),
                                         ("evidently", "evidently-in-window")))
    t0 = time.monotonic()
    n = copy_features(args.first - timedelta(days=args.window_days + 1), args.last,
                      args.features_root, data)
    print(f"{n} feature partitions copied in {time.monotonic() - t0:.0f} s; policy: drift share "
          f">= {s.retrain_drift_share} on {s.retrain_consecutive_days} days in a row, cool-down "
          f"{s.retrain_cooldown_days} days; retrain every {args.retrain_every} days", flush=True)

    versions: list[dict] = []
    in_window: list[dict] = []
    days: list[dict] = []

    def train(end: date, why: str) -> dict:
        t = time.perf_counter()
        split = prepare_split(end, args.window_days, s)
        cand = train_candidate("xgboost", split, run_key=f"replay-{end}", settings=s)
        decide_promotion([cand], s, force=True)
        card = registry.show(cand.version, s)
        v = {"version": cand.version, "end": end, "why": why, "train_days": split.train_days,
             "train_s": round(time.perf_counter() - t, 1),
             "calibration": card["reference"]["thresholds"], "test_auc": card["metrics"]["roc_auc"]}
        versions.append(v)
        # the drift step on the model's own training days (the first version: all of them)
        model = registry.load_model(cand.version, s)
        picked = split.train_days
        if len(versions) > 1 and args.in_window_sample < len(picked):
            step = len(picked) / args.in_window_sample
            picked = [picked[int(i * step)] for i in range(args.in_window_sample)]
        t = time.perf_counter()
        for day in picked:
            cur = read_features([date.fromisoformat(day)], s)
            cur["prediction"] = model.predict_proba(cur)
            r = drift_report(Scored(day=day, version=cand.version, model_source="champion", uri="",
                                    rows=len(cur), served_rows=0), inside, current=cur)
            in_window.append({"day": date.fromisoformat(day), "version": cand.version,
                              "share": r.drift_share, "top": top_columns(r.features),
                              "prediction_drifted": r.prediction_drift.get("drifted")})
        v["evidently_in_window_s"] = round(time.perf_counter() - t, 1)
        v["evidently_in_window_days"] = len(picked)
        shares = [x["share"] for x in in_window if x["version"] == cand.version]
        print(f"{cand.version} trained to {end} ({why}) in {v['train_s']} s, test AUC "
              f"{v['test_auc']:.3f}; calibration {v['calibration']['seconds']} s on "
              f"{v['calibration']['days']} days; in-window drift share median "
              f"{statistics.median(shares):.3f} over {len(shares)} days", flush=True)
        return v

    train(args.first - timedelta(days=1), "first")
    day, requested = args.first, False
    while day <= args.last:
        age = (day - versions[-1]["end"]).days
        if requested or (args.retrain_every and age > args.retrain_every):
            train(day - timedelta(days=1), "policy request" if requested else "periodic")
        scored = score_day(day, s)
        drift = drift_report(scored, s)
        decision = decide_retrain(drift, None, s)
        requested = decision.retrain
        days.append({"day": day, "version": scored.version, "share": drift.drift_share,
                     "top": top_columns(drift.features), "prediction": drift.prediction_drift,
                     "retrain": decision.retrain, "reason": decision.reason})
        if day.day == 1 or decision.retrain:
            print(f"{day}: share {drift.drift_share:.3f} {'REQUEST ' if decision.retrain else ''}"
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
        day += timedelta(days=1)

    inside_shares = [x["share"] for x in in_window]
    outside_shares = [x["share"] for x in days]
    print("\n== drift share ==")
    print(f"in-window days (drift step on a version's own training days): median "
          f"{statistics.median(inside_shares):.3f}, 90th percentile "
          f"{sorted(inside_shares)[int(0.9 * len(inside_shares))]:.3f}, max {max(inside_shares):.3f} "
          f"over {len(inside_shares)} day-runs; first version alone: median "
          f"{statistics.median([x['share'] for x in in_window if x['version'] == versions[0]['version']]):.3f}")
    print(f"days after the window ({args.first}..{args.last}): median "
          f"{statistics.median(outside_shares):.3f}, 90th percentile "
          f"{sorted(outside_shares)[int(0.9 * len(outside_shares))]:.3f}, max {max(outside_shares):.3f}"
          f" over {len(outside_shares)} days; share >= {s.retrain_drift_share}: "
          f"{sum(x >= s.retrain_drift_share for x in outside_shares)} days")
    by_weekday: dict[str, list[float]] = {}
    for x in days:
        by_weekday.setdefault(f"{x['day']:%a}", []).append(x["share"])
    print("after the window, median by weekday: " + ", ".join(
        f"{k} {statistics.median(v):.3f}" for k, v in by_weekday.items()))
    standing = sorted(days, key=lambda x: -x["share"])[:20]
    print("\n== the 20 days that stand out most ==")
    for x in sorted(standing, key=lambda x: x["day"]):
        event = EVENTS.get(x["day"], "")
        print(f"{x['day']} {x['day']:%a} share {x['share']:.3f} {event:24s} {', '.join(x['top'])}")
    print("\n== known events ==")
    for d, name in EVENTS.items():
        x = next((y for y in days if y["day"] == d), None) or next(
            (y for y in in_window if y["day"] == d), None)
        if x is not None:
            print(f"{d} {name:24s} share {x['share']:.3f}  {', '.join(x['top'])}")
    pred = [x for x in days if x["prediction"].get("drifted")]
    print(f"\nprediction drift (its own signal): {len(pred)} days drifted: "
          + ", ".join(f"{x['day']:%b %d}" for x in pred))
    requests = [x for x in days if x["retrain"]]
    print(f"\n== policy: {len(requests)} requests ==")
    for x in requests:
        print(f"{x['day']}: {x['reason']}")
    cal_s = sum(v["calibration"]["seconds"] for v in versions)
    cal_days = sum(v["calibration"]["days"] for v in versions)
    ev_s = sum(v["evidently_in_window_s"] for v in versions)
    ev_days = sum(v["evidently_in_window_days"] for v in versions)
    train_s = statistics.median(v["train_s"] for v in versions)
    print("\n== calibration cost at training time ==")
    print(f"calibration (numpy/scipy): {cal_s / cal_days * 1000:.1f} ms per training day "
          f"({cal_s:.1f} s for {cal_days} days over {len(versions)} versions; median training "
          f"{train_s:.1f} s incl. calibration); Evidently's drift step on in-window days "
          f"(baseline): {ev_s / ev_days * 1000:.0f} ms per day: "
          f"{(ev_s / ev_days) / (cal_s / cal_days):.0f}x the calibration's cost")
    out = {"versions": versions, "in_window": in_window, "days": days}
    (work / "replay.json").write_text(json.dumps(out, indent=1, default=str))
    if args.png:
        draw(days, in_window, versions, s.retrain_drift_share, args.png)
        print(f"picture: {args.png}")
    print(f"work folder: {work} ({time.monotonic() - t0:.0f} s)")


def draw(days: list[dict], in_window: list[dict], versions: list[dict], threshold: float,
         png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.8), dpi=110)
    first = [x for x in in_window if x["version"] == versions[0]["version"]]
    ax.plot([x["day"] for x in first], [x["share"] for x in first], color="#9aa0a6", lw=1.2,
            marker=".", label="first model's own training days (in window)")
    ax.plot([x["day"] for x in days], [x["share"] for x in days], color="#1a73e8", lw=1.3,
            label="each day against the model serving it")
    pred = [x for x in days if x["prediction"].get("drifted")]
    if pred:
        ax.scatter([x["day"] for x in pred], [x["share"] for x in pred], color="#f29900", s=22,
                   zorder=3, label="prediction drift (own signal)")
    ax.axhline(threshold, color="#d93025", ls="--", lw=1, label=f"policy threshold {threshold}")
    for i, v in enumerate(versions[1:]):
        ax.axvline(v["end"], color="#5f6368", alpha=0.35, lw=0.8,
                   label="retrained (window ends)" if i == 0 else None)
    shares = {x["day"]: x["share"] for x in [*first, *days]}
    for d, name in EVENTS.items():
        if d in shares and shares[d] >= 0.15:
            ax.annotate(name, (d, shares[d]), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7, rotation=60)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of counted features drifted")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Drift share per day, 2013, calibrated thresholds, calendar columns left out")
    fig.autofmt_xdate()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


if __name__ == "__main__":
    main()
