"""Bootstrap an expectation suite from known-good days: profile, then a person reviews.

``flightline bootstrap-suite --dataset raw_flights --from 2013-01-01 --to 2013-03-31`` profiles
the given days (each day is one batch): the column list, types, not-null for columns never
null, ranges widened by a margin, allowed sets for low-cardinality text columns, per-day
row-count bounds, key uniqueness and the date-matches-the-logical-date checks.

It **merges** the profile into the current suite (``expectations/<dataset>.json``) and writes
the result as ``expectations/<dataset>.candidate.json`` with ``meta.version`` bumped: every
expectation of the current suite is kept exactly as it is (reviewed, or written by hand); a
profiled expectation on a (type, column) the suite does not cover yet is added; where the
profile disagrees with a kept one (the known-good days fall outside its range or set), the
result lists it. Review the candidate, then rename it over ``<dataset>.json``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from tasks.quality.suites import EXPECTATIONS_DIR

DATASETS = {
    "raw_flights": {
        "key": ["carrier", "flight", "origin"],
        "date_columns": {"year": "year", "month": "month", "day": "day"},
        "text_sets": ["carrier", "origin"],
        "regex": {"dest": "^[A-Z]{3}$", "time_hour": r"^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$",
                  "tailnum": "^[A-Z0-9-]{2,7}$"},
        "warning_ranges": [],
    },
    "raw_weather": {
        "key": ["origin", "time_hour"],
        "date_columns": {"year": "year", "month": "month", "day": "day"},
        "text_sets": ["origin"],
        "regex": {"time_hour": r"^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$"},
        # Sensor glitches (a 1048 mph wind on 2013-02-12) are flagged, not fatal; Spark nulls them.
        "warning_ranges": ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust",
                           "precip", "pressure", "visib"],
    },
    "features": {
        "key": ["carrier", "flight", "origin"],
        "date_columns": {},
        "text_sets": ["carrier", "origin"],
        "regex": {},
        "warning_ranges": [],
    },
}
NUMERIC = ("int64", "float64", "int32", "Int64", "float32")


def profile_frames(dataset: str, frames: list) -> dict:
    """A candidate suite (GE JSON) from a list of per-day pandas frames."""
    import pandas as pd

    conf = DATASETS[dataset]
    all_rows = pd.concat(frames, ignore_index=True)
    counts = [len(f) for f in frames]
    exps: list[dict] = []

    def add(type_: str, severity: str = "critical", **kwargs) -> None:
        exps.append({"type": type_, "kwargs": kwargs, "meta": {}, "severity": severity})

    add("expect_table_columns_to_match_ordered_list", column_list=list(all_rows.columns))
    lo, hi = min(counts), max(counts)
    add("expect_table_row_count_to_be_between", min_value=int(lo * 0.5), max_value=int(hi * 1.5))
    for col in all_rows.columns:
        s = all_rows[col]
        numeric = str(s.dtype) in NUMERIC
        if numeric:
            add("expect_column_values_to_be_in_type_list", column=col, type_list=["int32", "int64", "float64"])
        else:
            add("expect_column_values_to_be_in_type_list", column=col, type_list=["object", "str", "string"])
        if s.notna().all():
            add("expect_column_values_to_not_be_null", column=col)
        if numeric and col not in conf["date_columns"] and s.notna().any():
            mn, mx = float(s.min()), float(s.max())
            span = mx - mn
            severity = "warning" if col in conf["warning_ranges"] else "critical"
            low = mn - 0.1 * span if mn < 0 else max(0.0, mn - 0.1 * span)
            add("expect_column_values_to_be_between", severity=severity, column=col,
                min_value=round(low, 3), max_value=round(mx + 0.1 * span, 3))
        if col in conf["text_sets"]:
            add("expect_column_values_to_be_in_set", column=col,
                value_set=sorted(str(v) for v in s.dropna().unique()))
        if col in conf["regex"]:
            add("expect_column_values_to_match_regex", column=col, regex=conf["regex"][col])
    for col, param in conf["date_columns"].items():
        add("expect_column_values_to_be_between", column=col,
            min_value={"$PARAMETER": param}, max_value={"$PARAMETER": param})
    add("expect_compound_columns_to_be_unique", column_list=conf["key"])
    return {
        "name": dataset,
        "meta": {"version": 1, "profiled_days": len(frames), "rows": int(len(all_rows))},
        "expectations": exps,
    }


def bootstrap_suite(dataset: str, first: date, last: date, out: Path | None = None) -> dict:
    """Profile known-good days of the demo source and write a candidate suite for review."""
    import io

    import pandas as pd

    from tasks.landing import _day_rows, _to_csv

    if dataset not in DATASETS or dataset == "features":
        raise ValueError(
            f"bootstrap-suite profiles the raw datasets (raw_flights, raw_weather); got {dataset!r}"
        )
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    name = "flights" if dataset == "raw_flights" else "weather"
    frames = []
    d = first
    while d <= last:
        header, rows = _day_rows(name, d)
        if rows:
            frames.append(pd.read_csv(io.BytesIO(_to_csv(header, rows)), na_values=["NA"]))
        d += timedelta(days=1)
    if not frames:
        raise ValueError(f"no source days between {first} and {last}")
    profiled = profile_frames(dataset, frames)
    current_path = EXPECTATIONS_DIR / f"{dataset}.json"
    current = json.loads(current_path.read_text()) if current_path.exists() else None
    suite, added, disagree = merge_suites(current, profiled, f"{first}..{last}")
    out = out or EXPECTATIONS_DIR / f"{dataset}.candidate.json"
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(suite, indent=2) + "\n")
    tmp.replace(out)  # never half a candidate
    return {"dataset": dataset, "days": len(frames), "expectations": len(suite["expectations"]),
            "kept": len(suite["expectations"]) - len(added), "added": added,
            "disagree": disagree, "version": suite["meta"]["version"], "written": str(out)}


def _key(e: dict) -> tuple:
    kw = e.get("kwargs") or {}
    cols = kw.get("column") or kw.get("column_list")
    return e["type"], tuple(cols) if isinstance(cols, list) else cols


def _disagrees(kept: dict, profiled: dict) -> str | None:
    """Why the known-good days would fail ``kept``, as far as the profile shows (ranges, sets)."""
    k, p = kept.get("kwargs") or {}, profiled.get("kwargs") or {}
    for bound, worse in (("min_value", lambda a, b: b < a), ("max_value", lambda a, b: b > a)):
        a, b = k.get(bound), p.get(bound)
        if isinstance(a, int | float) and isinstance(b, int | float) and worse(a, b):
            return f"{bound} {a}, the profiled days reach {b}"
    extra = set(p.get("value_set") or []) - set(k.get("value_set") or []) if "value_set" in k else set()
    return f"value_set lacks {sorted(extra)[:5]}" if extra else None


def merge_suites(current: dict | None, profiled: dict, days: str) -> tuple[dict, list, list]:
    """``current`` with the profile's expectations it lacks added: (suite, added, disagree)."""
    if current is None:
        return profiled, [_key(e) for e in profiled["expectations"]], []
    kept = {_key(e): e for e in current.get("expectations", [])}
    added, disagree = [], []
    merged = list(current.get("expectations", []))
    for e in profiled["expectations"]:
        key = _key(e)
        if key not in kept:
            merged.append({**e, "meta": {**(e.get("meta") or {}), "bootstrapped": days}})
            added.append(f"{key[0]} {key[1] or ''}".strip())
        elif (why := _disagrees(kept[key], e)) is not None:
            disagree.append(f"{key[0]} {key[1] or ''}: {why}")
    meta = dict(current.get("meta") or {})
    version = meta.get("version", 0)
    meta.update(version=version + 1 if isinstance(version, int) else f"{version}+1",
                bootstrapped=f"{days}: {len(added)} expectation(s) added, "
                             f"{len(disagree)} kept one(s) the profile disagrees with")
    return {**current, "meta": meta, "expectations": merged}, added, disagree
