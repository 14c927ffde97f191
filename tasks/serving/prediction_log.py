"""The prediction log: every served prediction with its inputs, model version and time.

Appending is a list append under a lock (off the response path); a background thread writes
what has accumulated every ``flush_s`` seconds as one Parquet file per day, named
``predictions/served/dt=<day>/part-<time>-<id>.parquet``. Each file is written whole and
published atomically (local: temporary name, then rename; S3: one PUT), so a reader never sees a
half-written file and a crash of the server loses at most the batch not yet flushed.

``dt`` is the flight's date when the request names it (the day its features describe, so
monitoring can join the day's labels), else the UTC day the request arrived.
"""

from __future__ import annotations

import io
import threading
import uuid
from datetime import UTC, date, datetime

from tasks.feature_contract import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from tasks.settings import Settings
from tasks.storage import Store, join

#: Columns the log adds to each row's features and key.
LOG_COLUMNS = ("late_probability", "model_version", "endpoint", "logged_at")


#: The day column a row is filed under (not stored: it is the partition).
DT = "dt"


def log_root(settings: Settings) -> str:
    return join(settings.zone("predictions"), "served")


def _schema():
    import pyarrow as pa

    return pa.schema(
        [(c, pa.float64()) for c in NUMERIC_FEATURES]
        + [(c, pa.string()) for c in CATEGORICAL_FEATURES]
        + [("flight_date", pa.date32()), ("flight", pa.int32()), ("tailnum", pa.string()),
           ("sched_dep_utc", pa.string()), ("late_probability", pa.float64()),
           ("model_version", pa.string()), ("endpoint", pa.string()),
           ("logged_at", pa.timestamp("us", tz="UTC"))])


class PredictionLog:
    #: Rows converted to Arrow at a time, on the request that fills the chunk (about 1.5 ms
    #: for 512 rows): the flush then only concatenates and encodes, outside the interpreter
    #: lock, instead of converting seconds of rows at once and stalling requests.
    CHUNK_ROWS = 512

    def __init__(self, settings: Settings, model_version: str, *, flush_s: float | None = None):
        self.settings = settings
        self.version = model_version
        self.flush_s = float(flush_s if flush_s is not None else settings.prediction_log_flush_s)
        import pyarrow as pa

        self._schema = _schema().append(pa.field(DT, pa.date32()))
        self._features = [c for c in _schema().names if c not in LOG_COLUMNS]
        self._rows: list[tuple[dict, float, str, datetime]] = []  # not yet converted
        self._tables: list = []  # converted chunks, waiting for the flush
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        self.written: list[str] = []

    def append(self, rows: list[dict], probabilities, endpoint: str) -> None:
        """Keep one request's rows (validated feature dicts) and their probabilities."""
        now = datetime.now(UTC)
        items = [(r, float(p), endpoint, now) for r, p in zip(rows, probabilities, strict=True)]
        with self._lock:
            self._rows.extend(items)
            if len(self._rows) < self.CHUNK_ROWS:
                return
            chunk, self._rows = self._rows, []
        table = self._to_arrow(chunk)
        with self._lock:
            self._tables.append(table)

    def _to_arrow(self, items: list[tuple[dict, float, str, datetime]]):
        import pyarrow as pa

        columns = {c: [it[0].get(c) for it in items] for c in self._features}
        columns |= {"late_probability": [it[1] for it in items],
                    "model_version": [self.version] * len(items),
                    "endpoint": [it[2] for it in items],
                    "logged_at": [it[3] for it in items],
                    DT: [it[0].get("flight_date") or it[3].date() for it in items]}
        return pa.Table.from_pydict(columns, schema=self._schema)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception as exc:  # storage down: keep the rows, try again next round
                print(f"prediction log: flush failed, will retry: {exc}", flush=True)

    def flush(self) -> list[str]:
        """Write what has accumulated (one file per day); returns the URIs written."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        with self._lock:
            rows, self._rows = self._rows, []
            tables, self._tables = self._tables, []
        if rows:
            tables.append(self._to_arrow(rows))
        if not tables:
            return []
        table = pa.concat_tables(tables)
        store = Store(self.settings)
        written = []
        days = sorted(pc.unique(table[DT]).to_pylist())
        try:
            while days:
                day = days[0]
                part = table.filter(pc.equal(table[DT], day)).drop_columns([DT])
                buf = io.BytesIO()
                pq.write_table(part, buf)
                name = f"part-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
                uri = join(log_root(self.settings), f"dt={day.isoformat()}", name)
                store.write_bytes(uri, buf.getvalue())
                written.append(uri)
                days.pop(0)
        except Exception:
            left = table.filter(pc.is_in(table[DT], pa.array(days, pa.date32())))
            with self._lock:  # put back what was not written, in front of newer rows
                self._tables[:0] = [left]
            raise
        self.written.extend(written)
        return written

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()


def read_prediction_log(day: date, settings: Settings):
    """Every logged prediction for ``day`` (a pandas frame; empty when none)."""
    import pandas as pd
    import pyarrow.parquet as pq

    store = Store(settings)
    base = join(log_root(settings), f"dt={day.isoformat()}")
    frames = [pq.read_table(io.BytesIO(store.read_bytes(join(base, n)))).to_pandas()
              for n in store.list(base) if n.startswith("part-") and n.endswith(".parquet")]
    if not frames:
        return _schema().empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)
