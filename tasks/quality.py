"""Great Expectations quality gates over one day's data.

Suites are versioned JSON files in ``expectations/`` (one per dataset). A gate validates a day's
frame against its suite (pandas engine: a day is about a thousand rows, and GE on Spark frames
costs ~25 s fixed per process, see ``bench/bench_gates.py``), builds Data Docs under
``reports/data_docs/``, and on failure:

- moves what it guarded into ``quarantine/dt=YYYY-MM-DD/`` with the validation result beside it,
- raises :class:`QualityGateFailed`, whose message names every failed expectation with sample
  bad values, so nothing downstream runs and nothing is published.

Suite kwargs may hold ``{"$PARAMETER": "name"}`` placeholders filled at run time (the day's
year/month/day, the expected date), so "the drop's dates match the logical date" is a plain
expectation.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from tasks.landing import drop_uri, source_day
from tasks.settings import PROJECT_ROOT, Settings
from tasks.storage import SUCCESS, Store, is_s3, join

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
SAMPLE_VALUES = 5
DOCS_FOLDER = "data_docs"


class SuiteError(ValueError):
    """An expectation suite file is unreadable or names an unknown expectation."""


class QualityGateFailed(ValueError):
    """A gate refused its data. ``.result`` holds the structured outcome."""

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(result.summary())


@dataclass
class GateResult:
    gate: str
    day: date
    passed: bool
    suites: dict[str, dict] = field(default_factory=dict)  # suite -> statistics
    failures: list[dict] = field(default_factory=list)
    docs_uri: str = ""
    quarantine_uri: str = ""
    seconds: float = 0.0

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
        d = asdict(self)
        d["day"] = self.day.isoformat()
        d["summary"] = self.summary()
        return d


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


# ------------------------------------------------------------------------------ suites
def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


def load_suite_json(name: str) -> dict:
    path = suite_path(name)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"no expectation suite {name!r}: {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON ({exc})") from None
    if raw.get("name") != name:
        raise SuiteError(f"{path}: suite name {raw.get('name')!r} does not match file name")
    return raw


def _build_suite(raw: dict, path_hint: str):
    """Strict loader: GE silently drops unknown expectation types; we refuse them instead."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = []
    for i, e in enumerate(raw.get("expectations", [])):
        try:
            cfg = ExpectationConfiguration(**{k: v for k, v in e.items() if k != "id"})
            exps.append(cfg.to_domain_obj())
        except Exception as exc:
            raise SuiteError(f"{path_hint}: expectation #{i} ({e.get('type')}): {exc}") from None
    return gx.ExpectationSuite(name=raw["name"], expectations=exps, meta=raw.get("meta") or {})


def _context(docs_dir: Path, results_dir: Path):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    cfg = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
    )
    cfg.stores["validation_results_store"]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(results_dir),
    }
    cfg.data_docs_sites = {
        "flightline": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    return gx.get_context(project_config=cfg)


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


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=str))
    except Exception:
        return str(value)


# ------------------------------------------------------------------------------ validation
class _Validator:
    """One GE context for many validations; Data Docs are built once at the end."""

    def __init__(self, docs_dir: Path, results_dir: Path):
        import great_expectations as gx

        self.gx = gx
        self.ctx = _context(docs_dir, results_dir)
        self.ds = self.ctx.data_sources.add_pandas(name="pandas")
        self.batch_defs: dict[str, object] = {}
        self.suites: dict[str, object] = {}

    def run(self, suite_name: str, df, params: dict, *, gate: str, day: date, run_time) -> tuple:
        """Validate one frame: (statistics, critical failures, GE result JSON, passed)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.expectations.metadata_types import FailureSeverity

        if suite_name not in self.suites:
            raw = load_suite_json(suite_name)
            self.suites[suite_name] = self.ctx.suites.add(_build_suite(raw, str(suite_path(suite_name))))
            self.batch_defs[suite_name] = self.ds.add_dataframe_asset(
                name=suite_name).add_batch_definition_whole_dataframe("day")
        df = df.rename(columns=str.lower)  # GE matches pandas columns case-insensitively
        vd = self.ctx.validation_definitions.add(self.gx.ValidationDefinition(
            name=f"{suite_name}-{day.isoformat()}", data=self.batch_defs[suite_name],
            suite=self.suites[suite_name]))
        res = vd.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=params,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_VALUES},
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


def validate_frames(
    frames: dict[str, object],
    params: dict,
    *,
    gate: str,
    day: date,
    docs_dir: Path,
    results_dir: Path,
    unreadable: dict[str, str] | None = None,
) -> tuple[GateResult, dict]:
    """Validate each ``suite name -> pandas frame``; returns the result and the raw GE JSON."""
    validator = _Validator(docs_dir, results_dir)
    result = GateResult(gate=gate, day=day, passed=True)
    raw_results: dict[str, dict] = {}
    for suite_name, reason in (unreadable or {}).items():
        result.passed = False
        result.failures.append(
            {"suite": suite_name, "type": "file_is_readable_csv", "column": None,
             "kwargs": {}, "exception": reason}
        )
    run_time = datetime.now(UTC)
    for suite_name, df in frames.items():
        stats, failures, raw, passed = validator.run(suite_name, df, params, gate=gate, day=day,
                                                     run_time=run_time)
        raw_results[suite_name] = raw
        result.suites[suite_name] = stats
        result.failures.extend(failures)
        result.passed = result.passed and passed
    result.failures.sort(key=lambda f: (f["suite"], str(f.get("column")), f["type"]))
    validator.build_docs()
    return result, raw_results


class _DocsTarget:
    """Where Data Docs and GE's validation store live: the reports zone, staged locally for S3."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = Store(settings)
        self.reports = settings.zone("reports")
        if is_s3(self.reports):
            self.tmp = Path(tempfile.mkdtemp(prefix="flightline-docs-"))
            self.docs_dir, self.results_dir = self.tmp / DOCS_FOLDER, self.tmp / "gx_validations"
        else:
            self.tmp = None
            self.docs_dir = Path(self.reports) / DOCS_FOLDER
            self.results_dir = Path(self.reports) / "gx_validations"
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.results_dir.mkdir(parents=True, exist_ok=True)

    @property
    def index_uri(self) -> str:
        return join(self.reports, DOCS_FOLDER, "index.html")

    def finish(self) -> None:
        if self.tmp is None:
            return
        for p in sorted(self.docs_dir.rglob("*")):
            if p.is_file():
                self.store.upload_file(p, join(self.reports, DOCS_FOLDER, p.relative_to(self.docs_dir).as_posix()))
        shutil.rmtree(self.tmp, ignore_errors=True)


