"""The features gate over many staged days in one pass: what the range build
(``flightline features-range``) runs instead of one validation per day.

One Great Expectations validation per day costs about 0.6 s whatever the day holds (a context,
the suite, a validation, Data Docs): 3.7 minutes for a year. Here every staged day's rows are
validated **together, once**, as a screen, and the days the screen cannot clear go through the
daily gate itself (:func:`tasks.quality.gate.gate`: the same verdict, quarantine and Data Docs
as the nightly run). The screen may flag a good day (it then costs its 0.6 s) but never clears a
day the gate would fail:

- **row-level** expectations (not null, between, in a literal set, value types) run on the
  union of the days; a failure names the rows (``unexpected_index_list``), so only their days
  are flagged;
- **table-level** ones (the ordered column list) run on the union too; each day's columns and
  dtypes must equal the union's, and a day whose differ is flagged;
- **per-day** ones cannot run on a union (a row count, a key unique within the day, the day's
  own ``flight_date``): they are checked per day in pandas with the suite's own arguments;
- an expectation of any other kind, a ``mostly`` below 1, or a union validation that raises
  flags every day: nothing is cleared that the screen does not understand.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from tasks.quality.gate import Batch, Validator
from tasks.quality.suites import load_suite_json

ROW_LEVEL = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
             "expect_column_values_to_be_in_set", "expect_column_values_to_be_in_type_list"}
TABLE_LEVEL = {"expect_table_columns_to_match_ordered_list"}
PER_DAY = {"expect_table_row_count_to_be_between", "expect_compound_columns_to_be_unique"}
SUITE = "features"


def _per_day_failure(exp: dict, df, params: dict) -> bool:
    """True when ``df`` (one day) may fail the per-day expectation ``exp``."""
    kw = exp["kwargs"]
    if exp["type"] == "expect_table_row_count_to_be_between":
        low, high = kw.get("min_value"), kw.get("max_value")
        return (low is not None and len(df) < low) or (high is not None and len(df) > high)
    if exp["type"] == "expect_compound_columns_to_be_unique":
        return bool(df.duplicated([c.lower() for c in kw["column_list"]], keep=False).any())
    if exp["type"] == "expect_column_values_to_be_in_set":  # the day's own $PARAMETER set
        allowed = set(params[kw["value_set"]["$PARAMETER"]])
        return not df[kw["column"].lower()].astype(str).isin(allowed).all()
    return True


def screen(batches: list[Batch]) -> tuple[set[date], dict]:
    """The days of ``batches`` (features batches, one day each) that must go through the daily
    gate; and what the screen did (seconds, why days were flagged)."""
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    days = [b.day for b in batches]
    raw = load_suite_json(SUITE)
    why: dict[str, str] = {}

    def flag_all(reason: str) -> tuple[set[date], dict]:
        return set(days), {"seconds": round(time.perf_counter() - t0, 2), "flagged": "all",
                           "why": reason}

    if not batches:
        return set(), {"seconds": 0.0, "flagged": [], "why": {}}
    union_exps, per_day_exps = [], []
    for exp in raw["expectations"]:
        kw = exp.get("kwargs", {})
        if kw.get("mostly", 1) < 1:
            return flag_all(f"{exp['type']} has mostly={kw['mostly']}: a union cannot clear a day")
        param_set = isinstance(kw.get("value_set"), dict)
        if exp["type"] in PER_DAY or (exp["type"] == "expect_column_values_to_be_in_set" and param_set):
            per_day_exps.append(exp)
        elif exp["type"] in ROW_LEVEL | TABLE_LEVEL and not any(isinstance(v, dict) for v in kw.values()):
            union_exps.append(exp)
        else:
            return flag_all(f"{exp['type']} is not an expectation the one-pass screen understands")

    frames = [b.frames[SUITE].rename(columns=str.lower) for b in batches]
    union = pd.concat(frames, ignore_index=True)
    day_of_row = np.repeat(np.array(days, dtype=object), [len(f) for f in frames])
    for b, df in zip(batches, frames, strict=True):
        key = b.day.isoformat()
        if list(df.columns) != list(union.columns) or not df.dtypes.equals(union.dtypes):
            why[key] = "its columns or dtypes differ from the other days'"
            continue
        for exp in per_day_exps:
            if _per_day_failure(exp, df, b.params):
                why[key] = f"{exp['type']} {exp['kwargs'].get('column', '')}".strip()
                break

    with tempfile.TemporaryDirectory(prefix="flightline-range-gate-") as tmp:
        validator = Validator(Path(tmp) / "docs", Path(tmp) / "results")
        _, failures, result, _ = validator.run(
            SUITE, union, {}, gate="features", day=days[0], run_time=datetime.now(UTC),
            suite_json={**raw, "expectations": union_exps}, result_format="COMPLETE")
    critical = {(f["type"], str(f.get("column"))) for f in failures}
    for r in result["results"]:
        cfg = r["expectation_config"]
        if r["success"] or (cfg["type"], str(cfg["kwargs"].get("column"))) not in critical:
            continue
        rows = (r.get("result") or {}).get("unexpected_index_list")
        if r.get("exception_info", {}).get("raised_exception") or cfg["type"] not in ROW_LEVEL \
                or rows is None:
            return flag_all(f"{cfg['type']} {cfg['kwargs'].get('column', '')} failed over the union")
        for i in rows:
            day = day_of_row[int(i)]
            why.setdefault(day.isoformat(), f"{cfg['type']} {cfg['kwargs'].get('column', '')}".strip())
    flagged = {d for d in days if d.isoformat() in why}
    return flagged, {"seconds": round(time.perf_counter() - t0, 2),
                     "flagged": sorted(why), "why": why, "rows": len(union)}
