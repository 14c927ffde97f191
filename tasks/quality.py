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

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from tasks import raw_contract
from tasks.landing import drop_uri, source_day
from tasks.raw_contract import Columns
from tasks.settings import PROJECT_ROOT, Settings
from tasks.storage import SUCCESS, ObjectMissing, Store, is_s3, join

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
# GE logs two hundred lines of INFO registrations while it imports: quiet it before any import
# of great_expectations, so a gate's log starts with the gate.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
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

    def run(self, suite_name: str, df, params: dict, *, gate: str, day: date, run_time,
            suite_json: dict | None = None) -> tuple:
        """Validate one frame: (statistics, critical failures, GE result JSON, passed).

        The suite is ``expectations/<suite_name>.json`` unless ``suite_json`` (built in code)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.expectations.metadata_types import FailureSeverity

        if suite_name not in self.suites:
            raw = suite_json if suite_json is not None else load_suite_json(suite_name)
            hint = str(suite_path(suite_name)) if suite_json is None else f"suite {suite_name}"
            self.suites[suite_name] = self.ctx.suites.add(_build_suite(raw, hint))
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
    suites: dict[str, dict] | None = None,
    file_failures: list[dict] | None = None,
) -> tuple[GateResult, dict]:
    """Validate each ``suite name -> pandas frame``; returns the result and the raw GE JSON.

    ``suites`` holds suites built in code (by name; the others are read from ``expectations/``).
    ``unreadable`` (suite -> reason) and ``file_failures`` (failure dicts) are problems found
    before any frame existed, reported like failed expectations: each one fails the gate.
    """
    validator = _Validator(docs_dir, results_dir)
    result = GateResult(gate=gate, day=day, passed=True)
    raw_results: dict[str, dict] = {}
    for suite_name, reason in (unreadable or {}).items():
        result.failures.append(
            {"suite": suite_name, "type": "file_is_readable_csv", "column": None,
             "kwargs": {}, "exception": reason}
        )
    result.failures.extend(file_failures or [])
    result.passed = not result.failures
    run_time = datetime.now(UTC)
    for suite_name, df in frames.items():
        stats, failures, raw, passed = validator.run(suite_name, df, params, gate=gate, day=day,
                                                     run_time=run_time,
                                                     suite_json=(suites or {}).get(suite_name))
        raw_results[suite_name] = raw
        result.suites[suite_name] = stats
        result.failures.extend(failures)
        result.passed = result.passed and passed
    result.failures.sort(key=lambda f: (f["suite"], str(f.get("column")), f["type"]))
    validator.build_docs()
    return result, raw_results


def docs_path(day: date) -> str:
    """Path of a day's Data Docs site under the reports zone (what a gate's link opens)."""
    return f"{DOCS_FOLDER}/dt={day.isoformat()}/index.html"


class _DocsTarget:
    """Where one day's Data Docs site and GE's validation store for that day live.

    One site per day (``reports/data_docs/dt=YYYY-MM-DD/``, results in
    ``reports/gx_validations/dt=YYYY-MM-DD/``): a gate renders only its own day's few results, so
    its cost does not grow with the history (one site for everything re-rendered every page of
    every day on every run). ``reports/data_docs/index.html`` lists the days. On S3 the day's
    folders are staged locally (its earlier results downloaded first) and uploaded at the end.
    """

    def __init__(self, settings: Settings, day: date):
        self.settings = settings
        self.store = Store(settings)
        self.reports = settings.zone("reports")
        self.part = f"dt={day.isoformat()}"
        if is_s3(self.reports):
            self.tmp = Path(tempfile.mkdtemp(prefix="flightline-docs-"))
            self.docs_dir, self.results_dir = self.tmp / DOCS_FOLDER, self.tmp / "gx_validations"
            remote = join(self.reports, "gx_validations", self.part)
            for uri in self.store.walk_files(remote):
                self.store.download(uri, self.results_dir / uri[len(remote) + 1:])
        else:
            self.tmp = None
            self.docs_dir = Path(self.reports) / DOCS_FOLDER / self.part
            self.results_dir = Path(self.reports) / "gx_validations" / self.part
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.results_dir.mkdir(parents=True, exist_ok=True)

    @property
    def index_uri(self) -> str:
        return join(self.reports, DOCS_FOLDER, self.part, "index.html")

    def finish(self, index: bool = True) -> None:
        if self.tmp is not None:
            for local, remote in ((self.docs_dir, join(self.reports, DOCS_FOLDER, self.part)),
                                  (self.results_dir, join(self.reports, "gx_validations", self.part))):
                for p in sorted(local.rglob("*")):
                    if p.is_file():
                        self.store.upload_file(p, join(remote, p.relative_to(local).as_posix()))
            shutil.rmtree(self.tmp, ignore_errors=True)
        if index:
            write_docs_index(self.settings)


def write_docs_index(settings: Settings) -> str:
    """``reports/data_docs/index.html``: one link per day's Data Docs site, newest first."""
    import html

    store = Store(settings)
    folder = join(settings.zone("reports"), DOCS_FOLDER)
    days = sorted((n for n in store.list(folder) if n.startswith("dt=")), reverse=True)
    rows = "\n".join(f'<li class="list-group-item"><a href="{html.escape(d)}/index.html">'
                      f"{html.escape(d[3:])}</a></li>" for d in days)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Flightline Data Docs</title>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
