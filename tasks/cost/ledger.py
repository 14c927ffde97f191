"""The cost ledger: every task attempt's duration times its capacity's hourly price.

One JSON object per attempt, ``costs/ledger/dag_id=<dag>/run_id=<run>/<task>.<map>.try<N>.json``
in the ``costs`` zone of the data root, each written whole and
atomically (an attempt recorded again replaces itself), so the ledger needs no database and
works on a local folder and on S3 alike. An attempt runs on the local machine (priced by
``cost_local_hourly_usd``, counted as on-demand) unless its task says it ran on chosen capacity
(the spot step's :class:`~tasks.cost.spot.Capacity`, spot or on-demand).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store, join


@dataclass
class Attempt(Result):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    state: str  # success, failed, interrupted, ...
    start: str  # ISO
    end: str
    seconds: float
    capacity_type: str  # local, spot, on-demand
    instance_type: str
    zone: str | None
    hourly_usd: float
    on_demand_usd: float  # the same capacity on demand (the saving's baseline)
    cost_usd: float
    on_demand_cost_usd: float
    run_day: str  # the run's logical day (the report's x-axis), else the start's day
    note: str = ""  # e.g. why the attempt ended (an interruption)


def ledger_root(settings: Settings) -> str:
    return join(settings.zone("costs"), "ledger")


def attempt_uri(a: Attempt, settings: Settings) -> str:
    return join(ledger_root(settings), f"dag_id={quote(a.dag_id, safe='')}",
                f"run_id={quote(a.run_id, safe='')}",
                f"{quote(a.task_id, safe='')}.{a.map_index}.try{a.try_number}.json")


def price_attempt(*, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int,
                  state: str, start: datetime, end: datetime, capacity: dict | None,
                  settings: Settings, run_day: date | None = None, note: str = "") -> Attempt:
    """An attempt priced at its capacity (``capacity``: a Capacity dict; None: local)."""
    seconds = max(0.0, (end - start).total_seconds())
    if capacity:
        ctype, itype = capacity["capacity_type"], capacity["instance_type"]
        zone, hourly, od = capacity.get("zone"), float(capacity["hourly_usd"]), float(capacity["on_demand_usd"])
    else:
        ctype, itype, zone = "local", "local", None
        hourly = od = settings.cost_local_hourly_usd
    return Attempt(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index,
                   try_number=try_number, state=state, start=start.isoformat(),
                   end=end.isoformat(), seconds=round(seconds, 3), capacity_type=ctype,
                   instance_type=itype, zone=zone, hourly_usd=hourly, on_demand_usd=od,
                   cost_usd=round(hourly * seconds / 3600, 8),
                   on_demand_cost_usd=round(od * seconds / 3600, 8),
                   run_day=(run_day or start.date()).isoformat(), note=note)


def record(attempt: Attempt, settings: Settings) -> str:
    uri = attempt_uri(attempt, settings)
    Store(settings).write_text(uri, json.dumps(attempt.to_dict()))
    return uri


def read_ledger(settings: Settings, *, dag_id: str | None = None, run_id: str | None = None):
    """The ledger as a pandas frame (one row per attempt; empty with its columns when none)."""
    import pandas as pd

    store = Store(settings)
    base = ledger_root(settings)
    rows = []
    dags = [f"dag_id={quote(dag_id, safe='')}"] if dag_id else [
        d for d in store.list(base) if d.startswith("dag_id=")]
    for d in dags:
        runs = [f"run_id={quote(run_id, safe='')}"] if run_id else [
            r for r in store.list(join(base, d)) if r.startswith("run_id=")]
        for r in runs:
            folder = join(base, d, r)
            for name in store.list(folder):
                if name.endswith(".json"):
                    rows.append(json.loads(store.read_text(join(folder, name))))
    columns = list(Attempt.__dataclass_fields__)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.DataFrame(rows, columns=columns).sort_values(["start", "task_id", "try_number"],
                                                           ignore_index=True)


def run_summary(dag_id: str, run_id: str, settings: Settings) -> dict:
    """What one DAG run cost, attempt by attempt, and what it saved against on-demand."""
    df = read_ledger(settings, dag_id=dag_id, run_id=run_id)
    cost, od = float(df["cost_usd"].sum()), float(df["on_demand_cost_usd"].sum())
    steps = (df.groupby("task_id").agg(attempts=("try_number", "count"), seconds=("seconds", "sum"),
                                       cost_usd=("cost_usd", "sum"),
                                       on_demand_cost_usd=("on_demand_cost_usd", "sum"))
             .reset_index().to_dict("records")) if len(df) else []
    interrupted = df[df["state"] == "interrupted"] if len(df) else df
    return {"dag_id": dag_id, "run_id": run_id, "attempts": len(df),
            "seconds": round(float(df["seconds"].sum()), 1) if len(df) else 0.0,
            "cost_usd": round(cost, 6), "on_demand_cost_usd": round(od, 6),
            "saving_usd": round(od - cost, 6), "saving_share": round(1 - cost / od, 4) if od else 0.0,
            "interruptions": len(interrupted),
            "interruption_cost_usd": round(float(interrupted["cost_usd"].sum()), 6) if len(df) else 0.0,
            "steps": steps, "attempt_rows": df.to_dict("records")}


def summary_line(summary: dict) -> str:
    s = summary
    line = (f"Cost ${s['cost_usd']:.4f} for {s['attempts']} task attempt(s), {s['seconds']:.0f} s "
            f"(on demand ${s['on_demand_cost_usd']:.4f}: saved ${s['saving_usd']:.4f}, "
            f"{s['saving_share']:.0%})")
    if s["interruptions"]:
        line += f"; {s['interruptions']} spot interruption(s) cost ${s['interruption_cost_usd']:.4f}"
    return line
