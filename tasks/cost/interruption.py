"""Spot interruptions: the notice a trainer watches, and what it raises.

A spot node is reclaimed with a two-minute notice (EC2's ``spot/instance-action``; on
Kubernetes a node termination handler drains the pod). The trainer checks for a notice at each
safe point (an XGBoost round, a Horovod epoch): on one, it checkpoints to the model store and
stops with :class:`SpotInterrupted`, a distinct reason the ledger records as ``interrupted``;
the task's retry resumes from that checkpoint, and after ``spot_max_interruptions`` the next
attempt asks for on-demand capacity.

A notice is a file (``notice_file``: what a termination handler or a person creates; on this
machine ``touch`` simulates one) or, for tests and demos, a simulated notice: with
``spot_simulate_interruptions`` = N, attempts 1..N each get one after ``simulate_at`` safe
points (round or epoch), deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.results import Result
from tasks.settings import Settings

#: The exit status a trainer process uses for "interrupted, checkpointed" (EX_TEMPFAIL).
INTERRUPTED_EXIT = 75


class SpotInterrupted(RuntimeError):
    """The capacity is being reclaimed: the work so far is checkpointed; retry to resume."""


@dataclass(frozen=True)
class Notice(Result):
    notice_file: str = ""  # a path whose existence is the notice
    simulate_at: int = 0  # >0: a simulated notice at this safe point (round/epoch count)

    def due(self, progress: int) -> bool:
        """Whether a notice has arrived by safe point ``progress`` (rounds or epochs done)."""
        if self.simulate_at and progress >= self.simulate_at:
            return True
        return bool(self.notice_file) and Path(self.notice_file).exists()


def attempt_capacity(capacity: dict, *, dag_id: str, run_id: str, task_id: str,
                     settings: Settings) -> dict:
    """The capacity a trainer's next attempt asks for: the chosen one, or the same instance type
    on demand once the run's ledger holds ``spot_max_interruptions`` interrupted attempts of it
    (spot capacity that keeps being reclaimed is not worth more retries)."""
    from tasks.cost.ledger import read_ledger

    if capacity.get("capacity_type") != "spot":
        return dict(capacity)
    ledger = read_ledger(settings, dag_id=dag_id, run_id=run_id)
    interrupted = int(((ledger["task_id"] == task_id) & (ledger["state"] == "interrupted")).sum()) \
        if len(ledger) else 0
    if interrupted < settings.spot_max_interruptions:
        return dict(capacity)
    return capacity | {"capacity_type": "on-demand", "zone": None,
                       "hourly_usd": capacity["on_demand_usd"],
                       "reason": f"{interrupted} spot interruptions: {capacity['instance_type']} "
                                 "on demand"}


def notice_for(attempt: int, run_key: str, settings: Settings, *, per_attempt: int) -> Notice:
    """The notice a trainer's ``attempt`` (1-based) watches: the run's notice file, plus a
    simulated one on the first ``spot_simulate_interruptions`` attempts (after ``per_attempt``
    x ``attempt`` safe points, so each resumed attempt makes progress before its notice)."""
    folder = Path(settings.spot_notice_dir) if settings.spot_notice_dir else None
    path = str(folder / f"{run_key.replace('/', '_')}.notice") if folder else ""
    simulate = per_attempt * attempt if attempt <= settings.spot_simulate_interruptions else 0
    return Notice(notice_file=path, simulate_at=simulate)
