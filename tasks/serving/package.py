"""Package a registry version as a Bento: ``bentoml build``, then ``bentoml export`` of the
archive into the model store beside the version (``models/registry/bentos/<version>/``).

The build context is assembled in a temporary folder: the ``tasks`` package (pure Python: the
service, the schema, the model classes), the version's own files under ``model/`` (model,
categories or preprocessing, ``card.json``; no plots, no reference sample or drift thresholds), and a minimal
``bentofile.yaml`` whose Python packages carry the pins of ``requirements.txt``. The Bento is
labelled with the registry version, its training window and its code version. Every ``bentoml``
command runs with ``BENTOML_HOME`` set to the settings' folder, never the user's home.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tasks.results import Result
from tasks.settings import PROJECT_ROOT, Settings
from tasks.storage import Store, join
from tasks.training import registry

BENTO_NAME = "flightline"
#: Version files a Bento does not need (evaluation plots, monitoring's reference sample and its
#: calibrated drift thresholds).
SKIP_SUFFIXES = (".png", ".parquet", "drift_thresholds.json")
#: Packages the service imports, per model family (pinned as in requirements.txt).
#: The storage layer (an S3 data root: the prediction log) needs fsspec and s3fs, whose
#: aiobotocore holds botocore to the pinned release.
STORAGE = ["boto3", "botocore", "fsspec", "s3fs", "aiobotocore"]
PACKAGES = {
    "xgboost": ["xgboost", "numpy", "pandas", "pyarrow", *STORAGE],
    "torch-horovod": ["torch", "numpy", "pandas", "pyarrow", *STORAGE],
}


class PackagingError(RuntimeError):
    pass


@dataclass
class Packaged(Result):
    """The packaging step's result: which Bento holds which registry version, and where its
    archive is."""

    version: str
    bento: str  # tag name:version in BENTOML_HOME
    archive: str  # URI of the exported .bento in the model store
    labels: dict


def bentoml_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a ``bentoml`` subprocess: these settings, the Bento store in the
    project's state, no usage tracking, and no PYTHONPATH that could shadow a Bento's code."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(settings.to_env())
    env.update({"BENTOML_HOME": settings.bentoml_home, "BENTOML_DO_NOT_TRACK": "True",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def bentoml_cli(settings: Settings, *args: str, timeout: float = 600) -> str:
    """Run ``bentoml ARGS`` (from this interpreter's environment); stdout, or a named error."""
    exe = Path(sys.executable).with_name("bentoml")
    cmd = [str(exe) if exe.exists() else "bentoml", *args]
    out = subprocess.run(cmd, env=bentoml_env(settings), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-15:]
        raise PackagingError(f"`bentoml {' '.join(args)}` failed ({out.returncode}):\n"
                             + "\n".join(tail))
    return out.stdout


def _pins(names: list[str]) -> list[str]:
    pins = {}
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = f"{m.group(1)}=={m.group(2)}"
    return [pins.get(n, n) for n in names] + [pins.get("pydantic", "pydantic>=2")]


def _label(value: str) -> str:
    """A Bento label value: letters, digits, ``-``, ``_``, ``.`` (at most 63)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", value)[:63]


def build_context(version: str, ctx: Path, settings: Settings) -> dict:
    """Assemble the build context for ``version`` in ``ctx``; returns the labels."""
    card = registry.show(version, settings)
    shutil.copytree(PROJECT_ROOT / "tasks", ctx / "tasks",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    store = Store(settings)
    for name in card["files"]:
        if not name.endswith(SKIP_SUFFIXES):
            store.download(join(card["uri"], name), ctx / "model" / name)
    split = card["split"]
    labels = {
        "model_version": _label(version),
        "model_family": _label(card["family"]),
        "train_from": split["train_days"][0], "train_to": split["train_days"][-1],
        "test_to": split["test_days"][-1],
        "code_version": _label(str(card.get("code_version") or "unknown")),
    }
    bentofile = {
        "service": "tasks.serving.service:Flightline",
        "name": BENTO_NAME,
        "description": f"Flightline late-arrival model {version} ({card['family']})",
        "labels": labels,
        "include": ["tasks/**/*.py", "model/*"],
        "python": {"packages": _pins(PACKAGES[card["family"]]), "lock_packages": False},
        "docker": {"python_version": f"{sys.version_info.major}.{sys.version_info.minor}"},
    }
    (ctx / "bentofile.yaml").write_text(json.dumps(bentofile, indent=1))  # JSON is YAML
    return labels


def bento_archive_uri(version: str, bento: str, settings: Settings) -> str:
    return join(settings.zone("models"), "registry", "bentos", version,
                bento.replace(":", "-") + ".bento")


def package_version(version: str, settings: Settings) -> Packaged:
    """Build a Bento of a registry version and export its archive into the model store."""
    with tempfile.TemporaryDirectory(prefix="flightline-bento-") as tmp:
        ctx = Path(tmp) / "ctx"
        ctx.mkdir()
        labels = build_context(version, ctx, settings)
        out = bentoml_cli(settings, "build", "-f", str(ctx / "bentofile.yaml"), str(ctx),
                          "--output", "tag")
        m = re.search(r"__tag__:(\S+)", out)
        if not m:
            raise PackagingError(f"bentoml build printed no tag: {out[-500:]}")
        bento = m.group(1)
        archive = Path(tmp) / "bento.bento"
        bentoml_cli(settings, "export", bento, str(archive))
        uri = bento_archive_uri(version, bento, settings)
        Store(settings).upload_file(archive, uri)
    return Packaged(version=version, bento=bento, archive=uri, labels=labels)


def bento_path(bento: str, settings: Settings) -> Path:
    """The Bento's folder in ``BENTOML_HOME`` (``bentos/<name>/<version>``)."""
    name, _, ver = bento.partition(":")
    return Path(settings.bentoml_home) / "bentos" / name / ver


def ensure_local(packaged: Packaged, settings: Settings) -> Path:
    """The Bento in the local store, imported from its archive in the model store if absent
    (a fresh machine, a pod)."""
    path = bento_path(packaged.bento, settings)
    if not (path / "bento.yaml").exists():
        with tempfile.TemporaryDirectory(prefix="flightline-bento-") as tmp:
            local = Store(settings).download(packaged.archive, Path(tmp) / "in.bento")
            bentoml_cli(settings, "import", str(local))
    return path