</head><body class="container py-4">
<h1 class="h3">Flightline Data Docs</h1>
<p>Great Expectations validation results of the quality gates, one site per day.</p>
<ul class="list-group">
{rows}
</ul></body></html>
"""
    return store.write_text(join(folder, "index.html"), page)


def expected_source_day(day: date, settings: Settings) -> date:
    return source_day(day, settings.replay_year) or day


PARSE_SUFFIX = "_parse"
RAW_SUITES = {"flights.csv": "raw_flights", "weather.csv": "raw_weather"}


def parse_suite(name: str, columns: Columns) -> dict:
    """The raw file contract as an expectation suite over a file's text frame (all strings).

    The header names the contract's columns in order, and every value of a typed column matches
    the contract's pattern for its Spark type: what Spark's FAILFAST reader would refuse fails a
    named expectation here, on its column, with sample values.
    """
    exps = [{
        "type": "expect_table_columns_to_match_ordered_list",
        "kwargs": {"column_list": [c for c, _ in columns]},
        "meta": {"why": "Spark's reader (enforceSchema=false) refuses any other header"},
        "severity": "critical",
    }]
    for column, kind in columns:
        if kind != "string":
            exps.append({
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": column, "regex": raw_contract.PATTERNS[kind]},
                "meta": {"spark_type": kind, "contract": raw_contract.DESCRIPTIONS[kind]},
                "severity": "critical",
            })
    return {"name": name, "expectations": exps,
            "meta": {"generated_from": "tasks/raw_contract.py, the contract Spark reads with"}}


def _read_csv(store: Store, uri: str):
    """A drop file split by the raw contract, or the reason it is no CSV at all.

    Only content problems are reasons (absent, empty, not UTF-8 text); any other storage error
    (throttled, denied, reset) propagates as :class:`StorageError` so the task is retried and the
    drop is not quarantined for it.
    """
    try:
        data = store.read_bytes(uri)
    except ObjectMissing:
        return None, f"{uri}: does not exist"
    try:
        return raw_contract.read_table(data, uri), None
    except raw_contract.RawFileUnreadable as exc:
        return None, str(exc)


def text_frame(table: raw_contract.RawTable):
    """The file's values as text (None for null), as the parse suite checks them."""
    import pandas as pd

    return pd.DataFrame(table.rows, columns=table.header, dtype=object)


