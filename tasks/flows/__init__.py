"""Flows: one module per flow declares its steps, in order, and runs them in one process.

A step is a plain function (in its room of ``tasks/``, or in the flow module when it is a few
lines): it takes the typed results of the steps before (:class:`tasks.results.Result`
dataclasses) and the ``Settings``, and returns its own. A flow module declares its steps once,
in its ``FLOW`` (:mod:`tasks.flows.steps`); its DAG's task ids, the ``flightline step`` command,
the Kubernetes pods and the flow's ``run_*`` function all read that declaration.

- :mod:`tasks.flows.daily`: one day's drop to published features (``flightline_daily``);
- :mod:`tasks.flows.range_build`: many days of history in one Spark job (``features-range``);
- :mod:`tasks.flows.training`: split, train candidates, decide the promotion
  (``flightline_training``);
- :mod:`tasks.flows.serving`: package the champion as a Bento, check it on a live server,
  release it (the last two tasks of ``flightline_training``).
- :mod:`tasks.flows.monitoring`: score a day, its drift and quality reports, the retrain
  decision and request (``flightline_monitoring``);
- :mod:`tasks.flows.cost`: the spot step and the budget (``choose_capacity``).
"""
