"""Flightline settings: one typed place, every field overridable by an environment variable.

Each field reads ``FLIGHTLINE_<FIELD>`` (upper case) from the environment; the defaults run
everything on this machine: a local data folder inside the project, Spark in local mode, the
2013 replay on.  Only the edges read the environment (the CLI, DAG tasks, benchmarks) with
``Settings.from_env()``; every step in ``tasks/`` takes the ``Settings`` it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The data zones under the data root, in the order data flows through them. A step that
#: writes a zone of its own declares it (``step(..., writes=("summaries",))``,
#: :mod:`tasks.flows.steps`), which adds it to :func:`zones`; nothing is edited here.
ZONES = ("landing", "raw", "features", "quarantine", "models", "predictions", "reports", "costs")
_DECLARED: list[str] = []


def declare_zone(name: str) -> None:
    """Make ``name`` a data zone (a step declared that it writes there)."""
    if not _is_folder_name(name) or name != name.lower():
        raise SettingsError(f"zone {name!r}: a zone is one lower-case folder name")
    if name not in ZONES and name not in _DECLARED:
        _DECLARED.append(name)


def zones() -> tuple[str, ...]:
    """Every zone: Flightline's own, then those the declared steps write."""
    return ZONES + tuple(_DECLARED)


def _is_folder_name(name: str) -> bool:
    return bool(name) and not any(c in name for c in "/\\\0") and name not in (".", "..")


