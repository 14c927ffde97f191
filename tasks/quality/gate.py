"""The one gate: validate a day of a dataset, build its Data Docs, quarantine it on failure.

A gate validates each of a :class:`Batch`'s frames against its suite (pandas engine: a day is
about a thousand rows, while GE on a Spark frame pays a fixed cost of tens of seconds per
process), builds the day's Data Docs (:mod:`tasks.quality.context`), and on failure:

- moves what it guarded into quarantine with the validation result beside it (:func:`quarantine`,
  the one quarantine writer),
- raises :class:`QualityGateFailed`, whose message names every failed expectation with sample
  bad values, so nothing downstream runs and nothing is published.

Each dataset says how its day becomes a batch: :mod:`tasks.quality.raw` (a landing drop),
:mod:`tasks.quality.features` (a staged features partition).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from tasks.landing import source_day
from tasks.quality.context import DocsTarget, ge_context
from tasks.quality.suites import SuiteError, build_suite, load_suite_json, suite_path
from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import SUCCESS, Store, join

SAMPLE_VALUES = 5


class QualityGateFailed(ValueError):
    """A gate refused its data. ``.result`` holds the structured outcome."""

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(result.summary())


@dataclass
class GateResult(Result):
    gate: str
    day: date
    passed: bool
    suites: dict[str, dict] = field(default_factory=dict)  # suite -> statistics
    failures: list[dict] = field(default_factory=list)
    docs_uri: str = ""
    quarantine_uri: str = ""
    seconds: float = 0.0
    #: suite -> the ``meta.version`` it was validated with ("code": built from the contract)
    suite_versions: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        if self.passed:
            return f"{self.gate} gate passed for {self.day.isoformat()}"
        lines = [
            f"{self.gate} gate FAILED for {self.day.isoformat()}: "
            f"{len(self.failures)} failed expectation(s)"
        ]
        for f in self.failures:
            where = f"{f['suite']}.{f['column']}" if f.get("column") else f["suite"]
            detail = f.get("exception") or _describe(f)
            lines.append(f"  - {where}: {f['type']}{_short_kwargs(f)}: {detail}")
        if self.quarantine_uri:
            lines.append(f"  quarantined to {self.quarantine_uri}")
        if self.docs_uri:
            lines.append(f"  Data Docs: {self.docs_uri}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return super().to_dict() | {"summary": self.summary()}  # what the log and notes show


def _short_kwargs(f: dict) -> str:
    kw = {k: v for k, v in (f.get("kwargs") or {}).items() if k not in ("column", "batch_id")}
    if not kw:
        return ""
    text = json.dumps(kw, default=str)
    return f" {text[:120]}{'...' if len(text) > 120 else ''}"


def _describe(f: dict) -> str:
    parts = []
    if f.get("unexpected_count") is not None:
        parts.append(f"{f['unexpected_count']} unexpected")
    if f.get("sample"):
        parts.append(f"e.g. {f['sample']}")
    if f.get("observed_value") is not None:
        parts.append(f"observed {f['observed_value']}")
    if f.get("mismatched"):
        parts.append(f"columns {f['mismatched']}")
    return ", ".join(parts) or "failed"


def _exception_message(r) -> str | None:
    ei = r.exception_info or {}
    if "raised_exception" in ei:
        return ei.get("exception_message") if ei.get("raised_exception") else None
    msgs = [
        v.get("exception_message")
        for v in ei.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(m for m in msgs if m)) or None


def suite_version(raw: dict, *, from_file: bool) -> str:
    """What a validation records of its suite: ``meta.version`` of a suite file (a file without
    one is refused: a reviewed change bumps it), "code" for a suite built from the contract."""
    if not from_file:
        return "code"
    version = (raw.get("meta") or {}).get("version")
    if version is None:
        raise SuiteError(f"{suite_path(raw.get('name', '?'))}: meta.version is missing; a suite "
                         "file carries the version its validations record")
    return str(version)


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=str))
    except Exception:
        return str(value)


# ------------------------------------------------------------------------------ validation
class Validator:
    """One GE context for many validations; Data Docs are built once at the end."""

    def __init__(self, docs_dir: Path, results_dir: Path):
        import great_expectations as gx

        self.gx = gx
        self.ctx = ge_context(docs_dir, results_dir)
        self.ds = self.ctx.data_sources.add_pandas(name="pandas")
        self.batch_defs: dict[str, object] = {}
        self.suites: dict[str, object] = {}
        self.versions: dict[str, str] = {}

    def run(self, suite_name: str, df, params: dict, *, gate: str, day: date, run_time,
            suite_json: dict | None = None, result_format: str = "SUMMARY") -> tuple:
        """Validate one frame: (statistics, critical failures, GE result JSON, passed).

        The suite is ``expectations/<suite_name>.json`` unless ``suite_json`` (built in code)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.expectations.metadata_types import FailureSeverity

        if suite_name not in self.suites:
            raw = suite_json if suite_json is not None else load_suite_json(suite_name)
            hint = str(suite_path(suite_name)) if suite_json is None else f"suite {suite_name}"
            self.suites[suite_name] = self.ctx.suites.add(build_suite(raw, hint))
            self.versions[suite_name] = suite_version(raw, from_file=suite_json is None)
            self.batch_defs[suite_name] = self.ds.add_dataframe_asset(
                name=suite_name).add_batch_definition_whole_dataframe("day")
        df = df.rename(columns=str.lower)  # GE matches pandas columns case-insensitively
        vd = self.ctx.validation_definitions.add(self.gx.ValidationDefinition(
            name=f"{suite_name}-{day.isoformat()}", data=self.batch_defs[suite_name],
            suite=self.suites[suite_name]))
        res = vd.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=params,
            result_format=({"result_format": result_format, "partial_unexpected_count": SAMPLE_VALUES}
                           | ({"return_unexpected_index_query": False}
                              if result_format == "COMPLETE" else {})),
            run_id=RunIdentifier(run_name=f"{gate}-{day.isoformat()}", run_time=run_time),
        )
        failures = []
        for r in res.results:
            cfg = r.expectation_config
            if r.success or cfg.severity != FailureSeverity.CRITICAL:
                continue
            out = r.result or {}
            details = out.get("details") or {}
            failures.append({
                "suite": suite_name,
                "type": cfg.type,
                "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_list"),
                "kwargs": _jsonable({k: v for k, v in cfg.kwargs.items() if k != "batch_id"}),
                "unexpected_count": out.get("unexpected_count"),
                "sample": _jsonable(out.get("partial_unexpected_list")),
                "observed_value": _jsonable(out.get("observed_value")),
                "mismatched": _jsonable(details.get("mismatched")),
                "exception": _exception_message(r),
            })
        passed = res.get_max_severity_failure() != FailureSeverity.CRITICAL
        return _jsonable(dict(res.statistics)), failures, res.to_json_dict(), passed

    def build_docs(self) -> None:
        self.ctx.build_data_docs(site_names=["flightline"])


