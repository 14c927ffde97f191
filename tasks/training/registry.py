"""Model registry in the model store (the data root's ``models/`` zone, local or S3).

Layout::

    models/registry/versions/<version>/   model files, metrics.json, card.json, plots, importance
    models/registry/champion.json         the alias: the best version, and why it moved
    models/registry/bentos/<version>/     that version packaged as Bento archives
    models/registry/released.json         the alias: which Bento serves (moved by the serving check)
    models/registry/releases/<time>.json  every serving check, passed or not (the release history)

Versions are named ``v<UTC timestamp>-<family>``: sortable, unique without a lock. A version
folder is published atomically (staged, then renamed or committed with ``_SUCCESS``); the
``champion`` alias is one object rewritten atomically, and moves only through the promotion
decision (:mod:`tasks.training.promotion`); the ``released`` alias only through a passed serving
check (:mod:`tasks.serving.check`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import Store, join


class RegistryError(LookupError):
    pass


@dataclass
class Candidate(Result):
    """A registered (not yet champion) version: what the promotion decision compares."""

    version: str
    family: str
    uri: str
    metrics: dict
    baselines: dict[str, float]
    test_days: list[str]
    duration_s: float


def _root(settings: Settings) -> str:
    return join(settings.zone("models"), "registry")


def new_version(family: str) -> str:
    return f"v{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{family}"


def register(folder: Path, card: dict, settings: Settings) -> str:
    """Publish a finished local model folder (with metrics.json) as a new version."""
    store = Store(settings)
    version = card["version"]
    (Path(folder) / "card.json").write_text(json.dumps(card, indent=1, default=str))
    uri = join(_root(settings), "versions", version)
    if store.is_committed(uri):
        raise RegistryError(f"version {version} already exists at {uri}")
    return store.publish_folder(folder, uri)


def versions(settings: Settings) -> list[dict]:
    """Every committed version with its card summary, oldest first."""
    store = Store(settings)
    base = join(_root(settings), "versions")
    out = []
    champ = champion(settings)
    for name in store.list(base):
        uri = join(base, name)
        if name.startswith(".") or not store.is_committed(uri):
            continue
        card = json.loads(store.read_text(join(uri, "card.json")))
        out.append({
            "version": name,
            "family": card.get("family"),
            "roc_auc": card.get("metrics", {}).get("roc_auc"),
            "test_days": f"{card['split']['test_days'][0]}..{card['split']['test_days'][-1]}",
            "created": card.get("created"),
            "champion": bool(champ and champ["version"] == name),
        })
    return out


def show(version: str, settings: Settings) -> dict:
    store = Store(settings)
    uri = join(_root(settings), "versions", version)
    if not store.is_committed(uri):
        raise RegistryError(f"no model version {version!r} in {join(_root(settings), 'versions')}")
    card = json.loads(store.read_text(join(uri, "card.json")))
    card["uri"] = uri
    card["files"] = [n for n in store.list(uri) if not n.startswith("_")]
    return card


def champion(settings: Settings) -> dict | None:
    store = Store(settings)
    uri = join(_root(settings), "champion.json")
    return json.loads(store.read_text(uri)) if store.exists(uri) else None


def set_champion(version: str, reason: str, settings: Settings) -> dict:
    """Move the alias (only the promotion decision calls this). One atomic object write."""
    show(version, settings)  # must exist
    previous = champion(settings)
    alias = {"version": version, "since": datetime.now(UTC).isoformat(), "reason": reason,
             "previous": previous["version"] if previous else None}
    Store(settings).write_text(join(_root(settings), "champion.json"), json.dumps(alias, indent=1))
    return alias


def released(settings: Settings) -> dict | None:
    """The ``released`` alias: the Bento that serves, its registry version and check figures."""
    store = Store(settings)
    uri = join(_root(settings), "released.json")
    return json.loads(store.read_text(uri)) if store.exists(uri) else None


def record_release_check(record: dict, settings: Settings) -> str:
    """Keep one serving check's record (passed or not) in the release history."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    uri = join(_root(settings), "releases", f"{stamp}-{record['bento'].replace(':', '-')}.json")
    Store(settings).write_text(uri, json.dumps(record, indent=1, default=str))
    return uri


def set_released(record: dict, settings: Settings) -> dict:
    """Move the ``released`` alias to a checked Bento (only a passed serving check calls this)."""
    show(record["version"], settings)  # must exist
    previous = released(settings)
    alias = {**record, "since": datetime.now(UTC).isoformat(),
             "previous": previous["bento"] if previous else None}
    Store(settings).write_text(join(_root(settings), "released.json"), json.dumps(alias, indent=1))
    return alias


def release_history(settings: Settings) -> list[dict]:
    """Every serving check's record, oldest first."""
    store = Store(settings)
    base = join(_root(settings), "releases")
    return [json.loads(store.read_text(join(base, n))) for n in store.list(base)
            if n.endswith(".json")]


def load_model(version: str, settings: Settings):
    """A registered model of any family, ready to ``predict_proba(features_df)``, loaded
    without pickle (through a temporary folder that is removed before it returns)."""
    from tasks.training.models import TRAINERS, load

    card = show(version, settings)
    if card["family"] not in TRAINERS:
        raise RegistryError(f"{version}: unknown model family {card['family']!r}")
    store = Store(settings)
    with tempfile.TemporaryDirectory(prefix=f"flightline-{version}-") as tmp:
        local = Path(tmp)
        for name in card["files"]:
            if name.endswith((".png",)):
                continue
            store.download(join(card["uri"], name), local / name)
        return load(card["family"], local)