class SettingsError(ValueError):
    """A setting has a value Flightline cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    #: Where all data lives: a local folder, or ``s3://bucket/prefix`` (everything but Spark).
    data_root: str = str(PROJECT_ROOT / "data")
    #: Spark master URL: ``local[2]`` by default, ``spark://host:7077`` for a standalone cluster.
    spark_master: str = "local[2]"
    #: Endpoint for an S3-compatible server (moto, MinIO); empty means AWS itself.
    s3_endpoint_url: str = ""
    #: Cron expression of the nightly data DAG (02:00 UTC: the day before has fully landed).
    schedule: str = "0 2 * * *"
    #: Year the demo source replays: any logical date maps onto that month/day of this year.
    #: 0 turns replay off: only dates inside the source year have a drop.
    replay_year: int = 2013
    #: Memory of the local Spark driver (``local[N]`` and cluster masters; Spark Connect's server
    #: owns its own JVM).
    spark_driver_memory: str = "2g"
    #: The code version a model card records; empty: the git commit of this checkout (+dirty).
    code_version: str = ""
    #: Rows of the training window each registry version keeps, with the model's predictions,
    #: as the reference monitoring compares against (seeded sample).
    reference_rows: int = 5000
    #: Where BentoML keeps its models, bentos and scratch (``BENTOML_HOME``): the project's
    #: state, never the user's home.
    bentoml_home: str = str(PROJECT_ROOT / ".bentoml")
    #: Port ``flightline serve`` binds on 127.0.0.1.
    serve_port: int = 3000
    #: Server worker processes of a Bento (each loads the model once); one per core.
    serve_workers: int = 2
    #: Adaptive batching of ``/predict_batch``: most rows in one model call (also the most one
    #: request may carry; more is a 400), and the latency budget of a batch (milliseconds).
    serve_max_batch_size: int = 1000
    serve_max_latency_ms: int = 200
    #: The serving check's bound on p99 latency of single-row requests on loopback (ms).
    serve_check_p99_ms: int = 50
    #: Single-row requests the serving check times (all test-day rows are compared in batches).
    serve_check_requests: int = 300
    #: The prediction log: ``on`` appends what the server predicts to ``predictions/served/``,
    #: flushed every ``prediction_log_flush_s`` seconds off the response path; ``off`` for none.
    prediction_log: str = "on"
    prediction_log_flush_s: int = 5
    #: The retrain policy (:mod:`tasks.monitoring.policy`): a retrain is requested when this
    #: share of the model's features drifted on each of K consecutive days, or when the ROC AUC
    #: of the last ``retrain_auc_window_days`` days' labelled rows together fell this far below
    #: the test days'; then none for the cool-down days.
    retrain_drift_share: float = 0.7
    retrain_auc_drop: float = 0.08
    retrain_consecutive_days: int = 3
    retrain_auc_window_days: int = 7
    retrain_cooldown_days: int = 7
    #: AWS region of the price lookups, and an EC2 endpoint to use instead of AWS's (moto).
    aws_region: str = "us-east-1"
    ec2_endpoint_url: str = ""
    #: The spot step (:mod:`tasks.cost.spot`): candidate GPU instance types and zones, how many
    #: days of price history it judges, and what one training machine must have.
    cost_instance_types: str = "g4dn.xlarge,g4dn.2xlarge,g5.xlarge,g5.2xlarge,g6.xlarge,p3.2xlarge"
    cost_zones: str = "us-east-1a,us-east-1b,us-east-1c,us-east-1d,us-east-1f"
    cost_lookback_days: int = 7
    #: Where spot prices come from: ``auto`` (live with AWS credentials or an endpoint, else the
    #: dated snapshot), ``live`` or ``snapshot``.
    cost_price_source: str = "auto"
    cost_job_gpus: int = 1
    cost_job_gpu_memory_gib: int = 16
    cost_job_vcpus: int = 4
    #: The hourly price of the machine tasks run on when they do not run on chosen capacity.
    cost_local_hourly_usd: float = 0.10
    #: Spot interruptions (:mod:`tasks.cost.interruption`): after this many interrupted attempts
    #: of a trainer, the next asks for on-demand capacity; a folder where a notice file
    #: ``<run key>.notice`` interrupts the trainer of that run; and, for tests and demos, how many
    #: attempts get a simulated notice (0: none).
    spot_max_interruptions: int = 2
    spot_notice_dir: str = ""
    spot_simulate_interruptions: int = 0
    #: Kubernetes (:mod:`flightline_airflow.kubernetes`): the heavy steps that run as pods in
    #: the task image instead of in the Airflow worker: task ids of steps declared with a
    #: ``pod`` (:func:`tasks.flows.steps.pod_task_ids`), comma-separated, or ``all``; empty runs
    #: every step locally (the default).
    k8s_steps: str = ""
    k8s_namespace: str = "flightline"
    #: Task image (CPU steps) and the CUDA image with Horovod built with NCCL (GPU trainers).
    k8s_image: str = "ghcr.io/flightline/flightline:0.11.0"
    k8s_gpu_image: str = "ghcr.io/flightline/flightline-gpu:0.11.0"
    k8s_image_pull_policy: str = "IfNotPresent"
    k8s_service_account: str = "flightline-steps"
    #: Kubernetes Secret whose keys become the pod's environment (AWS credentials, endpoints):
    #: referenced by name, never copied into a spec.
    k8s_env_secret: str = "flightline-env"
    #: The data root inside pods: a PersistentVolumeClaim (ReadWriteMany, e.g. EFS) mounted at
    #: ``k8s_data_mount`` on the step pods and Spark executors; empty: ``data_root`` must be
    #: ``s3://`` (every step but Spark reads S3 directly).
    k8s_data_pvc: str = "flightline-data"
    k8s_data_mount: str = "/opt/flightline/data"
    #: Longest a step pod may run (``activeDeadlineSeconds``).
    k8s_deadline_s: int = 6 * 3600
    #: Spark executors (pods) of the features step on Kubernetes; 0 runs Spark inside the step's
    #: own pod (``local[N]``).
    k8s_spark_executors: int = 2
    #: Nodes of a Horovod training on Kubernetes: more than 1 runs it as an MPIJob (Kubeflow MPI
    #: operator), one rank per GPU across nodes; 1 is one pod as today.
    horovod_nodes: int = 1
    #: A hostfile for horovodrun (``host slots=N`` lines, as the MPI operator mounts one): set,
    #: the Horovod ranks spread over those hosts; empty, they run on this machine.
    horovod_hostfile: str = ""
    #: The port of the SSH servers horovodrun reaches other hosts on (an MPIJob's workers run
    #: sshd as the image's non-root user, so not 22).
    horovod_ssh_port: int = 2222
    #: Zone folder names that differ from the zone's name (FLIGHTLINE_ZONE_<NAME>=folder), as
    #: (zone, folder) pairs.
    zone_dirs: tuple[tuple[str, str], ...] = ()

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``FLIGHTLINE_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "zone_dirs":
                continue
            var = f"FLIGHTLINE_{f.name.upper()}"
            raw = env.get(var)
            if raw is None or (raw == "" and f.name not in EMPTY_OK):
                continue
            if f.name == "replay_year":
                values[f.name] = _parse_replay_year(var, raw)
            elif f.type in (int, "int"):
                values[f.name] = _parse_positive_int(var, raw, minimum=0 if f.name in ZERO_OK else 1)
            elif f.type in (float, "float") and f.name.endswith("_usd"):
                values[f.name] = _parse_price(var, raw)
            elif f.type in (float, "float"):
                values[f.name] = _parse_fraction(var, raw)
            else:
                values[f.name] = raw.strip()
        dirs = []
        for var, raw in sorted(env.items()):
            if var.startswith("FLIGHTLINE_ZONE_") and raw:
                folder = raw.strip().strip("/")
                if not _is_folder_name(folder):
                    raise SettingsError(f"{var}={raw!r}: a zone's folder must be one folder name")
                dirs.append((var[len("FLIGHTLINE_ZONE_"):].lower(), folder))
        if dirs:
            values["zone_dirs"] = tuple(dirs)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The ``FLIGHTLINE_*`` variables that rebuild these settings with :meth:`from_env`
        (for a subprocess such as a Horovod worker: settings travel explicitly, not by ambient env).
        """
        env = {f"FLIGHTLINE_{f.name.upper()}": str(getattr(self, f.name))
               for f in fields(self) if f.name != "zone_dirs"}
        env.update({f"FLIGHTLINE_ZONE_{zone.upper()}": folder for zone, folder in self.zone_dirs})
        return env

    def with_overrides(self, **changes: object) -> Settings:
        new = replace(self, **changes)  # type: ignore[arg-type]
        new.validate()
        return new

    def validate(self) -> None:
        root = self.data_root
        if root.startswith("s3://"):
            bucket = root[len("s3://") :].split("/", 1)[0]
            if not bucket:
                raise SettingsError(f"FLIGHTLINE_DATA_ROOT={root!r}: no bucket after s3://")
        elif "://" in root and not root.startswith("file://"):
            raise SettingsError(
                f"FLIGHTLINE_DATA_ROOT={root!r}: use a local folder, file:// or s3://bucket/prefix"
            )
        if not (
            self.spark_master.startswith(("local", "spark://", "k8s://", "yarn"))
            or self.spark_master.startswith("sc://")
        ):
            raise SettingsError(
                f"FLIGHTLINE_SPARK_MASTER={self.spark_master!r}: expected local[N], "
                "spark://host:port, k8s://... or yarn"
            )
        if self.prediction_log not in ("on", "off"):
            raise SettingsError(
                f"FLIGHTLINE_PREDICTION_LOG={self.prediction_log!r}: expected on or off")
        if self.cost_price_source not in ("auto", "live", "snapshot"):
            raise SettingsError(f"FLIGHTLINE_COST_PRICE_SOURCE={self.cost_price_source!r}: "
                                "expected auto, live or snapshot")
        if self.k8s_image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise SettingsError(f"FLIGHTLINE_K8S_IMAGE_PULL_POLICY={self.k8s_image_pull_policy!r}: "
                                "expected Always, IfNotPresent or Never")
        if self.k8s_steps.strip() and not self.k8s_data_pvc and not self.is_s3:
            raise SettingsError("FLIGHTLINE_K8S_DATA_PVC is empty and FLIGHTLINE_DATA_ROOT is not "
                                "s3://: pods would not see the data; set one of them")
        if len(self.schedule.split()) != 5 and not self.schedule.startswith("@"):
            raise SettingsError(f"FLIGHTLINE_SCHEDULE={self.schedule!r}: expected a 5-field cron")

    # ---------------------------------------------------------------- derived values
    @property
    def is_s3(self) -> bool:
        return self.data_root.startswith("s3://")

    @property
    def root(self) -> str:
        """The data root as a URI without a trailing slash (local paths made absolute)."""
        root = self.data_root
        if root.startswith("file://"):
            root = root[len("file://") :]
        if not root.startswith("s3://"):
            root = str(Path(root).expanduser().resolve())
        return root.rstrip("/")

    def zone(self, name: str) -> str:
        """URI of a data zone (``landing``, ``raw``, ``features``, ...)."""
        if name not in zones():
            raise SettingsError(f"unknown data zone {name!r}; zones are {', '.join(zones())} "
                                "(a step declares a zone of its own with writes=...)")
        return f"{self.root}/{dict(self.zone_dirs).get(name, name)}"

    def partition(self, zone: str, day: date) -> str:
        """URI of one daily partition: ``<zone>/dt=YYYY-MM-DD``."""
        return f"{self.zone(zone)}/dt={day.isoformat()}"


def _parse_replay_year(var: str, raw: str) -> int:
    text = raw.strip().lower()
    if text in ("off", "false", "no", "0", "none"):
        return 0
    try:
        year = int(text)
    except ValueError:
        raise SettingsError(f"{var}={raw!r}: expected a year such as 2013, or 'off'") from None
    if not 1900 <= year <= 2100:
        raise SettingsError(f"{var}={raw!r}: replay year out of range 1900..2100")
    return year


def _parse_fraction(var: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{var}={raw!r}: expected a number such as 0.5") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"{var}={raw!r}: must be between 0 and 1")
    return value


def _parse_price(var: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{var}={raw!r}: expected a price in US dollars such as 0.10") from None
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{var}={raw!r}: must be a price of 0 or more")
    return value


#: Text settings for which an empty value is meaningful ("none") and not the default.
EMPTY_OK = {"k8s_data_pvc", "k8s_env_secret"}

#: Whole-number settings for which 0 is meaningful ("none").
ZERO_OK = {"spot_simulate_interruptions", "k8s_spark_executors"}


def _parse_positive_int(var: str, raw: str, minimum: int = 1) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{var}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise SettingsError(f"{var}={raw!r}: must be at least {minimum}")
    return value
