"""The raw gate reads a drop by the same rules as Spark: whatever Spark's reader refuses, the gate
stops first, with a named expectation on the right column (or line), and quarantines the drop.

A matrix of tricky values (ints, doubles, timestamps, null tokens, quoting, row widths, headers)
records what Spark's FAILFAST reader does with each (verified when written, on Spark 4.2.0):

- the slow test puts each case alone into a real landed flights/weather file and reads it with
  the real reader (``tasks.spark.read_csv``, one local session for the module): Spark's
  verdict must be the recorded one, and where Spark accepts, every value it reads must equal the
  contract's (``tasks.raw_contract``) reading of the same file;
- the gate test lands real drops holding the cases (several per drop, each on its own row: a gate
  run costs seconds, a Spark read does not) and runs the gate: every case Spark refuses is named
  (the parse expectation on its column with its value, or the malformed line, or the header) and
  the drop is quarantined; nothing Spark accepts is refused, except the few cases where the
  contract is stricter on purpose (``stricter=True``).
"""

from __future__ import annotations

import calendar
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tasks import raw_contract
from tasks.flows.daily import raw_gate
from tasks.landing import DropMissing, find_drop, land_day
from tasks.quality.gate import SAMPLE_VALUES, QualityGateFailed

DAY = date(2013, 1, 15)
ROW = 2  # the data row a case edits when it is alone in a file (line ROW + 1)
ACCEPTS, REFUSES = "accepts", "refuses"
REGEX = "expect_column_values_to_match_regex"
ROWS = "file_rows_are_well_formed_csv"
HEADER = "expect_table_columns_to_match_ordered_list"


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    spark: str  # the verdict of Spark's FAILFAST reader
    column: str | None = None  # the field a value case replaces ...
    text: str | None = None  # ... with this raw CSV text
    row_edit: Callable[[str], str] | None = None  # or a change to its row (may add lines)
    file_edit: Callable[[list[str]], list[str]] | None = None  # or to the whole file
    expect: str = ""  # how the gate refuses it: REGEX (on column), ROWS or HEADER
    stricter: bool = False  # Spark accepts it; the contract refuses it on purpose

    @property
    def value(self) -> str | None:
        """The field's value as the gate's samples show it (unquoted)."""
        t = self.text
        return t[1:-1] if t and len(t) >= 2 and t[0] == t[-1] == '"' else t

    def edit_row(self, row: str) -> str:
        if self.row_edit:
            return self.row_edit(row)
        fields = row.split(",")  # the landed rows hold no quotes
        fields[[c for c, _ in raw_contract.DROP_COLUMNS[self.file]].index(self.column)] = self.text
        return ",".join(fields)


def value(column, text, spark, *, file="flights.csv", expect=None, stricter=False) -> Case:
    refused = spark == REFUSES or stricter
    expect = expect if expect is not None else (REGEX if refused else "")
    return Case(f"{file[:-4]}.{column}={text!r}", file, spark, column, text, expect=expect,
                stricter=stricter)


def row(name, edit, spark, expect="", *, file="flights.csv") -> Case:
    return Case(name, file, spark, row_edit=edit, expect=expect)


def whole(name, edit, spark, expect="") -> Case:
    return Case(name, "flights.csv", spark, file_edit=edit, expect=expect)


def _swap_header(lines: list[str]) -> list[str]:
    names = lines[0].split(",")
    names[1], names[2] = names[2], names[1]
    return [",".join(names)] + lines[1:]