@dataclass
class Batch:
    """One day of one dataset, ready for the gate: its frames and what to do if it fails."""

    gate: str  # "raw" or "features": names the gate in messages and Data Docs
    day: date
    frames: dict[str, object]  # suite name -> pandas frame
    params: dict  # the suites' run-time parameters
    source: str  # the folder the gate guards: quarantined whole when it fails
    quarantine_uri: str  # where it goes then
    keep_as: str = ""  # the quarantine's sub-folder for the source's files ("" : at its top)
    suites: dict[str, dict] = field(default_factory=dict)  # suites built in code, by name
    failures: list[dict] = field(default_factory=list)  # found before any frame existed


def gate(batch: Batch, settings: Settings) -> GateResult:
    """Validate ``batch`` in one GE context; quarantine it and raise :class:`QualityGateFailed`
    when a critical expectation fails (or ``batch.failures`` holds anything)."""
    t0 = time.perf_counter()
    result = GateResult(gate=batch.gate, day=batch.day, passed=not batch.failures,
                        failures=list(batch.failures))
    raw_results: dict[str, dict] = {}
    with DocsTarget(settings, batch.day) as docs:
        validator = Validator(docs.docs_dir, docs.results_dir)
        run_time = datetime.now(UTC)
        for suite_name, df in batch.frames.items():
            stats, failures, raw, passed = validator.run(
                suite_name, df, batch.params, gate=batch.gate, day=batch.day, run_time=run_time,
                suite_json=batch.suites.get(suite_name))
            raw_results[suite_name] = raw
            result.suites[suite_name] = stats
            result.suite_versions[suite_name] = validator.versions[suite_name]
            result.failures.extend(failures)
            result.passed = result.passed and passed
        result.failures.sort(key=lambda f: (f["suite"], str(f.get("column")), f["type"]))
        validator.build_docs()
    result.docs_uri = docs.index_uri
    result.seconds = round(time.perf_counter() - t0, 3)
    if not result.passed:
        result.quarantine_uri = quarantine(batch, result, raw_results, settings)
        raise QualityGateFailed(result)
    return result


def check_history(batches: Iterable[Batch], only: Iterable[str] | None = None) -> dict[str, list[dict]]:
    """Validate many days' batches in one GE context, with no Data Docs and no quarantine: what
    a suite change does to days known to be good (``flightline check-suites``). Returns each
    day's critical failures (empty: the day passes); ``only``: these suites alone."""
    only = None if only is None else set(only)
    import tempfile

    out: dict[str, list[dict]] = {}
    run_time = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="flightline-check-") as tmp:
        validator = Validator(Path(tmp) / "docs", Path(tmp) / "results")
        for b in batches:
            failures = list(b.failures)
            for suite_name, df in b.frames.items():
                if only is not None and suite_name not in only:
                    continue
                failures += validator.run(suite_name, df, b.params, gate=b.gate, day=b.day,
                                          run_time=run_time, suite_json=b.suites.get(suite_name))[1]
            out[b.day.isoformat()] = failures
    return out


def quarantine(batch: Batch, result: GateResult, raw: dict, settings: Settings) -> str:
    """Move ``batch.source`` into ``batch.quarantine_uri`` with the validation result beside it
    (``validation.json``, ``summary.txt``); the one quarantine writer of every dataset.

    Copy first, then withdraw the source's commit marker, then delete: at every moment the data
    is whole in one of the two places, so nothing is lost if the process dies half-way.
    """
    store = Store(settings)
    src, dst = batch.source, batch.quarantine_uri
    stage = store.staging_dir(dst)
    for file_uri in store.walk_files(src):
        rel = file_uri[len(src) + 1 :]
        if rel == SUCCESS or rel.startswith("."):
            continue
        target = stage / batch.keep_as / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read_bytes(file_uri))
    (stage / "validation.json").write_text(
        json.dumps({"gate": result.to_dict(), "great_expectations": raw}, indent=1, default=str)
    )
    (stage / "summary.txt").write_text(result.summary() + "\n")
    store.publish_folder(stage, dst)
    store.delete(join(src, SUCCESS))
    store.delete_tree(src)
    return dst


def expected_source_day(day: date, settings: Settings) -> date:
    """The source day whose data a batch of ``day`` must hold (replay maps days onto 2013)."""
    return source_day(day, settings.replay_year) or day
