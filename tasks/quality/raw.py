"""The raw gate's batch: a landing drop read by the raw contract, as the Spark reader reads it.

Each file is read by the raw contract's rules (those of the Spark reader) into a text frame,
validated by the contract's parse suite (``raw_<file>_parse``: header and value formats), and a
typed frame, validated by ``expectations/raw_<file>.json``. A storage error reading the drop (not
"no such file") raises :class:`~tasks.storage.StorageError`: nothing is quarantined, the task
retries.
"""

from __future__ import annotations

from tasks import raw_contract
from tasks.landing import Drop
from tasks.quality.gate import SAMPLE_VALUES, Batch, expected_source_day
from tasks.raw_contract import Columns
from tasks.settings import Settings
from tasks.storage import ObjectMissing, Store, join

PARSE_SUFFIX = "_parse"
RAW_SUITES = {"flights.csv": "raw_flights", "weather.csv": "raw_weather"}


def raw_batch(drop: Drop, settings: Settings) -> Batch:
    """The drop's files as the raw gate validates them; the whole drop is quarantined on failure."""
    store = Store(settings)
    frames, suites, failures = {}, {}, []
    for file, columns in raw_contract.DROP_COLUMNS.items():
        suite_name = RAW_SUITES[file]
        file_uri = join(drop.uri, file)
        table, reason = read_drop_file(store, file_uri)
        if table is None:
            failures.append({"suite": suite_name, "type": "file_is_readable_csv", "column": None,
                             "kwargs": {}, "exception": reason})
            continue
        parse_name = suite_name + PARSE_SUFFIX
        suites[parse_name] = parse_suite(parse_name, columns)
        frames[parse_name] = text_frame(table)
        frames[suite_name] = typed_frame(table, columns)
        if table.malformed:
            failures.append(_malformed_failure(suite_name, file_uri, table))
    src = expected_source_day(drop.day, settings)
    return Batch(gate="raw", day=drop.day, frames=frames,
                 params={"year": src.year, "month": src.month, "day": src.day},
                 source=drop.uri, quarantine_uri=settings.partition("quarantine", drop.day),
                 keep_as="drop", suites=suites, failures=failures)


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


def read_drop_file(store: Store, uri: str):
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