W = {"file": "weather.csv"}
CASES = [
    # ints: Integer.parseInt on the field's exact text
    value("dep_time", "+517", ACCEPTS),
    value("dep_time", "0517", ACCEPTS),
    value("dep_time", "517.0", REFUSES),
    value("dep_time", "12.0", REFUSES),
    value("dep_time", "1e3", REFUSES),
    value("dep_time", " 517", REFUSES),
    value("dep_time", "517 ", REFUSES),
    value("dep_time", "\t517", REFUSES),
    value("flight", "2147483647", ACCEPTS),
    value("flight", "-2147483648", ACCEPTS),
    value("flight", "2147483648", REFUSES),
    value("flight", "3000000000", REFUSES),
    value("flight", "-2147483649", REFUSES),
    value("arr_time", "0x10", REFUSES),
    value("arr_time", "1_000", REFUSES),
    value("arr_time", "5L", REFUSES),
    value("arr_time", "\u0668\u0662\u0665", ACCEPTS, stricter=True),  # Arabic-Indic digits
    value("hour", "5", ACCEPTS, **W),
    value("hour", "5.5", REFUSES, **W),
    # nulls: "NA" (quoted or not) and a bare empty field; a quoted empty field is "" (no number)
    value("dep_time", "", ACCEPTS),
    value("dep_time", "NA", ACCEPTS),
    value("dep_time", '"NA"', ACCEPTS),
    value("dep_time", '"517"', ACCEPTS),
    value("sched_arr_time", '""', REFUSES),
    value("sched_arr_time", "na", REFUSES),
    value("sched_arr_time", " NA", REFUSES),
    value("sched_arr_time", "null", REFUSES),
    value("tailnum", "", ACCEPTS),
    value("tailnum", '""', ACCEPTS),
    value("tailnum", '"N1,23"', ACCEPTS),
    value("tailnum", 'N1"23', ACCEPTS, expect=ROWS, stricter=True),
    value("tailnum", "N1\\23", ACCEPTS, expect=ROWS, stricter=True),
    value("dest", '"IAH"', ACCEPTS),
    # doubles: Double.parseDouble plus Spark's NaN/Inf tokens; the contract takes plain decimals
    value("distance", "1400.5", ACCEPTS),
    value("distance", "1400.", ACCEPTS),
    value("distance", "+.5e3", ACCEPTS),
    value("distance", "1e400", ACCEPTS),
    value("distance", " 1400", ACCEPTS, stricter=True),
    value("distance", "1400 ", ACCEPTS, stricter=True),
    value("distance", "1400d", ACCEPTS, stricter=True),
    value("distance", "0x1p3", ACCEPTS, stricter=True),
    value("distance", "NaN", ACCEPTS, stricter=True),
    value("air_time", "Inf", ACCEPTS, stricter=True),
    value("air_time", "far", REFUSES),
    value("air_time", "1.5.2", REFUSES),
    value("air_time", '"1,5"', REFUSES),
    value("air_time", "1e", REFUSES),
    value("air_time", '""', REFUSES),
    value("wind_speed", "Infinity", ACCEPTS, stricter=True, **W),
    value("wind_speed", "+Inf", REFUSES, **W),
    value("wind_speed", "", ACCEPTS, **W),
    # timestamps: yyyy-MM-dd'T'HH:mm:ssX, strictly (offsets up to 18 hours)
    value("time_hour", "2013-01-15T10:00:00+00", ACCEPTS),
    value("time_hour", "2013-01-15T05:00:00-0500", ACCEPTS),
    value("time_hour", "2013-01-15T15:30:00+0530", ACCEPTS),
    value("time_hour", "2013-01-16T04:00:00+18", ACCEPTS),
    value("time_hour", "2013-01-15T10:00:00+1801", REFUSES),
    value("time_hour", "2013-01-15T10:00:00+19", REFUSES),
    value("time_hour", "2013-01-15T10:00:00+05:00", REFUSES),
    value("time_hour", "2013-02-30T10:00:00Z", REFUSES),
    value("time_hour", "2013-02-29T10:00:00Z", REFUSES),
    value("time_hour", "2013-01-15 10:00:00", REFUSES),
    value("time_hour", "2013-01-15T10:00:00", REFUSES),
    value("time_hour", "2013-01-15T24:00:00Z", REFUSES),
    value("time_hour", "2013-01-15T10:00:60Z", REFUSES),
    value("time_hour", "2013-1-15T10:00:00Z", REFUSES),
    value("time_hour", "2013-01-15T10:00:00.000Z", REFUSES),
    value("time_hour", "2013-01-15T10:00:00UTC", REFUSES),
    value("time_hour", " 2013-01-15T10:00:00Z", REFUSES),
    value("time_hour", "2013-01-15", REFUSES),
    value("time_hour", '""', REFUSES),
    value("time_hour", "2013-01-15t10:00:00z", ACCEPTS, stricter=True),
    value("time_hour", "2012-02-29T10:00:00Z", ACCEPTS, **W),
    value("time_hour", "2100-02-29T10:00:00Z", REFUSES, **W),
    # rows: exactly the header's number of fields; plain or wholly quoted fields
    value("distance", "1,400", REFUSES, expect=ROWS),
    value("origin", "E\\,WR", REFUSES, expect=ROWS),  # the escape character joins fields
    value("tailnum", '"N1', REFUSES, expect=ROWS),  # a quote that never closes
    value("tailnum", '"N1\n23"', REFUSES, expect=ROWS),  # a quoted line break (multiLine off)
    row("row with an extra field", lambda r: r + ",1", REFUSES, ROWS),
    row("row with a trailing separator", lambda r: r + ",", REFUSES, ROWS),
    row("row missing a field", lambda r: r.rsplit(",", 1)[0], REFUSES, ROWS),
    row("weather row missing a field", lambda r: r.rsplit(",", 1)[0], REFUSES, ROWS, **W),
    row("blank line", lambda r: r + "\n", ACCEPTS),
    row("spaces-only line", lambda r: r + "\n \t ", ACCEPTS),
    # headers and line ends
    whole("header in another order", _swap_header, REFUSES, HEADER),
    whole("header in capitals", lambda ls: [ls[0].upper()] + ls[1:], ACCEPTS),
    whole("byte order mark", lambda ls: ["\ufeff" + ls[0]] + ls[1:], ACCEPTS),
    whole("CRLF line ends", lambda ls: [x + "\r" for x in ls], ACCEPTS),
]


