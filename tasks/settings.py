"""Flightline settings: typed, by concern, each field overridable by an environment variable.

Each field reads ``FLIGHTLINE_<FIELD>`` (upper case) from the environment through
pydantic-settings; a bad value is refused when the settings are built, naming the variable.
The defaults run everything on this machine: a local data folder inside the project, Spark in
local mode, the 2013 replay on. Only the edges read the environment (the CLI, DAG tasks,
benchmarks) with ``Settings.from_env()``; every step in ``tasks/`` takes the ``Settings`` it is
given.

The concerns, one class each, joined in :class:`Settings`: the data (:class:`DataSettings`),
Spark (:class:`SparkSettings`), serving (:class:`ServingSettings`), the retrain policy
(:class:`RetrainSettings`), cost and spot capacity (:class:`CostSettings`), and where steps run
on a cluster (:class:`ClusterSettings`: the pods' images and data volume, Spark's executor pods,
Horovod's hosts). How Airflow deploys the DAGs (schedules, which steps run as pods,
notifications) is not a step's concern: ``flightline_airflow.deployment`` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "FLIGHTLINE_"

#: The data zones under the data root, in the order data flows through them. A step that
#: writes a zone of its own declares it (``step(..., writes=("summaries",))``,
#: :mod:`tasks.flows.steps`), which adds it to :func:`zones`; nothing is edited here.
ZONES = ("landing", "raw", "features", "quarantine", "models", "predictions", "reports", "costs")
_DECLARED: list[str] = []


class SettingsError(ValueError):
    """A setting has a value Flightline cannot use; the message names the variable."""


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


# ---------------------------------------------------------------------------- value types
Count = Annotated[int, Field(ge=1)]  # a whole number of at least 1
CountOrNone = Annotated[int, Field(ge=0)]  # 0 means "none"
Share = Annotated[float, Field(ge=0, le=1)]
Usd = Annotated[float, Field(ge=0, allow_inf_nan=False)]

#: Text settings for which an empty value is meaningful ("none") and not the default.
EMPTY_OK = {"k8s_data_pvc", "k8s_env_secret"}

#: The environment ``from_env`` reads: its mapping, else ``os.environ``.
_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("flightline_env", default=None)


class _Source(EnvSettingsSource):
    """The environment source over :func:`Settings.from_env`'s mapping (or none at all when the
    settings are built in code: ``Settings(data_root=...)`` takes defaults, not the env)."""

    def __init__(self, settings_cls):
        super().__init__(settings_cls, case_sensitive=False, env_prefix=PREFIX)
        self.env_vars = {k.lower(): v for k, v in (_ENV.get() or {}).items()}


class Concern(BaseSettings):
    """The base of every settings class: ``FLIGHTLINE_<FIELD>`` from the environment (only
    through :func:`build`), frozen, an empty value meaning the default."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore",
                                      validate_default=False)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return init_settings, _Source(settings_cls)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any, info) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value == "" and info.field_name not in EMPTY_OK:
                raise PydanticUseDefault()
        return value


