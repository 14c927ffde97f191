"""Heavy steps as Kubernetes pods: one switch per step, the same ``flightline`` command.

``FLIGHTLINE_K8S_STEPS`` names the task ids that run as pods (``all`` for every step declared
with a ``pod``, :mod:`tasks.flows.steps`). For those,
:func:`flightline_airflow.step_tasks.step_task` gives the DAG a
:class:`~flightline_airflow.k8s_operators.StepPodOperator` (the cncf-kubernetes provider's
``KubernetesPodOperator``) that runs ``flightline step <flow.step>`` in the task image on the
results of the steps before; for the others the DAG's own TaskFlow task calls the same step in
the worker (:func:`tasks.flows.steps.run_step`). A Horovod trainer with
``FLIGHTLINE_HOROVOD_NODES`` > 1 runs as an MPIJob across GPU nodes instead.

The pod spec is built here from the step's declaration (its ``Pod``: requests, GPU, Spark), the
settings and, for the trainers, the cost step's capacity choice: image, requests and limits, ``nvidia.com/gpu``, node selection and tolerations for the
chosen spot GPU nodes (with Karpenter's on-demand fallback), the service account, environment
from a Secret by reference, the data volume, ``activeDeadlineSeconds``. Only light imports at
module level: DAG files import this at parse time.
"""

from __future__ import annotations

import json
from typing import Any

XCOM_RESULT = "/airflow/xcom/return.json"  # where KubernetesPodOperator's sidecar reads XCom
#: The official Airflow image's user; the task images run as it.
RUN_AS_USER = 50000
IN_CLUSTER_K8S = "k8s://https://kubernetes.default.svc:443"

LABEL_STEP = "flightline.io/step"
PART_OF = {"app.kubernetes.io/part-of": "flightline"}


# ------------------------------------------------------------------------------ what a pod gets
def declared(task_id: str):
    """The declaration of pod step ``task_id`` (:func:`tasks.flows.steps.pod_steps`)."""
    from tasks.flows.steps import pod_steps

    steps = pod_steps()
    if task_id not in steps:
        raise ValueError(f"{task_id!r} is not a step declared to run as a pod; those are: "
                         f"{', '.join(steps)}")
    return steps[task_id]


def pod_settings_env(task_id: str, settings) -> dict[str, str]:
    """The pod's ``FLIGHTLINE_*`` environment: the worker's settings, explicitly, with what
    differs inside the cluster (the data root as the pod sees it, Spark's master, scratch)."""
    env = settings.to_env()
    env["FLIGHTLINE_DATA_ROOT"] = settings.k8s_data_mount if settings.k8s_data_pvc else settings.data_root
    env["FLIGHTLINE_BENTOML_HOME"] = "/tmp/bentoml"  # per pod; Bentos travel as archives
    env["FLIGHTLINE_K8S_STEPS"] = ""  # inside the pod the step runs where it is
    env["FLIGHTLINE_HOROVOD_HOSTFILE"] = ""
    pod = declared(task_id).pod
    if not settings.code_version:  # no git checkout in the image: the image is the code
        image = settings.k8s_gpu_image if pod.gpu else settings.k8s_image
        env["FLIGHTLINE_CODE_VERSION"] = f"image {image}"
    if pod.spark:
        env["FLIGHTLINE_SPARK_MASTER"] = (IN_CLUSTER_K8S if settings.k8s_spark_executors
                                          else f"local[{pod.cpu}]")
    return env