def test_the_matrix_says_how_the_gate_names_every_refusal():
    assert len({c.id for c in CASES}) == len(CASES)
    for case in CASES:
        refused = case.spark == REFUSES or case.stricter
        assert bool(case.expect) == refused, case.id
        assert case.expect in ("", REGEX, ROWS, HEADER), case.id
        assert case.column or case.expect != REGEX, case.id


# ------------------------------------------------------------------ building drops
def _lines(path: Path) -> list[str]:
    return path.read_text().removesuffix("\n").split("\n")


def _apply(cases: list[Case], path: Path, first_row: int) -> dict[str, list[int]]:
    """Write ``cases`` into the landed file, case k on data row ``first_row + k``.

    Returns the 1-based line numbers each row case's row ends up on (more than one where the
    case breaks its row in two).
    """
    lines = _lines(path)
    whole_file = [c for c in cases if c.file_edit]
    assert not whole_file or len(cases) == len(whole_file)
    for case in whole_file:
        lines = case.file_edit(lines)
    rows = {first_row + k: case for k, case in enumerate(c for c in cases if not c.file_edit)}
    for index in sorted(rows, reverse=True):  # bottom-up: added lines shift nothing still to edit
        lines[index] = rows[index].edit_row(lines[index])
    text = "\n".join(lines) + "\n"
    assert text != path.read_text(), "the edit changed nothing"
    path.write_text(text)
    first = {index: 1 + index + sum(x.count("\n") for x in lines[:index]) for index in rows}
    return {case.id: list(range(first[index], first[index] + 1 + lines[index].count("\n")))
            for index, case in rows.items()}


def _weight(case: Case) -> int:
    """How many samples (values, or malformed lines) the case adds to its failure."""
    return 1 + (case.text or "").count("\n") if case.expect == ROWS else 1


def _batches() -> list[list[Case]]:
    """Cases grouped into drops: one file each, each refused case still nameable on its own
    (at most SAMPLE_VALUES refusals per column and malformed rows per drop, so every sample
    shows); whole-file cases alone, the accepted ones together."""
    batches: list[list[Case]] = []
    for file in ("flights.csv", "weather.csv"):
        open_batches: list[list[Case]] = []
        for case in (c for c in CASES if c.file == file and not c.file_edit):
            key = (case.expect, case.column if case.expect == REGEX else None)
            for batch in open_batches:
                taken = sum(_weight(c) for c in batch if c.expect and
                            (c.expect, c.column if c.expect == REGEX else None) == key)
                if not case.expect or taken + _weight(case) <= SAMPLE_VALUES:
                    batch.append(case)
                    break
            else:
                open_batches.append([case])
        batches += open_batches
    whole_file = [c for c in CASES if c.file_edit]
    batches += [[c] for c in whole_file if c.expect]
    batches.append([c for c in whole_file if not c.expect])
    return batches