def typed_frame(table: raw_contract.RawTable, columns: Columns):
    """The file's values typed by the contract, as Spark reads them, for the data suites.

    Numbers are int64/float64 (float64 where an int column has nulls); a timestamp stays its text
    (the suites check its hour format). A value that does not parse is null here, as Spark's
    PERMISSIVE mode would read it: the parse suite refuses the file for it already.
    """
    import pandas as pd

    kinds = {c: k for c, k in columns}
    out = []
    for j, name in enumerate(table.header):
        kind = kinds.get(name.lower(), "string")  # Spark matches header names case-insensitively
        values = []
        for row in table.rows:
            try:
                value = None if row[j] is None else raw_contract.parse_value(kind, row[j])
            except ValueError:
                value = None
            values.append(row[j] if kind == "timestamp" and value is not None else value)
        if kind == "int":
            dtype = "float64" if None in values else "int64"
        else:
            dtype = "float64" if kind == "double" else object
        out.append(pd.Series(values, dtype=dtype, name=name))
    df = pd.DataFrame({j: s for j, s in enumerate(out)}, index=range(len(table.rows)))
    df.columns = table.header
    return df


def _malformed_failure(suite_name: str, uri: str, table: raw_contract.RawTable) -> dict:
    lines = "; ".join(f"line {n} {why}" for n, why in table.malformed[:SAMPLE_VALUES])
    more = f" (and {len(table.malformed) - SAMPLE_VALUES} more)" if len(
        table.malformed) > SAMPLE_VALUES else ""
    return {
        "suite": suite_name, "type": "file_rows_are_well_formed_csv", "column": None,
        "kwargs": {}, "unexpected_count": len(table.malformed),
        "sample": [n for n, _ in table.malformed[:SAMPLE_VALUES]],
        "exception": f"{uri}: {len(table.malformed)} row(s) Spark's reader would refuse, "
                     f"left out of the frames: {lines}{more}",
    }


def gate_raw_drop(day: date, settings: Settings | None = None) -> GateResult:
    """Validate the day's landing drop (flights and weather); quarantine it on failure.

    Each file is read by the raw contract's rules (those of the Spark reader) into a text frame,
    validated by the contract's parse suite (``raw_<file>_parse``: header and value formats), and
    a typed frame, validated by ``expectations/raw_<file>.json``. A storage error reading the drop
    (not "no such file") raises :class:`StorageError`: nothing is quarantined, the task retries.
    """
    import time

    t0 = time.perf_counter()
    settings = settings or Settings.from_env()
    store = Store(settings)
    uri = drop_uri(day, settings)
    frames, suites, unreadable, file_failures = {}, {}, {}, []
    for file, columns in raw_contract.DROP_COLUMNS.items():
        suite_name = RAW_SUITES[file]
        file_uri = join(uri, file)
        table, reason = _read_csv(store, file_uri)
        if table is None:
            unreadable[suite_name] = reason
            continue
        parse_name = suite_name + PARSE_SUFFIX
        suites[parse_name] = parse_suite(parse_name, columns)
        frames[parse_name] = text_frame(table)
        frames[suite_name] = typed_frame(table, columns)
        if table.malformed:
            file_failures.append(_malformed_failure(suite_name, file_uri, table))
    src = expected_source_day(day, settings)
    params = {"year": src.year, "month": src.month, "day": src.day}
    docs = _DocsTarget(settings, day)
    result, raw = validate_frames(
        frames, params, gate="raw", day=day, docs_dir=docs.docs_dir,
        results_dir=docs.results_dir, unreadable=unreadable, suites=suites,
        file_failures=file_failures,
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
    Each day gets its own Data Docs site, as the daily gate gives it.
    """
    import pandas as pd

    settings = settings or Settings.from_env()
    store = Store(settings)
    run_time = datetime.now(UTC)
    results = {}
    for day, staged_uri in sorted(staged.items()):
        docs = _DocsTarget(settings, day)
        validator = _Validator(docs.docs_dir, docs.results_dir)
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
        docs.finish(index=False)
    if results:
        write_docs_index(settings)
    return results