def placement(capacity: dict | None, gpu: bool) -> dict[str, Any]:
    """Node selector, affinity and tolerations for a step (kubernetes client objects).

    A GPU trainer goes to the GPU node pool (its taint tolerated) on the instance type the cost
    step chose. On spot capacity both capacity types are allowed and spot and the chosen zone are
    preferred: Karpenter launches spot when it can and falls back to on-demand when spot is short
    (its documented behaviour for a NodePool allowing both). On on-demand capacity (the choice,
    or after repeated interruptions) only on-demand nodes qualify."""
    from kubernetes.client import models as k8s

    selector = {"kubernetes.io/os": "linux"}
    if not gpu:
        return {"node_selector": selector, "affinity": None, "tolerations": None}
    selector["flightline.io/pool"] = "gpu"
    tolerations = [
        k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
        k8s.V1Toleration(key="flightline.io/gpu-pool", operator="Exists", effect="NoSchedule"),
    ]
    required, preferred = [], []
    cap = capacity or {}
    if cap.get("instance_type"):
        required.append(k8s.V1NodeSelectorRequirement(
            key="node.kubernetes.io/instance-type", operator="In", values=[cap["instance_type"]]))
    spot = cap.get("capacity_type") == "spot"
    required.append(k8s.V1NodeSelectorRequirement(
        key="karpenter.sh/capacity-type", operator="In",
        values=["spot", "on-demand"] if spot else ["on-demand"]))
    if spot:
        preferred.append(k8s.V1PreferredSchedulingTerm(weight=100, preference=k8s.V1NodeSelectorTerm(
            match_expressions=[k8s.V1NodeSelectorRequirement(
                key="karpenter.sh/capacity-type", operator="In", values=["spot"])])))
    if cap.get("zone"):
        preferred.append(k8s.V1PreferredSchedulingTerm(weight=50, preference=k8s.V1NodeSelectorTerm(
            match_expressions=[k8s.V1NodeSelectorRequirement(
                key="topology.kubernetes.io/zone", operator="In", values=[cap["zone"]])])))
    affinity = k8s.V1Affinity(node_affinity=k8s.V1NodeAffinity(
        required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
            node_selector_terms=[k8s.V1NodeSelectorTerm(match_expressions=required)]),
        preferred_during_scheduling_ignored_during_execution=preferred or None))
    return {"node_selector": selector, "affinity": affinity, "tolerations": tolerations}


def resources(task_id: str, gpu: bool, gpus: int = 1):
    from kubernetes.client import models as k8s

    pod = declared(task_id).pod
    req = {"cpu": pod.cpu, "memory": pod.memory}
    limits = {"memory": req["memory"]}
    if gpu:
        limits["nvidia.com/gpu"] = str(gpus)
        req["nvidia.com/gpu"] = str(gpus)
    return k8s.V1ResourceRequirements(requests=req, limits=limits)


def step_arguments(task_id: str, inputs: list, options: dict | None) -> list[str]:
    args = ["step", declared(task_id).qualname]
    for value in inputs:
        args += ["--input", json.dumps(value, sort_keys=True)]
    return [*args, "--options", json.dumps(options or {}, sort_keys=True), "--result-file", XCOM_RESULT]


def operator_kwargs(task_id: str, settings, *, gpu: bool = False) -> dict[str, Any]:
    """Everything of a step's ``KubernetesPodOperator`` that does not depend on the run."""
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    env = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(pod_settings_env(task_id, settings).items())]
    env += [  # the downward API: Spark's driver address and owner for its executor pods
        k8s.V1EnvVar(name="FLIGHTLINE_POD_IP", value_from=k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path="status.podIP"))),
        k8s.V1EnvVar(name="FLIGHTLINE_POD_NAME", value_from=k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path="metadata.name"))),
    ]
    volumes, mounts = [], []
    if settings.k8s_data_pvc:
        volumes.append(k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=settings.k8s_data_pvc)))
        mounts.append(k8s.V1VolumeMount(name="data", mount_path=settings.k8s_data_mount))
    volumes.append(k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()))
    mounts.append(k8s.V1VolumeMount(name="tmp", mount_path="/tmp"))
    return {
        "namespace": settings.k8s_namespace,
        "image": settings.k8s_gpu_image if gpu else settings.k8s_image,
        "image_pull_policy": settings.k8s_image_pull_policy,
        "cmds": ["flightline"],
        "service_account_name": settings.k8s_service_account,
        "env_vars": env,
        "secrets": [Secret("env", None, settings.k8s_env_secret)] if settings.k8s_env_secret else [],
        "volumes": volumes,
        "volume_mounts": mounts,
        "labels": {**PART_OF, LABEL_STEP: task_id.replace("_", "-")},
        "active_deadline_seconds": settings.k8s_deadline_s,
        "security_context": k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=RUN_AS_USER,
                                                     fs_group=0),
        "container_security_context": k8s.V1SecurityContext(
            allow_privilege_escalation=False, capabilities=k8s.V1Capabilities(drop=["ALL"])),
        "get_logs": True,  # the container's output streams into the Airflow task log
        "do_xcom_push": True,
        # Every pod goes when its task ends, failed ones too (nothing left to pay for or to
        # clean by hand); what `kubectl describe` would show is in the task log first.
        "on_finish_action": "delete_pod",
        "log_events_on_failure": True,
        "startup_timeout_seconds": 900,  # a spot GPU node may take minutes to join
        # Airflow's connection says where the API server is (in-cluster when it names none).
        "kubernetes_conn_id": "kubernetes_default",
    }
