"""The staged write shared by the daily and the range builds, publishing, and reading back.

A build writes a day's features into a hidden staging folder (:func:`stage_folder`: beside
``features/dt=D`` on a local root, a scratch folder on S3), :func:`finish_features` makes it a
partition (row count, manifest) and :func:`stage_in_root` hands it on as a URI in the data root
(on S3: uploaded to a hidden prefix beside the partition); the features gate validates it there,
and :func:`publish_features` moves it into place. The typed raw partition is staged and
published the same way (:func:`publish_raw`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from tasks.feature_contract import FEATURE_COLUMNS
from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import SUCCESS, StorageError, Store, join


@dataclass
class StagedFeatures(Result):
    """A built, not yet published, features partition: what the features gate and publish take."""

    day: date
    features_uri: str  # the staged (hidden) folder in the data root; publish moves it into place
    raw_uri: str  # the typed raw partition of the day
    rows: int
    dropped: dict[str, int] = field(default_factory=dict)
    history_days: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    raw_staged: str = ""  # the typed raw partition, staged to be published with the features


@dataclass(frozen=True)
class Published(Result):
    """A published features partition."""

    day: date
    features_uri: str
    rows: int


def stage_folder(zone: str, day: date, settings: Settings) -> Path:
    """A fresh hidden folder beside ``<zone>/dt=day``, after removing what a killed run left."""
    store = Store(settings)
    final = settings.partition(zone, day)
    store.clean_staging(final)
    return store.staging_dir(final)


def stage_in_root(stage: Path, final_uri: str, settings: Settings) -> str:
    """A finished local stage as a URI in the data root that the next task can read: the
    hidden folder itself on a local root, a hidden prefix beside ``final_uri`` on S3."""
    drop_spark_side_files(stage)
    if not settings.is_s3:
        return str(stage)
    store = Store(settings)
    return store.upload_folder(stage, store.stage_uri(final_uri))


def finish_features(stage: Path, manifest: dict) -> int:
    """Make a staged folder whose ``data/`` Spark wrote a partition: Spark's side files out,
    the manifest (with the row count and the contract's columns) in. Returns the rows."""
    drop_spark_side_files(stage)
    rows = count_parquet_rows(stage / "data")
    manifest = {"day": manifest["day"], "rows": rows, **manifest, "columns": FEATURE_COLUMNS}
    (stage / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    return rows


def publish_raw(raw_stage: str, day: date, settings: Settings) -> str:
    """Publish a staged typed raw partition as ``raw/dt=day``."""
    return Store(settings).publish_folder(raw_stage, settings.partition("raw", day))


def publish_features(staged: StagedFeatures, settings: Settings) -> Published:
    """Publish a day that passed both gates: its staged typed raw partition as ``raw/dt=day``,
    then its staged features as ``features/dt=day``, each by an atomic rename.

    Idempotent for retries: when the staged folder is gone because an earlier attempt already
    moved it into place (and then failed on something else, such as the API server timing out
    while it stored the task's result), the committed partition of that day is the answer.
    """
    store = Store(settings)
    day = staged.day
    if staged.raw_staged and store.is_folder(staged.raw_staged):  # gone: an earlier attempt's
        publish_raw(staged.raw_staged, day, settings)
    final = settings.partition("features", day)
    if not store.is_folder(staged.features_uri):
        if store.is_committed(final) and _manifest_day(store, final) == day.isoformat():
            return Published(day, final, staged.rows)
        raise ValueError(f"nothing staged at {staged.features_uri} to publish for {day.isoformat()}")
    return Published(day, store.publish_folder(staged.features_uri, final), staged.rows)


class OutdatedPartition(ValueError):
    """A published features partition lacks columns of the current feature contract."""


def read_features(days: list[date], settings: Settings):
    """Published feature partitions for ``days`` as one pandas frame (only committed folders)."""
    import pandas as pd

    store = Store(settings)
    frames = []
    with tempfile.TemporaryDirectory(prefix="flightline-read-") as scratch:
        for d in days:
            uri = settings.partition("features", d)
            if store.is_committed(uri):
                frame = pd.read_parquet(store.local_folder(join(uri, "data"), scratch))
                missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
                if missing:
                    raise OutdatedPartition(
                        f"{uri} was published before the feature contract had "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                        f"({len(missing)} column(s)): rebuild it with `flightline features-range "
                        f"--from {d.isoformat()} --to <last day>` (or rerun its daily run)")
                frames.append(frame)
    if not frames:
        raise ValueError(f"no published feature partitions among {len(days)} requested days")
    return pd.concat(frames, ignore_index=True)


def count_parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in Path(folder).glob("*.parquet"))


def drop_spark_side_files(folder: Path) -> None:
    """Spark's checksum side files and its own _SUCCESS are not part of the published data."""
    for p in Path(folder).rglob("*"):
        if p.name.endswith(".crc") or (p.name == SUCCESS and p.parent != Path(folder)):
            p.unlink()


def _manifest_day(store: Store, folder: str) -> str | None:
    try:
        return json.loads(store.read_text(join(folder, "_manifest.json"))).get("day")
    except (StorageError, ValueError):
        return None
