"""The raw drop's file contract: one definition read by the Spark reader and by the raw gate.

A drop file (``flights.csv``, ``weather.csv``; the ``planes`` reference table too) is UTF-8 CSV
with a header naming :data:`FLIGHT_COLUMNS` (etc.) in order (letter case aside). Each column has
a Spark SQL type:

- ``int``: a 32-bit integer: optional sign, ASCII digits, -2147483648..2147483647. No decimal
  point, exponent or whitespace (Spark's reader uses ``Integer.parseInt``, which refuses those;
  it also takes non-ASCII digits, which the contract does not);
- ``double``: a decimal number: optional sign, digits with an optional point, optional exponent.
  Spark's reader (``Double.parseDouble``) also takes surrounding whitespace, hex floats, a ``d``
  or ``f`` suffix, ``NaN``, ``Inf``/``Infinity``; the contract refuses them (a NaN is not null to
  Spark, so it would slip past every not-null expectation);
- ``timestamp``: :data:`TIMESTAMP_FORMAT` (``2013-01-01T10:00:00Z``), a real calendar instant
  (no 30 February, no hour 24), offset ``Z`` or ``+HH``/``+HHmm`` up to 18 hours (Spark also takes
  a lower-case ``t``/``z``; the contract does not);
- ``string``: any text.

A field is null when it is the token :data:`NULL_TOKEN` (``NA``, quoted or not) or empty and
bare; a quoted empty field ``""`` is an empty string (to a number column: no number, refused).
Rows end with ``\n``, ``\r\n`` or ``\r``; blank (whitespace-only) lines are skipped and a
leading byte order mark dropped, as Spark does; every other row has exactly the header's number
of fields. A field is either bare (no ``"``) or wholly quoted (``"a,b"``, no quote inside), and
the escape character ``\`` never appears: Spark reads odder quoting in surprising ways (``a\,b``
is one field to it, ``"a""b"`` the literal text ``"a""b"``), so the gate refuses it.

:data:`SPARK_CSV_OPTIONS` are the options the Spark reader passes (``mode=FAILFAST``: any value
outside its schema stops the job); :func:`read_table` and :func:`parse_value` are the same rules in
plain Python for the gate, which must refuse everything Spark would refuse, and read what Spark
accepts as the same values. ``tests/test_raw_parsing.py`` runs a matrix of tricky values through
both and records what Spark did with each.

No Spark, pandas or Great Expectations import here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

SparkType = Literal["int", "double", "string", "timestamp"]
Columns = tuple[tuple[str, SparkType], ...]

FLIGHT_COLUMNS: Columns = (
    ("year", "int"), ("month", "int"), ("day", "int"), ("dep_time", "int"),
    ("sched_dep_time", "int"), ("dep_delay", "double"), ("arr_time", "int"),
    ("sched_arr_time", "int"), ("arr_delay", "double"), ("carrier", "string"),
    ("flight", "int"), ("tailnum", "string"), ("origin", "string"), ("dest", "string"),
    ("air_time", "double"), ("distance", "double"), ("hour", "int"), ("minute", "int"),
    ("time_hour", "timestamp"),
)
WEATHER_COLUMNS: Columns = (
    ("origin", "string"), ("year", "int"), ("month", "int"), ("day", "int"), ("hour", "int"),
    ("temp", "double"), ("dewp", "double"), ("humid", "double"), ("wind_dir", "double"),
    ("wind_speed", "double"), ("wind_gust", "double"), ("precip", "double"),
    ("pressure", "double"), ("visib", "double"), ("time_hour", "timestamp"),
)
PLANE_COLUMNS: Columns = (
    ("tailnum", "string"), ("year", "int"), ("type", "string"), ("manufacturer", "string"),
    ("model", "string"), ("engines", "int"), ("seats", "int"), ("speed", "double"),
    ("engine", "string"),
)
#: The drop's files and their columns.
DROP_COLUMNS: dict[str, Columns] = {"flights.csv": FLIGHT_COLUMNS, "weather.csv": WEATHER_COLUMNS}

NULL_TOKEN = "NA"
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ssX"  # a Spark (java.time) pattern
SEPARATOR = ","
QUOTE = '"'
ESCAPE = "\\"

#: Options of Spark's CSV reader (with ``schema=`` built from the columns). Every option the
#: gate's rules depend on is pinned rather than left to a Spark default.
SPARK_CSV_OPTIONS: dict[str, str] = {
    "header": "true",
    "enforceSchema": "false",  # the header must name the schema's columns, in order
    "mode": "FAILFAST",  # a value outside the contract stops the job
    "encoding": "UTF-8",
    "sep": SEPARATOR,
    "quote": QUOTE,
    "escape": ESCAPE,
    "multiLine": "false",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
    "nullValue": NULL_TOKEN,
    "emptyValue": "",
    "timestampFormat": TIMESTAMP_FORMAT,
    "enableDateTimeParsingFallback": "false",  # no second, looser try at a refused timestamp
}


# ------------------------------------------------------------------------------ value patterns
def _at_most(limit: str) -> str:
    """A regex for decimal digit strings without leading zeros whose value is <= ``limit``."""
    alts = [f"[0-9]{{1,{len(limit) - 1}}}"]
    for i, ch in enumerate(limit):
        if ch != "0":
            low = "0" if i else "1"
            top = chr(ord(ch) - 1)
            if top >= low:
                rest = len(limit) - i - 1
                digit = low if top == low else f"[{low}-{top}]"
                alts.append(limit[:i] + digit + (f"[0-9]{{{rest}}}" if rest else ""))
    alts.append(limit)
    return "(?:" + "|".join(alts) + ")"


_INT = rf"^(?:[+-]?0*{_at_most('2147483647')}|-0*2147483648)$"
_DOUBLE = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][48]|[13579][26]|[2468]0)00)"
_DATE = (
    r"(?:(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    rf"|{_LEAP_YEAR}-02-29)"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_OFFSET = r"(?:Z|[+-](?:(?:0[0-9]|1[0-7])(?:[0-5][0-9])?|18(?:00)?))"
_TIMESTAMP = rf"^{_DATE}T{_TIME}{_OFFSET}$"

#: The regex each non-string value must match (Python ``re``; the gate's GE expectations use
#: them as they are). A match is exactly "parses as the column's Spark type".
PATTERNS: dict[str, str] = {"int": _INT, "double": _DOUBLE, "timestamp": _TIMESTAMP}
_COMPILED = {kind: re.compile(p) for kind, p in PATTERNS.items()}
DESCRIPTIONS: dict[str, str] = {
    "int": "a 32-bit integer (digits, optional sign; no point, exponent or space)",
    "double": "a decimal number (digits, optional sign, point and exponent; no NaN/Inf)",
    "timestamp": f"a real instant written {TIMESTAMP_FORMAT} (e.g. 2013-01-01T10:00:00Z)",
    "string": "any text",
}


def parse_value(kind: SparkType, text: str) -> int | float | str | datetime:
    """``text`` (never the null token) as a Python value of Spark type ``kind``; ValueError if not.

    Mirrors Spark's CSV converters on the contract's subset: a value accepted here is accepted by
    Spark with the same value.
    """
    if kind == "string":
        return text
    pattern = _COMPILED.get(kind)
    if pattern is None:
        raise ValueError(f"unknown column type {kind!r}; the contract knows {sorted(DESCRIPTIONS)}")
    if not pattern.fullmatch(text):
        raise ValueError(f"{text!r} is not {DESCRIPTIONS[kind]}")
    if kind == "int":
        return int(text)
    if kind == "double":
        return float(text)
    return _instant(text)


def _instant(text: str) -> datetime:
    stamp, offset = text[:19], text[19:]
    local = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S")
    if offset == "Z":
        return local.replace(tzinfo=UTC)
    sign = -1 if offset[0] == "-" else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5] or 0))
    return local.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)


# ------------------------------------------------------------------------------ files
class RawFileUnreadable(ValueError):
    """The file is not contract CSV at all (empty, not UTF-8 text, no header)."""


@dataclass
class RawTable:
    """A drop file split by the contract's rules: text values, nulls as None, nothing typed."""

    header: list[str]
    rows: list[list[str | None]] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)  # 1-based line of each row
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)


