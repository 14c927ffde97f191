"""OpenLineage for every Flightline task, from the step declarations.

The OpenLineage provider asks an extractor for each task's inputs and outputs when the task
ends; :class:`StepExtractor` (registered in ``[openlineage] extractors``) answers for every
operator Flightline's DAGs use. Each task runs a declared step, so the step's inputs are the
XComs of the tasks its flow says produce them, and its result is the task's own XCom;
:func:`tasks.lineage.step_lineage` names what those read and wrote (drop files, raw and feature
partitions, model versions, Bentos, reports) by their data-root URIs. A task added to a flow has
lineage with nothing more to write.

Where the events go is the provider's own setting (``[openlineage] transport``): the rendered
``airflow.cfg`` writes them to ``$AIRFLOW_HOME/openlineage/events.jsonl`` (the file transport);
``AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "http", "url": "http://marquez:5000"}'`` sends them to
Marquez or any OpenLineage endpoint instead, and ``AIRFLOW__OPENLINEAGE__DISABLED=true`` turns
them off.
"""

from __future__ import annotations

import logging
from functools import cache

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage

log = logging.getLogger(__name__)

#: The operators the DAGs are made of (TaskFlow tasks and sensors, the gates, the report tasks,
#: the pods, the release approval).
OPERATORS = ["_PythonDecoratedOperator", "DecoratedSensorOperator", "QualityGateOperator",
             "MonitoringReportOperator", "StepPodOperator", "HorovodMPIJobOperator",
             "MonitoringReportPodOperator", "ReleaseApprovalOperator"]


@cache
def _flow_of(dag_id: str):
    from tasks.flows.steps import flows

    return next((f for f in flows().values() if f.dag == dag_id), None)


def step_datasets(dag_id: str, task_id: str, xcom) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs, outputs) of the step a task runs, by data-root URI; ``xcom(task_id)`` pulls a
    task's result in this run. Empty when the task runs no declared step or has no result."""
    from tasks.lineage import step_lineage
    from tasks.results import decode
    from tasks.settings import Settings

    flow = _flow_of(dag_id)
    if flow is None or task_id not in flow.steps:
        return (), ()
    step = flow[task_id]
    raw = xcom(task_id)
    if raw is None:
        return (), ()
    try:
        result = decode(raw, step.result)
    except ValueError:
        result = raw  # not the declared type (e.g. a tuple step): its strings still count
    inputs = []
    for _, producers in flow.sources(step):
        for producer in producers:
            value = xcom(producer)
            if value is not None:
                try:
                    inputs.append(decode(value, flow[producer].result))
                except ValueError:
                    inputs.append(value)
    lineage = step_lineage(inputs, result, Settings.from_env())
    return lineage.inputs, lineage.outputs


class StepExtractor(BaseExtractor):
    """Inputs and outputs of a Flightline task, from its declared step (see the module)."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return OPERATORS

    def _execute_extraction(self) -> OperatorLineage | None:
        return None  # the start event: what a step reads is known once its inputs are

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        from openlineage.client.event_v2 import Dataset

        from tasks.lineage import Dataset as Named

        def xcom(task_id: str):
            return task_instance.xcom_pull(task_ids=task_id)

        try:
            inputs, outputs = step_datasets(self.operator.dag_id, self.operator.task_id, xcom)
        except Exception as exc:  # lineage must never fail or hide the task's own outcome
            log.warning("no lineage for %s: %s", self.operator.task_id, exc)
            return None

        def ol(uri: str) -> Dataset:
            d = Named.of(uri)
            return Dataset(namespace=d.namespace, name=d.name)

        return OperatorLineage(inputs=[ol(u) for u in inputs], outputs=[ol(u) for u in outputs])

    def extract_on_failure(self, task_instance) -> OperatorLineage | None:
        return None  # a failed step published nothing
