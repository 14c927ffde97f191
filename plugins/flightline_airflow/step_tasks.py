"""DAG helpers that turn step declarations (:mod:`tasks.flows.steps`) into Airflow tasks.

- :func:`flow_task`: the TaskFlow task of a declared step, named by its task id: it runs the
  step on the results of the tasks before (their XComs, in the order the step takes them),
  returns the step's result as its XCom, adds the result's ``note()`` to the run's note, and
  skips when the step has nothing to do (None). A light step needs nothing more.
- :func:`step_task`: a heavy step's task: the DAG's own task, or the step as a Kubernetes pod
  (an MPIJob for Horovod across nodes) when ``FLIGHTLINE_K8S_STEPS`` names it.

Only light imports at module level: DAG files import this at parse time.
"""

from __future__ import annotations

from typing import Any


def run_declared(qualname: str, inputs: list, options: dict | None = None) -> Any:
    """Run a declared step in this worker on its inputs' JSON; its result as JSON."""
    from tasks.flows.steps import run_step
    from tasks.settings import Settings

    return run_step(qualname, inputs, Settings.from_env(), options)


def flow_task(qualname: str, **task_kwargs):
    """The TaskFlow task of declared step ``qualname`` (``flow.step``); call it with the
    XComArgs of the tasks whose results the step takes. ``task_kwargs`` go to ``@task``
    (``outlets``, ``retries``, ...)."""
    from airflow.sdk import task

    name = qualname.split(".", 1)[1]

    def run(*inputs, **context):
        from airflow.sdk.exceptions import AirflowSkipException

        from tasks.flows.steps import find

        result = run_declared(qualname, list(inputs))
        if result is None:
            raise AirflowSkipException(f"{name}: nothing to do")
        note = getattr(find(qualname).result, "note", None)
        if callable(note):
            from flightline_airflow.run_notes import write_run_note
            from tasks.results import decode

            text = decode(result, find(qualname).result).note()
            if text:
                write_run_note(context, text)
        return result

    run.__name__ = run.__qualname__ = name
    run.__doc__ = f"Runs the declared step {qualname} (tasks/flows/{qualname.split('.')[0]}.py)."
    return task(task_id=name, **task_kwargs)(run)


def step_task(task_id: str, local, inputs: list, *, settings, capacity=None, prepare=None,
              gpu: bool = False, report: str | None = None, **pod_kwargs):
    """The task of heavy step ``task_id``: ``local()`` (which wires the DAG's own task) unless
    the settings run that step as a pod, whose inputs are then ``inputs`` (XComArgs of the
    steps before).

    ``prepare(context, inputs, capacity)`` runs in the worker before the pod is built and returns
    a dict with any of ``options`` (the step's keyword options: the trainers' run key, Params),
    ``capacity`` (the spot fallback) and ``inputs`` (e.g. the day the run monitors); ``report``
    gives the pod's task the monitoring report's link."""
    from flightline_airflow.deployment import Deployment

    if task_id not in Deployment.from_env().pod_steps(settings):
        return local()
    from flightline_airflow.k8s_operators import pod_operator_for

    return pod_operator_for(task_id, list(inputs), settings=settings, capacity=capacity,
                            prepare=prepare, gpu=gpu, report=report, **pod_kwargs).output