def _split_line(line: str, nulls: bool = True) -> tuple[list[str | None], str | None]:
    """One line's fields (None for null), or the reason the line is not contract CSV."""
    null_tokens = ("", NULL_TOKEN) if nulls else ()
    if ESCAPE in line:
        return [], f"contains the escape character {ESCAPE!r}, which the contract never uses"
    fields: list[str | None] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == QUOTE:
            end = line.find(QUOTE, i + 1)
            if end < 0:
                return [], f"field {len(fields) + 1} opens a quote that never closes on this line"
            if end + 1 < n and line[end + 1] != SEPARATOR:
                return [], f"field {len(fields) + 1} has text after its closing quote"
            value = line[i + 1 : end]
            fields.append(None if nulls and value == NULL_TOKEN else value)
            i = end + 1
        else:
            end = line.find(SEPARATOR, i)
            end = n if end < 0 else end
            value = line[i:end]
            if QUOTE in value:
                return [], f"field {len(fields) + 1} ({value!r}) has a quote inside a bare value"
            fields.append(None if value in null_tokens else value)
            i = end
        if i >= n:
            return fields, None
        i += 1  # the separator
        if i == n:  # a trailing separator: one more, empty field
            fields.append(None if nulls else "")
            return fields, None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_JAVA_BLANK = "".join(chr(c) for c in range(33))  # what Java's String.trim() removes


def read_table(data: bytes, where: str) -> RawTable:
    """Split a drop file as Spark's reader does; RawFileUnreadable when it is no CSV at all.

    Rows with the wrong number of fields or odd quoting are kept out of ``rows`` and listed in
    ``malformed`` with their line number; a null is None; values stay text (see
    :func:`parse_value`).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RawFileUnreadable(
            f"{where}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None
    text = text.removeprefix("\ufeff")  # Spark drops a byte order mark too
    lines = [
        (number, line)
        for number, line in enumerate(_LINE_BREAK.split(text), start=1)
        if line.strip(_JAVA_BLANK)  # Spark skips blank lines
    ]
    if not lines:
        raise RawFileUnreadable(f"{where}: the file is empty (0 rows, no header)")
    (head_no, head), body = lines[0], lines[1:]
    header, problem = _split_line(head, nulls=False)
    if problem:
        raise RawFileUnreadable(f"{where}: the header (line {head_no}) {problem}")
    table = RawTable(header=[h or "" for h in header])
    for number, line in body:
        values, problem = _split_line(line)
        if problem is None and len(values) != len(header):
            problem = f"has {len(values)} fields, the header has {len(header)}"
        if problem:
            table.malformed.append((number, problem))
        else:
            table.rows.append(values)
            table.line_numbers.append(number)
    return table
