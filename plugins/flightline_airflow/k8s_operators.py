"""The operators that run a Flightline step on Kubernetes (imported only when a step does).

- :class:`StepPodOperator`: ``KubernetesPodOperator`` running ``flightline step`` in the task
  image; the step's result comes back through the XCom sidecar, its output into the task log.
- :class:`HorovodMPIJobOperator`: the Horovod trainer across GPU nodes as an MPIJob (Kubeflow MPI
  operator, ``kubeflow.org/v2beta1``), the way Horovod documents Kubernetes: a launcher pod runs
  the same ``flightline step`` (its ``horovodrun`` reads the hostfile the operator mounts) and
  one worker pod per node holds one rank per GPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import BaseOperator
from kubernetes.client.exceptions import ApiException

from flightline_airflow import kubernetes as kube
from flightline_airflow.operators import MonitoringReportLink
from tasks.cost.interruption import INTERRUPTED_EXIT


def _spot_interrupted(message: str) -> Exception:
    from tasks.cost.interruption import SpotInterrupted

    return SpotInterrupted(message)


def _prepared(op, context) -> tuple[dict, Any]:
    """Run the operator's ``prepare`` in the worker: the step's options and capacity (and its
    inputs, when ``prepare`` computes them); none: no options, the capacity as given."""
    if op.prepare is None:
        return {}, op.capacity
    prepared = op.prepare(context, list(op.step_inputs), op.capacity) or {}
    op.step_inputs = prepared.get("inputs", op.step_inputs)
    return prepared.get("options", {}), prepared.get("capacity", op.capacity)


class StepPodOperator(KubernetesPodOperator):
    """One heavy step as a pod: ``flightline step <flow.step> --input ... --options ...``.

    ``step_inputs`` (templated: the XComs of the steps before) become the command's inputs;
    ``capacity`` (templated: the cost step's choice) places a GPU trainer; ``prepare(context,
    inputs, capacity)`` runs first in the worker and may return ``options``, ``capacity`` and
    ``inputs`` (see :func:`flightline_airflow.kubernetes.step_task`). A pod that exits 75 was
    stopped by a spot interruption notice: the task fails as interrupted and its retry resumes
    from the checkpoint. A step with nothing to do (a ``null`` result) skips the task.
    """

    template_fields: Sequence[str] = (*KubernetesPodOperator.template_fields, "step_inputs", "capacity")
    ui_color = "#e8eaf6"

    def __init__(self, *, step: str, step_inputs: list | None = None, capacity: Any = None,
                 prepare: Callable | None = None, gpu: bool = False, settings=None, **kwargs: Any) -> None:
        from tasks.settings import Settings

        self.settings = settings or Settings.from_env()
        defaults = kube.operator_kwargs(step, self.settings, gpu=False)
        super().__init__(**{**defaults, **kwargs})
        self.step = step
        self.step_inputs = step_inputs or []
        self.capacity = capacity
        self.prepare = prepare
        self.gpu = gpu
        self.step_options: dict = {}

    def _place(self, options: dict, capacity: dict | None) -> None:
        on_gpu = self.gpu and str(options.get("gpu", "auto")) != "off"
        gpus = int(options.get("workers", 1)) if self.step == "train_torch_horovod" else 1
        # one Horovod rank per GPU (NCCL needs one GPU per rank)
        self.image = self.settings.k8s_gpu_image if on_gpu else self.settings.k8s_image
        self.container_resources = kube.resources(self.step, on_gpu, gpus)
        placed = kube.placement(capacity, on_gpu)
        self.node_selector, self.affinity, self.tolerations = (
            placed["node_selector"], placed["affinity"], placed["tolerations"] or [])
        self.arguments = kube.step_arguments(self.step, list(self.step_inputs), options)

    def build_pod_request_obj(self, context=None, *, dry_run: bool = False):
        if not self.arguments:  # a dry run or a test: the spec from what the operator holds
            self._place(self.step_options, self.capacity)
        return super().build_pod_request_obj(context, dry_run=dry_run)

    def execute(self, context):
        options, capacity = _prepared(self, context)
        self.step_options = options
        self._place(options, capacity)
        result = super().execute(context)
        if result is None:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{self.step}: nothing to do (the step returned no result)")
        return result

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None) -> None:
        """The provider's cleanup (the pod is deleted, whatever its end), then the failure told
        by what happened to the pod: a spot reclaim or exit 75 becomes :class:`SpotInterrupted`
        (retried, resumed); an image that cannot be pulled fails without retries, naming it; a
        pod never scheduled names the scheduler's reason."""
        fresh = self._read(pod) if remote_pod is not None and not self._killed else None
        try:
            super().cleanup(pod, remote_pod, xcom_result=xcom_result, context=context)
        except Exception as exc:
            from airflow.sdk.exceptions import AirflowSkipException

            if isinstance(exc, AirflowSkipException):
                raise
            if fresh is self.GONE:  # vanished with its node while it ran: a reclaim
                raise _spot_interrupted(f"{self.step}: pod {pod.metadata.name} disappeared with its node "
                                        "before it ended; the retry resumes from the last checkpoint") from exc
            # unreadable now: the provider's snapshot, only if it shows the pod's end
            ended = getattr(getattr(remote_pod, "status", None), "phase", None) in ("Failed", "Succeeded")
            judged = fresh if fresh is not None else (remote_pod if ended else None)
            why = pod_failure(self.step, judged, self.base_container_name, self.schedule_timeout_seconds)
            if why is not None:
                raise why from exc
            raise

    GONE = object()  # what _read answers for a pod the API server no longer has

    def _read(self, pod):
        """The pod as the API server has it now (the snapshot the provider hands ``cleanup`` on a
        failure is the one taken at creation); GONE when it has none; None when unreadable."""
        try:
            return self.pod_manager.read_pod(pod)
        except ApiException as exc:
            return self.GONE if exc.status == 404 else None
        except Exception:
            return None


