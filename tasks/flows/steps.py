"""One heavy step by name, from the typed results of the steps before: what a Kubernetes pod runs.

``flightline step NAME --input JSON ... --options JSON`` calls :func:`run_step`, which parses each
input into the step's typed result (``Drop``, ``Split``, ``Scored``...), runs the flow's step with
the settings the pod was given, and returns the step's result as the dict the DAG's XCom carries.
The DAG's local path and the pod path therefore run the same function on the same inputs; only
where it runs differs (:mod:`flightline_airflow.kubernetes` builds the pod).

The names are :data:`tasks.settings.POD_STEPS`' values (``flow.step``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from tasks.settings import POD_STEPS, Settings


def _table() -> dict[str, tuple[Callable, tuple[Callable[[Any], Any], ...]]]:
    """name -> (step, one parser per input) (imported here: a pod runs one step)."""
    from tasks.flows import daily, monitoring, serving, training
    from tasks.landing import Drop
    from tasks.monitoring.scoring import Scored
    from tasks.serving.package import Packaged
    from tasks.training.data import Split
    from tasks.training.promotion import Decision

    def maybe(parse):
        return lambda d: None if d is None else parse(d)

    return {
        "daily.build_features": (daily.build_features, (Drop.from_dict,)),
        "training.train_xgboost": (training.STEPS["train_xgboost"], (Split.from_dict,)),
        "training.train_torch_horovod": (training.STEPS["train_torch_horovod"], (Split.from_dict,)),
        "serving.package_champion": (serving.package_champion, (maybe(Decision.from_dict),)),
        "serving.check_and_release": (serving.check_and_release, (Packaged.from_dict,)),
        "monitoring.score_day": (monitoring.score_day, (date.fromisoformat,)),
        "monitoring.drift_report": (monitoring.drift_report, (Scored.from_dict,)),
        "monitoring.quality_report": (monitoring.quality_report, (Scored.from_dict,)),
    }


def step_names() -> list[str]:
    return sorted(set(POD_STEPS.values()))


def run_step(name: str, inputs: list, settings: Settings, options: dict | None = None) -> dict | None:
    """Run step ``name`` on ``inputs`` (the results of the steps before, as dicts, or an ISO
    date for ``monitoring.score_day``) with keyword ``options`` (the trainers' run key, workers,
    GPU choice, time budget; ``notice``: ``{"attempt", "per_attempt"}`` on spot capacity).
    Returns the step's result as a dict (None when the step has nothing to do)."""
    table = _table()
    if name not in table:
        raise ValueError(f"unknown step {name!r}; steps that run as pods: {', '.join(sorted(table))}")
    step, parsers = table[name]
    if len(inputs) != len(parsers):
        raise ValueError(f"step {name} takes {len(parsers)} input(s) (the results of the steps "
                         f"before it), got {len(inputs)}")
    args = []
    for i, (parse, value) in enumerate(zip(parsers, inputs, strict=True)):
        try:
            args.append(parse(value))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"step {name}: input {i + 1} is not the result it expects: {exc!r}") from exc
    options = dict(options or {})
    if "notice" in options:  # spot capacity: the trainer watches for an interruption notice
        from tasks.cost.interruption import notice_for

        n = options.pop("notice")
        options["notice"] = notice_for(int(n["attempt"]), options["run_key"], settings,
                                       per_attempt=int(n["per_attempt"]))
    result = step(*args, settings=settings, **options)
    return None if result is None else result.to_dict()
