"""What each step read and wrote, as datasets named by their data-root URIs: the lineage
OpenLineage reports for every task (``flightline_airflow.lineage``), from the results the
steps already return.

A step's **inputs** are the locations its input results name (a drop's files, a staged or
published partition, a model version, a Bento archive) and what its own result says it read;
its **outputs** are the locations its result names that it did not read. Any string in a result
that lies inside the data root counts, so a new step's result is covered with nothing to add;
:data:`READS` lists the fields that name what a step read rather than wrote (a split's
partitions, a sensor's drop), :data:`PLANNED` those that name where a later step writes, and :func:`_derived` the locations a result implies without
naming them (the raw partition published beside the features, the version a Bento was built
from). A Bento is also a dataset of its own, ``bentoml:<tag>``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

from tasks.settings import Settings

#: Result type -> its fields that name what the step that made it read (not wrote).
READS: dict[str, tuple[str, ...]] = {
    "Drop": ("uri", "flights_uri", "weather_uri", "lookback"),  # the sensor finds, never writes
    "Split": ("partitions",),
    "Scored": ("model_source",),
}

#: Result type -> its fields that name where a later step will write (neither read nor written
#: by the step that made it).
PLANNED: dict[str, tuple[str, ...]] = {
    "StagedFeatures": ("raw_uri",),  # the raw partition publish_features moves into place
}


@dataclass(frozen=True)
class Lineage:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    """An OpenLineage dataset name: ``file`` + absolute path, ``s3://bucket`` + key, or
    ``bentoml`` + Bento tag."""

    namespace: str
    name: str

    @classmethod
    def of(cls, uri: str) -> Dataset:
        if uri.startswith("s3://"):
            bucket, _, key = uri[len("s3://"):].partition("/")
            return cls(f"s3://{bucket}", key)
        if uri.startswith("bentoml:"):
            return cls("bentoml", uri[len("bentoml:"):])
        return cls("file", uri)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _inside(uris: list[str], settings: Settings) -> list[str]:
    root = settings.root + "/"
    return [u.rstrip("/") for u in uris if u.startswith(root) or u.startswith("bentoml:")]


def _derived(result: Any, settings: Settings) -> tuple[list[str], list[str]]:
    """(reads, writes) a result implies without naming them."""
    from tasks.storage import join

    kind = type(result).__name__
    versions = join(settings.zone("models"), "registry", "versions")
    if kind == "Published":  # the raw partition is published with the features
        return [], [settings.partition("raw", date.fromisoformat(str(result.day)))]
    if kind == "Packaged":
        return [join(versions, result.version)], [f"bentoml:{result.bento}"]
    if kind == "Checked":
        return [f"bentoml:{result.bento}"], []
    if kind == "Release":
        return [f"bentoml:{result.bento}"], [join(settings.zone("models"), "registry", "released.json")]
    if kind == "Decision" and result.alias:
        return ([join(versions, v) for v in (result.candidates or {result.challenger: 0})],
                [join(settings.zone("models"), "registry", "champion.json")])
    if kind == "Scored" and result.version:
        return [join(versions, result.version)], []
    return [], []


def names(result: Any, settings: Settings) -> tuple[list[str], list[str]]:
    """(what the step that made ``result`` read, what it wrote), by data-root URI."""
    if result is None:
        return [], []
    read_fields = READS.get(type(result).__name__, ())
    planned = PLANNED.get(type(result).__name__, ())
    reads, writes = _derived(result, settings)
    if dataclasses.is_dataclass(result):
        for f in dataclasses.fields(result):
            if f.name in planned:
                continue
            found = _inside(_strings(getattr(result, f.name)), settings)
            (reads if f.name in read_fields else writes).extend(found)
    else:
        writes.extend(_inside(_strings(result), settings))
    return reads, writes


def step_lineage(inputs: list[Any], result: Any, settings: Settings) -> Lineage:
    """A step's lineage from the results it took and the one it returned."""
    ins: list[str] = []
    for value in inputs:
        for item in value if isinstance(value, list) else [value]:
            reads, writes = names(item, settings)
            ins += reads + writes
    reads, writes = names(result, settings)
    ins += reads
    seen = set(ins)
    return Lineage(inputs=tuple(dict.fromkeys(ins)),
                   outputs=tuple(u for u in dict.fromkeys(writes) if u not in seen))