class DataSettings(Concern):
    #: Where all data lives: a local folder, or ``s3://bucket/prefix`` (everything but Spark).
    data_root: str = str(PROJECT_ROOT / "data")
    #: Endpoint for an S3-compatible server (moto, MinIO); empty means AWS itself.
    s3_endpoint_url: str = ""
    #: Year the demo source replays: any logical date maps onto that month/day of this year.
    #: ``off`` (0) turns replay off: only dates inside the source year have a drop.
    replay_year: int = 2013
    #: The code version a model card records; empty: the git commit of this checkout (+dirty).
    code_version: str = ""
    #: Rows of the training window each registry version keeps, with the model's predictions,
    #: as the reference monitoring compares against (seeded sample).
    reference_rows: Count = 5000
    #: Zone folder names that differ from the zone's name (``FLIGHTLINE_ZONE_<NAME>=folder``),
    #: as (zone, folder) pairs.
    zone_dirs: tuple[tuple[str, str], ...] = ()

    @field_validator("data_root")
    @classmethod
    def _root(cls, root: str) -> str:
        if root.startswith("s3://"):
            if not root[len("s3://"):].split("/", 1)[0]:
                raise ValueError("no bucket after s3://")
        elif "://" in root and not root.startswith("file://"):
            raise ValueError("use a local folder, file:// or s3://bucket/prefix")
        return root

    @field_validator("replay_year", mode="before")
    @classmethod
    def _replay(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("off", "false", "no", "0", "none"):
                return 0
            if not text.isdigit():
                raise ValueError("expected a year such as 2013, or 'off'")
            value = int(text)
        if value and not 1900 <= value <= 2100:
            raise ValueError("replay year out of range 1900..2100")
        return value


class SparkSettings(Concern):
    #: Spark master URL: ``local[2]`` by default, ``spark://host:7077`` for a standalone cluster.
    spark_master: str = "local[2]"
    #: Memory of the local Spark driver (``local[N]`` and cluster masters; Spark Connect's server
    #: owns its own JVM).
    spark_driver_memory: str = "2g"
    #: The master of the local stack's Spark Connect server (``make airflow``), which the
    #: stack's tasks reach as ``sc://127.0.0.1:<port>``.
    spark_connect_master: str = "local[2]"

    @field_validator("spark_master")
    @classmethod
    def _master(cls, master: str) -> str:
        if not master.startswith(("local", "spark://", "k8s://", "yarn", "sc://")):
            raise ValueError("expected local[N], spark://host:port, sc://host:port, k8s://... or yarn")
        return master


class ServingSettings(Concern):
    #: Where BentoML keeps its models, bentos and scratch (``BENTOML_HOME``): the project's
    #: state, never the user's home.
    bentoml_home: str = str(PROJECT_ROOT / ".bentoml")
    #: Port ``flightline serve`` binds on 127.0.0.1.
    serve_port: Count = 3000
    #: Server worker processes of a Bento (each loads the model once); one per core.
    serve_workers: Count = 2
    #: Adaptive batching of ``/predict_batch``: most rows in one model call (also the most one
    #: request may carry; more is a 400), and the latency budget of a batch (milliseconds).
    serve_max_batch_size: Count = 1000
    serve_max_latency_ms: Count = 200
    #: The serving check's bound on p99 latency of single-row requests on loopback (ms).
    serve_check_p99_ms: Count = 50
    #: Single-row requests the serving check times (all test-day rows are compared in batches).
    serve_check_requests: Count = 300
    #: The prediction log: ``on`` appends what the server predicts to ``predictions/served/``,
    #: flushed every ``prediction_log_flush_s`` seconds off the response path; ``off`` for none.
    prediction_log: Literal["on", "off"] = "on"
    prediction_log_flush_s: Count = 5
    #: Inside a Bento's server: the model folder it serves (set by packaging), and whether
    #: BentoML's access log is on.
    serve_model_dir: str = ""
    serve_access_log: Literal["on", "off"] = "off"


class RetrainSettings(Concern):
    #: The retrain policy (:mod:`tasks.monitoring.policy`): a retrain is requested when this
    #: share of the model's counted features drifted on each of K consecutive days, or when the
    #: ROC AUC of the last ``retrain_auc_window_days`` days' labelled rows together fell this far
    #: below the test days'; then none for the cool-down days. A drift share above 1 turns the
    #: drift rule off. The share is judged against thresholds calibrated on the model's own
    #: training days (an ordinary day: at most a few columns), so 0.3 is about ten columns at
    #: once, which in 2013 only storms and holidays reached (README, "What drift means here").
    retrain_drift_share: Annotated[float, Field(ge=0)] = 0.3
    retrain_auc_drop: Share = 0.08
    retrain_consecutive_days: Count = 3
    retrain_auc_window_days: Count = 7
    retrain_cooldown_days: Count = 7
    #: Days of monitoring kept in the local Evidently workspace (its dashboard's span): opening a
    #: local workspace parses every run kept (about 1 MB each), so it is bounded; every day's
    #: reports stay in the reports zone.
    evidently_workspace_days: Count = 90


class TrainingSettings(Concern):
    #: The bounded hyperparameter search before each XGBoost fit (:mod:`tasks.training.tuning`):
    #: at most this many trials (0: none, the defaults are used) and at most this many minutes,
    #: never more than a third of the training's own time budget.
    tuning_trials: CountOrNone = 12
    tuning_minutes: Annotated[float, Field(gt=0)] = 10.0


class CostSettings(Concern):
    #: AWS region of the price lookups, and an EC2 endpoint to use instead of AWS's (moto).
    aws_region: str = "us-east-1"
    ec2_endpoint_url: str = ""
    #: The spot step (:mod:`tasks.cost.spot`): candidate GPU instance types and zones, how many
    #: days of price history it judges, and what one training machine must have.
    cost_instance_types: str = "g4dn.xlarge,g4dn.2xlarge,g5.xlarge,g5.2xlarge,g6.xlarge,p3.2xlarge"
    cost_zones: str = "us-east-1a,us-east-1b,us-east-1c,us-east-1d,us-east-1f"
    cost_lookback_days: Count = 7
    #: Where spot prices come from: ``auto`` (live with AWS credentials or an endpoint, else the
    #: dated snapshot), ``live`` or ``snapshot``.
    cost_price_source: Literal["auto", "live", "snapshot"] = "auto"
    cost_job_gpus: Count = 1
    cost_job_gpu_memory_gib: Count = 16
    cost_job_vcpus: Count = 4
    #: The hourly price of the machine tasks run on when they do not run on chosen capacity.
    cost_local_hourly_usd: Usd = 0.10
    #: Spot interruptions (:mod:`tasks.cost.interruption`): after this many interrupted attempts
    #: of a trainer, the next asks for on-demand capacity; a folder where a notice file
    #: ``<run key>.notice`` interrupts the trainer of that run; and, for tests and demos, how many
    #: attempts get a simulated notice (0: none).
    spot_max_interruptions: Count = 2
    spot_notice_dir: str = ""
    spot_simulate_interruptions: CountOrNone = 0


class ClusterSettings(Concern):
    #: Where a step runs when it runs on Kubernetes (which steps do is the deployment's choice,
    #: ``FLIGHTLINE_K8S_STEPS``): the namespace, the task image (CPU steps) and the CUDA image
    #: with Horovod built with NCCL (GPU trainers), the steps' service account.
    k8s_namespace: str = "flightline"
    k8s_image: str = "ghcr.io/flightline/flightline:0.11.0"
    k8s_gpu_image: str = "ghcr.io/flightline/flightline-gpu:0.11.0"
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
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
    k8s_deadline_s: Count = 6 * 3600
    #: Spark executors (pods) of the features step on Kubernetes; 0 runs Spark inside the step's
    #: own pod (``local[N]``).
    k8s_spark_executors: CountOrNone = 2
    #: Nodes of a Horovod training on Kubernetes: more than 1 runs it as an MPIJob (Kubeflow MPI
    #: operator), one rank per GPU across nodes; 1 is one pod as today.
    horovod_nodes: Count = 1
    #: A hostfile for horovodrun (``host slots=N`` lines, as the MPI operator mounts one): set,
    #: the Horovod ranks spread over those hosts; empty, they run on this machine.
    horovod_hostfile: str = ""
    #: The port of the SSH servers horovodrun reaches other hosts on (an MPIJob's workers run
    #: sshd as the image's non-root user, so not 22).
    horovod_ssh_port: Count = 2222


class Settings(ClusterSettings, CostSettings, TrainingSettings, RetrainSettings, ServingSettings,
               SparkSettings, DataSettings):
    """Every concern's settings, as one frozen object the steps are given."""

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``FLIGHTLINE_*`` variables (``os.environ`` by default); a bad
        value raises :class:`SettingsError` naming its variable."""
        env = dict(os.environ if env is None else env)
        dirs = []
        for var, raw in sorted(env.items()):
            if var.startswith(f"{PREFIX}ZONE_") and raw:
                folder = raw.strip().strip("/")
                if not _is_folder_name(folder):
                    raise SettingsError(f"{var}={raw!r}: a zone's folder must be one folder name")
                dirs.append((var[len(f"{PREFIX}ZONE_"):].lower(), folder))
        return build(cls, env, zone_dirs=tuple(dirs)) if dirs else build(cls, env)

    def to_env(self) -> dict[str, str]:
        """The ``FLIGHTLINE_*`` variables that rebuild these settings with :meth:`from_env`
        (for a subprocess such as a Horovod worker: settings travel explicitly, not by ambient env).
        """
        env = {f"{PREFIX}{name.upper()}": str(value)
               for name, value in self.model_dump().items() if name != "zone_dirs"}
        env.update({f"{PREFIX}ZONE_{zone.upper()}": folder for zone, folder in self.zone_dirs})
        return env

    def with_overrides(self, **changes: object) -> Settings:
        try:
            return type(self).model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise _named(exc, {}) from None

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


def build(cls: type[Concern], env: Mapping[str, str] | None = None, **values: Any):
    """``cls`` from ``FLIGHTLINE_*`` variables of ``env`` (default ``os.environ``) and
    ``values``; a bad value raises :class:`SettingsError` naming its variable. The one place
    Flightline reads its environment variables."""
    env = dict(os.environ if env is None else env)
    token = _ENV.set(env)
    try:
        return cls(**values)
    except ValidationError as exc:
        raise _named(exc, env) from None
    finally:
        _ENV.reset(token)


def _named(exc: ValidationError, env: Mapping[str, str]) -> SettingsError:
    """A pydantic error as Flightline's: each bad value named by its variable."""
    parts = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        var = f"{PREFIX}{field.upper()}" if field else "settings"
        shown = env.get(var, e.get("input"))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{var}={shown!r}: {msg}")
    return SettingsError("; ".join(parts))
