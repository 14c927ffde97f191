"""The cost flow: the steps the training DAG runs before it asks for capacity, and the reports.

=================  ==========================  ===========  ===================================
task / step        takes                       returns      does
=================  ==========================  ===========  ===================================
choose_capacity    settings (+ on-demand)      Capacity     spot prices, the rule, the choice
check_budget       Capacity, families, budget  Estimate     price x expected duration; refuses
                                                            a run over its budget
(listener)         each task attempt           ledger row   duration x its capacity's price
cost_report        first, last                 totals, PNG  per DAG and step, daily chart
=================  ==========================  ===========  ===================================
"""

from __future__ import annotations

from tasks.cost.budget import Estimate, check_budget, estimate_training
from tasks.cost.report import cost_report
from tasks.cost.spot import Capacity, choose_capacity
from tasks.settings import Settings

__all__ = ["STEPS", "budget_step", "choose_capacity", "choose_within_budget", "cost_report"]


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


STEPS = {"choose_capacity": choose_capacity, "check_budget": budget_step,
         "choose_within_budget": choose_within_budget, "cost_report": cost_report}
