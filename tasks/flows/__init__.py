"""Flows: one module per flow names its steps, in order, and runs them in one process.

A step is a plain function in its room of ``tasks/`` (landing, features, quality, training):
it takes the typed result of the step before (a dataclass with ``to_dict``/``from_dict``) and the
``Settings``, and returns its own. A flow module lists its steps in ``STEPS`` under the task ids
of its DAG (one task per step) and offers a ``run_*`` function that chains them for the CLI,
benchmarks and tests.

- :mod:`tasks.flows.daily`: one day's drop to published features (``flightline_daily``);
- :mod:`tasks.flows.range_build`: many days of history in one Spark job (``features-range``);
- :mod:`tasks.flows.training`: split, train candidates, decide the promotion
  (``flightline_training``);
- :mod:`tasks.flows.serving`: package the champion as a Bento, check it on a live server,
  release it (the last two tasks of ``flightline_training``).
- :mod:`tasks.flows.monitoring`: score a day, its drift and quality reports, the retrain
  decision and request (``flightline_monitoring``);
- :mod:`tasks.flows.cost`: the spot step and the budget (``choose_capacity``).

:mod:`tasks.flows.steps` runs one heavy step by name on the results of the steps before: the
worker's task and a Kubernetes pod (``flightline step``) call the same function.
"""