#: Why a container cannot start because of its image: no retry will change that.
IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
#: A pod ended by its node going away: spot reclaim, drain, node shutdown, eviction.
#: (Not "Evicted": a kubelet evicts for the pod's own disk or memory pressure too.)
RECLAIMED = {"Terminated", "NodeShutdown", "Shutdown", "NodeLost", "DeletionByPodGC"}


def pod_failure(step: str, remote_pod, container: str, schedule_timeout: int | None) -> Exception | None:
    """The exception that says why pod ``remote_pod`` of ``step`` failed, or None when its own
    exit is the whole story (the provider's error, with the container's message, stands)."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    if remote_pod is None or not hasattr(remote_pod, "status") or remote_pod.status is None:
        return None
    status, name = remote_pod.status, remote_pod.metadata.name
    if _exit_code(remote_pod, container) == INTERRUPTED_EXIT:
        return _spot_interrupted(f"{step}: pod stopped by a spot interruption notice after its last "
                                 "checkpoint; the retry resumes")
    disrupted = next((c for c in status.conditions or []
                      if c.type == "DisruptionTarget" and c.status == "True"), None)
    if status.reason != "Evicted" and (disrupted is not None or (status.phase == "Failed"
                                                                  and status.reason in RECLAIMED)):
        reason = status.reason or disrupted.reason
        message = status.message or (disrupted.message if disrupted else "") or ""
        return _spot_interrupted(f"{step}: pod {name} was stopped with its node ({reason}: {message}); "
                                 "the retry resumes from the last checkpoint")
    for s in status.container_statuses or []:
        waiting = s.state.waiting if s.state else None
        if waiting is not None and waiting.reason in IMAGE_ERRORS:
            from airflow.providers.cncf.kubernetes.utils.pod_manager import (
                detect_pod_terminate_early_issues,
            )

            if detect_pod_terminate_early_issues(remote_pod) is None:  # rate limit, registry outage
                return AirflowException(f"{step}: image {s.image} could not be pulled yet "
                                        f"({waiting.reason}: {waiting.message or ''}); retried")
            return AirflowFailException(
                f"{step}: image {s.image} cannot be pulled ({waiting.reason}: {waiting.message or ''}); "
                "not retried: fix the image name or tag (FLIGHTLINE_K8S_IMAGE, FLIGHTLINE_K8S_GPU_IMAGE) "
                "or the registry's pull secret")
    if status.phase == "Pending":
        unscheduled = next((c for c in status.conditions or []
                            if c.type == "PodScheduled" and c.status != "True"), None)
        if unscheduled is not None or not status.conditions:
            why = unscheduled.message if unscheduled is not None and unscheduled.message else "no reason given"
            return AirflowException(f"{step}: pod {name} was not scheduled within {schedule_timeout} s: "
                                    f"{why}; the pod was deleted")
        return AirflowException(f"{step}: pod {name} was scheduled but did not start within its start-up "
                                "limit; the pod was deleted")
    return None


def _exit_code(remote_pod, container: str) -> int | None:
    statuses = (remote_pod.status.container_statuses if remote_pod and remote_pod.status else None) or []
    for s in statuses:
        if s.name == container and s.state and s.state.terminated:
            return s.state.terminated.exit_code
    return None


class MonitoringReportPodOperator(StepPodOperator):
    """A monitoring report step as a pod, with the same Report link as the local task."""

    operator_extra_links = (MonitoringReportLink(),)

    def __init__(self, *, report: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.report_path: str | None = None

    def execute(self, context):
        from datetime import date

        from tasks.monitoring.reports import report_path

        if not self.step_inputs or not self.step_inputs[0]:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("nothing was scored")
        self.report_path = report_path(date.fromisoformat(self.step_inputs[0]["day"]), self.report)
        return super().execute(context)


# ------------------------------------------------------------------------------ MPIJob
MPI_GROUP, MPI_VERSION, MPI_PLURAL = "kubeflow.org", "v2beta1", "mpijobs"
SSHD_CONFIG = "/home/airflow/.sshd/sshd_config"  # written by infra/Dockerfile.gpu


def mpijob_manifest(name: str, settings, *, inputs: list, options: dict, capacity: dict | None,
                    result_path: str) -> dict:
    """The MPIJob of a Horovod training over ``settings.horovod_nodes`` GPU nodes.

    The launcher runs ``flightline step training.train_torch_horovod`` with the hostfile the MPI
    operator mounts (``/etc/mpi/hostfile``); its ``horovodrun --gloo`` starts one rank per GPU
    on the workers over SSH (the operator's keys), NCCL does the allreduce between GPUs. The
    arrays and every epoch's checkpoint live on the data volume, so a reclaimed spot node costs
    at most one epoch: the retry resumes."""
    from kubernetes.client import ApiClient

    gpus_per_node = max(1, settings.cost_job_gpus)
    ranks = settings.horovod_nodes * gpus_per_node
    options = {**options, "workers": ranks}
    base = kube.operator_kwargs("train_torch_horovod", settings, gpu=True)
    api = ApiClient()
    env = [api.sanitize_for_serialization(e) for e in base["env_vars"]]
    env = [e for e in env if e["name"] != "FLIGHTLINE_HOROVOD_HOSTFILE"]
    env.append({"name": "FLIGHTLINE_HOROVOD_HOSTFILE", "value": "/etc/mpi/hostfile"})
    env_from = [{"secretRef": {"name": settings.k8s_env_secret}}] if settings.k8s_env_secret else []
    volumes = [api.sanitize_for_serialization(v) for v in base["volumes"]]
    mounts = [api.sanitize_for_serialization(m) for m in base["volume_mounts"]]
    placed = kube.placement(capacity, True)
    pod_spec_common = {
        "serviceAccountName": settings.k8s_service_account,
        "volumes": volumes,
        "nodeSelector": placed["node_selector"],
        "affinity": api.sanitize_for_serialization(placed["affinity"]),
        "tolerations": api.sanitize_for_serialization(placed["tolerations"]),
    }
    security = {"allowPrivilegeEscalation": False}
    args = [a if a != kube.XCOM_RESULT else result_path
            for a in kube.step_arguments("train_torch_horovod", inputs, options)]
    labels = {**kube.PART_OF, kube.LABEL_STEP: "train-torch-horovod"}
    launcher = {
        "replicas": 1,
        "restartPolicy": "Never",
        "template": {"metadata": {"labels": labels}, "spec": {
            **pod_spec_common,
            "containers": [{
                "name": "launcher", "image": settings.k8s_gpu_image,
                "imagePullPolicy": settings.k8s_image_pull_policy,
                "command": ["flightline"], "args": args, "env": env, "envFrom": env_from,
                "volumeMounts": mounts, "securityContext": security,
                "resources": {"requests": {"cpu": "1", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
            }]}},
    }
    worker = {
        "replicas": settings.horovod_nodes,
        "restartPolicy": "Never",
        "template": {"metadata": {"labels": labels}, "spec": {
            **pod_spec_common,
            "containers": [{
                "name": "worker", "image": settings.k8s_gpu_image,
                "imagePullPolicy": settings.k8s_image_pull_policy,
                # an SSH server as the image's user (infra/Dockerfile.gpu), keys from the operator
                "command": ["/usr/sbin/sshd"], "args": ["-De", "-f", SSHD_CONFIG],
                "ports": [{"name": "ssh", "containerPort": settings.horovod_ssh_port}],
                "env": env, "envFrom": env_from, "volumeMounts": mounts, "securityContext": security,
                "resources": api.sanitize_for_serialization(kube.resources("train_torch_horovod", True, gpus_per_node)),
            }]}},
    }
    return {
        "apiVersion": f"{MPI_GROUP}/{MPI_VERSION}",
        "kind": "MPIJob",
        "metadata": {"name": name, "namespace": settings.k8s_namespace, "labels": labels},
        "spec": {
            "slotsPerWorker": gpus_per_node,
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 0,
                          "activeDeadlineSeconds": settings.k8s_deadline_s,
                          "ttlSecondsAfterFinished": 3600},
            "mpiImplementation": "OpenMPI",
            "sshAuthMountPath": "/home/airflow/.ssh",
            "mpiReplicaSpecs": {"Launcher": launcher, "Worker": worker},
        },
    }


class HorovodMPIJobOperator(BaseOperator):
    """The Horovod trainer as an MPIJob: created through the Kubernetes API, watched until it
    succeeds or fails, its launcher's log copied into the task log, its result read from the
    data volume (the launcher writes it there)."""

    template_fields: Sequence[str] = ("step_inputs", "capacity")
    ui_color = "#e8eaf6"

    def __init__(self, *, step_inputs: list | None = None, capacity: Any = None,
                 prepare: Callable | None = None, settings=None, poll_s: float = 15, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from tasks.settings import Settings

        self.settings = settings or Settings.from_env()
        self.step_inputs = step_inputs or []
        self.capacity = capacity
        self.prepare = prepare
        self.poll_s = poll_s

    def manifest(self, name: str, options: dict, capacity: dict | None) -> dict:
        root = self.settings.k8s_data_mount if self.settings.k8s_data_pvc else self.settings.data_root
        models = dict(self.settings.zone_dirs).get("models", "models")
        result = f"{root.rstrip('/')}/{models}/.results/{name}.json"
        return mpijob_manifest(name, self.settings, inputs=list(self.step_inputs), options=options,
                               capacity=capacity, result_path=result)

    def execute(self, context):
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        options, capacity = _prepared(self, context)
        ti = context["ti"]
        name = f"hvd-{ti.run_id}-{ti.try_number}".lower()
        name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)[:50].strip("-")
        body = self.manifest(name, options, capacity)
        hook = KubernetesHook(conn_id="kubernetes_default")
        ns = self.settings.k8s_namespace
        hook.create_custom_object(MPI_GROUP, MPI_VERSION, MPI_PLURAL, body, ns)
        self._job = (hook, name, ns)  # for on_kill
        self.log.info("MPIJob %s/%s: %d nodes x %d GPUs", ns, name, self.settings.horovod_nodes,
                      self.settings.cost_job_gpus)
        try:
            state = self._wait(hook, name, ns)
            self._launcher_log(hook, name, ns)
            failed = self._failed_pods(hook, name, ns) if state != "Succeeded" else ""
        finally:
            self._delete(hook, name, ns)
        if state != "Succeeded":
            raise RuntimeError(f"MPIJob {name} ended {state}" + (f": {failed}" if failed else ""))
        from tasks.storage import Store

        # The launcher wrote it to the data root; Airflow's workers mount the same volume there.
        return json.loads(Store(self.settings).read_text(f"{self.settings.zone('models')}/.results/{name}.json"))

    def on_kill(self) -> None:
        """The task was killed or cleared: the MPIJob goes, and with it (the garbage collector,
        by owner) its launcher and workers."""
        job = getattr(self, "_job", None)
        if job is not None:
            self._delete(*job)

    def _delete(self, hook, name: str, ns: str) -> None:
        try:
            hook.delete_custom_object(MPI_GROUP, MPI_VERSION, MPI_PLURAL, name, ns)
            self.log.info("MPIJob %s/%s deleted (its pods go with it)", ns, name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _wait(self, hook, name: str, ns: str) -> str:
        deadline = time.monotonic() + self.settings.k8s_deadline_s + 900
        while time.monotonic() < deadline:
            try:
                job = hook.get_custom_object(MPI_GROUP, MPI_VERSION, MPI_PLURAL, name, ns)
            except ApiException as exc:
                if exc.status == 404:
                    return "Deleted"
                raise
            for cond in (job.get("status") or {}).get("conditions") or []:
                if cond.get("type") in ("Succeeded", "Failed") and cond.get("status") == "True":
                    self.log.info("MPIJob %s: %s (%s)", name, cond["type"], cond.get("message", ""))
                    return cond["type"]
            time.sleep(self.poll_s)
        return "TimedOut"

    def _job_pods(self, hook, name: str, ns: str, role: str | None = None):
        selector = f"training.kubeflow.org/job-name={name}"
        if role:
            selector += f",training.kubeflow.org/job-role={role}"
        return hook.core_v1_client.list_namespaced_pod(ns, label_selector=selector).items

    def _failed_pods(self, hook, name: str, ns: str) -> str:
        """Which of the job's pods failed and why (its container's reason and exit code): what
        ended the job, in the task's error ("" when they cannot be listed)."""
        told = []
        try:
            pods = self._job_pods(hook, name, ns)
        except ApiException:
            return ""
        for pod in pods:
            for s in (pod.status.container_statuses or []) if pod.status else []:
                end = s.state.terminated if s.state else None
                if end is not None and end.exit_code != 0:
                    told.append(f"{pod.metadata.name} ({s.name}) {end.reason or 'Error'}, exit {end.exit_code}"
                                + (f": {end.message}" if end.message else ""))
        return "; ".join(told)

    def _launcher_log(self, hook, name: str, ns: str) -> None:
        try:
            for pod in self._job_pods(hook, name, ns, "launcher"):
                self.log.info("launcher %s:\n%s", pod.metadata.name,
                              hook.core_v1_client.read_namespaced_pod_log(pod.metadata.name, ns))
        except ApiException as exc:  # the log is a courtesy; the job's end is what counts
            self.log.warning("MPIJob %s: the launcher's log could not be read (%s)", name, exc.reason)


def pod_operator_for(task_id: str, inputs: list, *, settings, capacity=None, prepare=None,
                     gpu: bool = False, report: str | None = None, **task_kwargs) -> BaseOperator:
    """The operator that runs heavy step ``task_id`` on the cluster (see
    :func:`flightline_airflow.step_tasks.step_task`)."""
    if task_id == "train_torch_horovod" and settings.horovod_nodes > 1:
        return HorovodMPIJobOperator(task_id=task_id, step_inputs=inputs, capacity=capacity,
                                     prepare=prepare, settings=settings, **task_kwargs)
    if report:
        return MonitoringReportPodOperator(task_id=task_id, step=task_id, report=report,
                                           step_inputs=inputs, settings=settings, **task_kwargs)
    return StepPodOperator(task_id=task_id, step=task_id, step_inputs=inputs, capacity=capacity,
                           prepare=prepare, gpu=gpu, settings=settings, **task_kwargs)
