"""The training run's cost estimate and its budget, checked before any capacity is requested.

The estimate is the chosen capacity's hourly price times each trainer's expected duration:
the median of that trainer's successful attempts in the cost ledger's history (its last
``HISTORY_RUNS`` runs), or, with no history yet, the run's time budget per trainer (the most
it may take). Trainers run side by side, each on its own machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.results import Result
from tasks.settings import Settings

HISTORY_RUNS = 20
TRAINER_TASKS = {"xgboost": "train_xgboost", "torch-horovod": "train_torch_horovod"}


class OverBudget(ValueError):
    """The run's estimate exceeds its budget: refused before any capacity is requested."""


@dataclass
class Estimate(Result):
    usd: float
    hourly_usd: float
    capacity: str  # e.g. "g4dn.xlarge spot in us-east-1a"
    parts: list[dict] = field(default_factory=list)  # per trainer: task, hours, basis, usd


def expected_seconds(task_id: str, settings: Settings, dag_id: str = "flightline_training") -> tuple[float | None, int]:
    """Median seconds of the task's successful attempts in the ledger (and how many)."""
    from tasks.cost.ledger import read_ledger

    df = read_ledger(settings, dag_id=dag_id)
    if not len(df):
        return None, 0
    done = df[(df["task_id"] == task_id) & (df["state"] == "success")].tail(HISTORY_RUNS)
    if done.empty:
        return None, 0
    return float(done["seconds"].median()), len(done)


def estimate_training(capacity: dict, families: list[str], time_budget_minutes: float,
                      settings: Settings) -> Estimate:
    hourly = float(capacity["hourly_usd"])
    parts = []
    for family in families:
        task_id = TRAINER_TASKS[family]
        seconds, n = expected_seconds(task_id, settings)
        if seconds is None:
            seconds, basis = time_budget_minutes * 60, "no history: its time budget"
        else:
            basis = f"median of {n} earlier run(s)"
        parts.append({"task": task_id, "hours": round(seconds / 3600, 4), "basis": basis,
                      "usd": round(hourly * seconds / 3600, 6)})
    where = capacity["instance_type"] + f" {capacity['capacity_type']}" + (
        f" in {capacity['zone']}" if capacity.get("zone") else "")
    return Estimate(usd=round(sum(p["usd"] for p in parts), 6), hourly_usd=hourly, capacity=where,
                    parts=parts)


def check_budget(estimate: Estimate, budget_usd: float) -> None:
    if estimate.usd > budget_usd:
        detail = "; ".join(f"{p['task']} {p['hours']:.2f} h ({p['basis']})" for p in estimate.parts)
        raise OverBudget(f"estimated ${estimate.usd:.4f} exceeds the budget ${budget_usd:.4f}: "
                         f"{estimate.capacity} at ${estimate.hourly_usd:.4f}/h x {detail}. "
                         "Raise the budget Param or shorten the time budget per trainer.")