def expected_source_day(day: date, settings: Settings) -> date:
    return source_day(day, settings.replay_year) or day


def _read_csv(store: Store, uri: str):
    """A drop file as pandas, or the reason it cannot be read (named, never a crash)."""
    import pandas as pd

    try:
        data = store.read_bytes(uri)
    except Exception as exc:
        return None, f"{uri}: cannot be read ({exc})"
    if not data.strip():
        return None, f"{uri}: the file is empty (0 rows, no header)"
    try:
        return pd.read_csv(io.BytesIO(data), na_values=["NA"], keep_default_na=True), None
    except Exception as exc:
        return None, f"{uri}: not a readable CSV ({type(exc).__name__}: {exc})"


def gate_raw_drop(day: date, settings: Settings | None = None) -> GateResult:
    """Validate the day's landing drop (flights and weather); quarantine it on failure."""
    import time

    t0 = time.perf_counter()
    settings = settings or Settings.from_env()
    store = Store(settings)
    uri = drop_uri(day, settings)
    frames, unreadable = {}, {}
    for suite_name, file in (("raw_flights", "flights.csv"), ("raw_weather", "weather.csv")):
        df, reason = _read_csv(store, join(uri, file))
        if df is None:
            unreadable[suite_name] = reason
        else:
            frames[suite_name] = df
    src = expected_source_day(day, settings)
    params = {"year": src.year, "month": src.month, "day": src.day}
    docs = _DocsTarget(settings)
    result, raw = validate_frames(
        frames, params, gate="raw", day=day, docs_dir=docs.docs_dir,
        results_dir=docs.results_dir, unreadable=unreadable,
    )
    docs.finish()
    result.docs_uri = docs.index_uri
    result.seconds = round(time.perf_counter() - t0, 3)
    if not result.passed:
        result.quarantine_uri = quarantine_drop(day, result, raw, settings)
        raise QualityGateFailed(result)
    return result


def gate_features(day: date, staged_uri: str, settings: Settings | None = None) -> GateResult:
    """Validate a staged features partition; quarantine it on failure (nothing is published)."""
    import time

    t0 = time.perf_counter()
    result = gate_features_batch({day: staged_uri}, settings)[day]
    result.seconds = round(time.perf_counter() - t0, 3)
    if not result.passed:
        raise QualityGateFailed(result)
    return result


def quarantine_drop(day: date, result: GateResult, raw: dict, settings: Settings) -> str:
    """Move the drop from landing/ to quarantine/dt=day/ with the validation result beside it.

    Copy first, then withdraw the landing marker, then delete: at every moment the drop is whole
    in one of the two places, so nothing is lost if the process dies half-way.
    """
    store = Store(settings)
    src = drop_uri(day, settings)
    dst = settings.partition("quarantine", day)
    stage = store.staging_dir(dst)
    for file_uri in store.walk_files(src):
        rel = file_uri[len(src) + 1 :]
        if rel == SUCCESS or rel.startswith("."):
            continue
        target = stage / "drop" / rel
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


def gate_features_batch(staged: dict[date, str], settings: Settings | None = None) -> dict:
    """The features gate over many staged days in one GE context (range builds).

    Returns ``{day: GateResult}``; each failing day is quarantined like :func:`gate_features`.
    Data Docs are built once at the end.
    """
    import pandas as pd

    settings = settings or Settings.from_env()
    store = Store(settings)
    docs = _DocsTarget(settings)
    validator = _Validator(docs.docs_dir, docs.results_dir)
    run_time = datetime.now(UTC)
    results = {}
    for day, staged_uri in sorted(staged.items()):
        df = pd.read_parquet(Path(staged_uri) / "data")
        df["flight_date"] = df["flight_date"].astype(str)
        df["sched_dep_utc"] = df["sched_dep_utc"].astype(str)
        src = expected_source_day(day, settings)
        stats, failures, raw, passed = validator.run(
            "features", df, {"flight_dates": [src.isoformat()]}, gate="features", day=day,
            run_time=run_time)
        result = GateResult(gate="features", day=day, passed=passed, suites={"features": stats},
                            failures=failures, docs_uri=docs.index_uri)
        if not passed:
            target = join(settings.partition("quarantine", day), "features")
            store.publish_folder(staged_uri, target)
            store.write_text(join(target, "validation.json"), json.dumps(
                {"gate": result.to_dict(), "great_expectations": raw}, indent=1, default=str))
            result.quarantine_uri = target
        results[day] = result
    validator.build_docs()
    docs.finish()
    return results
