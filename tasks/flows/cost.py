"""The cost flow: what the training DAG runs before it asks for capacity, and the reports.

It has no DAG of its own: the training flow declares :func:`choose_within_budget` as its
``choose_capacity`` step (:mod:`tasks.flows.training`). :func:`choose_capacity` reads spot prices
and applies the rule; :func:`budget_step` prices the run (price x each trainer's expected
duration) and refuses one over its budget; the cost ledger's listener prices every task attempt
(duration x its capacity's price); :func:`cost_report` gives totals per DAG and step and a daily
chart.
"""

from __future__ import annotations

from tasks.cost.budget import Estimate, check_budget, estimate_training
from tasks.cost.report import cost_report
from tasks.cost.spot import Capacity, choose_capacity
from tasks.settings import Settings

__all__ = ["budget_step", "choose_capacity", "choose_within_budget", "cost_report"]


def budget_step(capacity: Capacity, families: list[str], time_budget_minutes: float,
                budget_usd: float, settings: Settings) -> Estimate:
    """Estimate the run on ``capacity`` and refuse it (``OverBudget``) above ``budget_usd``."""
    estimate = estimate_training(capacity.to_dict(), families, time_budget_minutes, settings)
    check_budget(estimate, budget_usd)
    return estimate


def choose_within_budget(families: list[str], time_budget_minutes: float, budget_usd: float,
                         settings: Settings) -> tuple[Capacity, Estimate]:
    """The training DAG's ``choose_capacity`` task: the capacity, then the budget check (both
    before any capacity is requested)."""
    capacity = choose_capacity(settings)
    return capacity, budget_step(capacity, families, time_budget_minutes, budget_usd, settings)

