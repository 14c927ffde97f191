"""Flightline step logic: pure, typed Python with no Airflow import.

Each flow is one module of :mod:`tasks.flows` that names its steps in order (the DAG runs one
task per step; the CLI and benchmarks call the same functions). A step is a function in its room:

- :mod:`tasks.landing`: the demo source, finding a day's drop;
- :mod:`tasks.features`: the Spark transform, builds and the staged write
  (:mod:`tasks.feature_contract` holds the columns, key and label, without Spark);
- :mod:`tasks.quality`: the one data quality gate and its quarantine;
- :mod:`tasks.training`: split, trainers, evaluation, registry, promotion decision.

A step takes the typed result of the step before (a dataclass with ``to_dict``/``from_dict``)
and the :class:`~tasks.settings.Settings`, and returns its own, so it runs the same in-process
(tests), from the ``flightline`` CLI, in an Airflow task and in a Kubernetes pod. Only those
edges read the environment.
"""