BATCHES = _batches()


# ------------------------------------------------------------------ Spark
@pytest.fixture(scope="module")
def spark():
    from tasks.settings import Settings
    from tasks.spark import spark_session

    session = spark_session(Settings.from_env({}), "flightline-raw-parsing")
    yield session
    session.stop()


def _contract_rows(path: Path, case: Case) -> list[list]:
    columns = raw_contract.DROP_COLUMNS[case.file]
    table = raw_contract.read_table(path.read_bytes(), str(path))
    assert not table.malformed, table.malformed
    return [[None if text is None else raw_contract.parse_value(kind, text)
             for text, (_, kind) in zip(values, columns, strict=True)] for values in table.rows]


def _same(spark_value, contract_value) -> bool:
    if isinstance(contract_value, datetime):  # Spark hands back naive local time
        return spark_value is not None and spark_value.timestamp() == contract_value.timestamp()
    return spark_value == contract_value


@pytest.fixture(scope="module")
def spark_readings(spark, tmp_path_factory):
    """Each case alone in a landed file, read by the real Spark reader: id -> (verdict, detail)."""
    from tasks.settings import Settings
    from tasks.spark import read_csv

    root = tmp_path_factory.mktemp("spark-cases")
    drop = Path(land_day(DAY, Settings(data_root=str(root / "data"))).uri)
    out = {}
    for n, case in enumerate(CASES):
        path = root / f"case{n}" / case.file
        path.parent.mkdir()
        path.write_bytes((drop / case.file).read_bytes())
        _apply([case], path, ROW)
        try:
            rows = read_csv(spark, str(path), raw_contract.DROP_COLUMNS[case.file]).collect()
        except Exception as exc:  # FAILFAST: the first value outside the schema stops the job
            if not type(exc).__module__.startswith(("py4j", "pyspark")):
                raise  # not Spark refusing the file
            causes = [x for x in str(exc).splitlines() if "Caused by" in x] or [str(exc)]
            out[case.id] = (REFUSES, causes[-1].strip()[:300])
            continue
        out[case.id] = (ACCEPTS, (path, [list(r) for r in rows]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spark_reads_the_case_as_recorded(spark_readings, case):
    verdict, detail = spark_readings[case.id]
    assert verdict == case.spark, f"Spark now {verdict} {case.id}: {detail}"
    if verdict == ACCEPTS and not case.stricter:
        path, spark_rows = detail
        contract_rows = _contract_rows(path, case)
        assert len(spark_rows) == len(contract_rows)
        for n, (s, c) in enumerate(zip(spark_rows, contract_rows, strict=True)):
            assert all(_same(a, b) for a, b in zip(s, c, strict=True)), (n, s, c)


# ------------------------------------------------------------------ the gate
@pytest.mark.parametrize("cases", BATCHES, ids=[f"drop{n}" for n in range(len(BATCHES))])
def test_gate_names_every_case_spark_refuses(settings, cases):
    file = cases[0].file
    drop = land_day(DAY, settings)
    path = Path(drop.uri, file)
    line_of = _apply(cases, path, first_row=1)
    written = path.read_bytes()
    try:
        result = raw_gate(drop, settings)
    except QualityGateFailed as err:
        result = err.result
    message = result.summary()
    suite = {"flights.csv": "raw_flights", "weather.csv": "raw_weather"}[file]
    parse = [f for f in result.failures
             if f["suite"] == f"{suite}_parse" or f["type"].startswith("file_")]

    for f in parse:  # every parse failure is one the matrix expects ...
        if f["type"] == REGEX:
            expected = [c.value for c in cases if c.expect == REGEX and c.column == f["column"]]
            assert f["unexpected_count"] == len(expected), message
            assert sorted(f["sample"]) == sorted(expected), message
        elif f["type"] == ROWS:
            expected = sorted(n for c in cases if c.expect == ROWS for n in line_of[c.id])
            assert f["unexpected_count"] == len(expected) and f["sample"] == expected, message
            for n in expected:
                assert re.search(rf"line {n} (has \d+ fields|field|contains)", message), message
        else:
            assert f["type"] == HEADER and any(c.expect == HEADER for c in cases), message
    for case in cases:  # ... and every case the matrix says the gate refuses is named
        if case.expect == REGEX:
            assert any(f["type"] == REGEX and f["column"] == case.column for f in parse), case.id
            assert f"{suite}_parse.{case.column}: {REGEX}" in message
        elif case.expect:
            assert any(f["type"] == case.expect for f in parse), case.id

    if any(c.expect for c in cases):
        assert not result.passed and result.quarantine_uri
        with pytest.raises(DropMissing):
            find_drop(DAY, settings)
        quarantined = Path(settings.partition("quarantine", DAY))
        assert (quarantined / "_SUCCESS").exists()
        assert (quarantined / "drop" / file).read_bytes() == written
    else:
        assert not parse, message


def test_the_untouched_drop_passes(settings):
    result = raw_gate(land_day(DAY, settings), settings)
    assert result.passed and not result.failures
    assert result.suites["raw_flights_parse"]["evaluated_expectations"] == 1 + 15
    assert result.suites["raw_weather_parse"]["evaluated_expectations"] == 1 + 14
    assert find_drop(DAY, settings).flights == 894


# ------------------------------------------------------------------ the contract's own rules
def test_int_pattern_is_exactly_the_32_bit_range():
    pattern = re.compile(raw_contract.PATTERNS["int"])
    rng = random.Random(7)
    numbers = [rng.randint(-(2**33), 2**33) for _ in range(20000)]
    numbers += [2**31 + d for d in range(-1200, 1200)] + [-(2**31) + d for d in range(-1200, 1200)]
    for n in numbers + [0, 1, -1, 10**10]:
        assert bool(pattern.fullmatch(str(n))) == (-(2**31) <= n < 2**31), n
    for text in ["+0005", "-0", "-0002147483648", "+2147483647"]:
        assert pattern.fullmatch(text), text
    for text in ["", "-", "+", "1.0", "1e3", " 1", "1 ", "0x1", "1_0", "\u0661", "+-1"]:
        assert not pattern.fullmatch(text), text


def test_timestamp_pattern_is_exactly_the_calendar():
    pattern = re.compile(raw_contract.PATTERNS["timestamp"])
    for year in (1, 4, 100, 400, 1900, 1996, 2000, 2012, 2013, 2100, 2400, 9999):
        for month in range(1, 13):
            for day in range(1, 33):
                text = f"{year:04d}-{month:02d}-{day:02d}T23:59:59Z"
                real = day <= calendar.monthrange(year, month)[1]
                assert bool(pattern.fullmatch(text)) == real, text
                if real:
                    assert raw_contract.parse_value("timestamp", text) == datetime(
                        year, month, day, 23, 59, 59, tzinfo=UTC)
    assert raw_contract.parse_value("timestamp", "2013-01-15T05:30:00-0500") == datetime(
        2013, 1, 15, 10, 30, tzinfo=UTC)
    for text in ["0000-01-01T00:00:00Z", "2013-13-01T00:00:00Z", "2013-01-01T24:00:00Z",
                 "2013-01-01T00:60:00Z", "2013-01-01T00:00:00+1801", "2013-01-01T00:00:00"]:
        assert not pattern.fullmatch(text), text


def test_reading_rules():
    table = raw_contract.read_table(
        b'\xef\xbb\xbfa,b,c\r\n1,"x,y",NA\n\n \t \n1,2\n"NA",,\n1,2,3,\n"a""b",1,2\n1,2,"3\n',
        "f.csv")
    assert table.header == ["a", "b", "c"]
    assert table.rows == [["1", "x,y", None], [None, None, None]]
    assert table.line_numbers == [2, 6]
    assert [n for n, _ in table.malformed] == [5, 7, 8, 9]
    assert "has 2 fields, the header has 3" in table.malformed[0][1]
    for data, needle in [(b"", "empty"), (b" \n\n", "empty"), (b"a,b\n\xe9,1\n", "not UTF-8")]:
        with pytest.raises(raw_contract.RawFileUnreadable, match=needle):
            raw_contract.read_table(data, "f.csv")
    with pytest.raises(ValueError, match="not a 32-bit integer"):
        raw_contract.parse_value("int", "12.0")
