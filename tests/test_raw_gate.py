"""Corrupted drops are stopped at the raw gate, named in the message, quarantined, never published."""

from __future__ import annotations

import io
import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from tasks.flows.daily import raw_gate
from tasks.landing import DropMissing, find_drop, land_day
from tasks.quality.gate import QualityGateFailed
from tasks.storage import ObjectMissing, StorageError, Store

DAY = date(2013, 1, 15)


def _load(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _save(df: pd.DataFrame, path: Path) -> None:
    path.write_text(df.to_csv(index=False))


def missing_column(p):
    _save(_load(p).drop(columns=["distance"]), p)


def wrong_type(p):
    df = _load(p)
    df.loc[:4, "distance"] = "far"
    _save(df, p)


def null_keys(p):
    df = _load(p)
    df.loc[10:12, "carrier"] = ""
    _save(df, p)


def negative_distance(p):
    df = _load(p)
    df.loc[5:6, "distance"] = "-250"
    _save(df, p)


def duplicated_rows(p):
    df = _load(p)
    _save(pd.concat([df, df.iloc[:20]]), p)


def other_day(p):
    df = _load(p)
    df.loc[:30, "day"] = "16"
    _save(df, p)


def empty_file(p):
    p.write_text("")


def truncated_file(p):
    text = p.read_text()
    p.write_text(text[: len(text) // 5 + 7])  # cut mid-line after ~180 rows


def unknown_carrier(p):
    df = _load(p)
    df.loc[:2, "carrier"] = "ZZ"
    _save(df, p)


def minutes_out_of_range(p):
    df = _load(p)
    df.loc[:3, "minute"] = "75"
    _save(df, p)


CASES = [
    # (name, corrupt, file, expectation type, column, a needle the message must hold)
    ("missing column", missing_column, "flights.csv",
     "expect_table_columns_to_match_ordered_list", None, "distance"),
    ("wrong type", wrong_type, "flights.csv",
     "expect_column_values_to_match_regex", "distance", "'far'"),
    ("null keys", null_keys, "flights.csv",
     "expect_column_values_to_not_be_null", "carrier", "3 unexpected"),
    ("negative distances", negative_distance, "flights.csv",
     "expect_column_values_to_be_between", "distance", "-250"),
    ("duplicated rows", duplicated_rows, "flights.csv",
     "expect_compound_columns_to_be_unique", "carrier", "unexpected"),
    ("rows dated another day", other_day, "flights.csv",
     "expect_column_values_to_be_between", "day", "e.g. [16"),
    ("empty file", empty_file, "flights.csv", "file_is_readable_csv", None, "the file is empty"),
    ("truncated file", truncated_file, "flights.csv",
     "expect_table_row_count_to_be_between", None, "observed"),
    ("unknown carrier", unknown_carrier, "flights.csv",
     "expect_column_values_to_be_in_set", "carrier", "'ZZ'"),
    ("impossible minutes", minutes_out_of_range, "flights.csv",
     "expect_column_values_to_be_between", "minute", "75"),
    ("weather from an unknown airport", lambda p: unknown_carrier_weather(p), "weather.csv",
     "expect_column_values_to_be_in_set", "origin", "'XXX'"),
]


def unknown_carrier_weather(p):
    df = _load(p)
    df.loc[:1, "origin"] = "XXX"
    _save(df, p)


@pytest.mark.parametrize("name,corrupt,file,etype,column,needle", CASES, ids=[c[0] for c in CASES])
def test_corrupted_drop_is_stopped_named_and_quarantined(settings, name, corrupt, file, etype, column, needle):
    drop = land_day(DAY, settings)
    original = Path(drop.uri, file).read_bytes()
    corrupt(Path(drop.uri, file))
    corrupted = Path(drop.uri, file).read_bytes()
    assert corrupted != original

    with pytest.raises(QualityGateFailed) as err:
        raw_gate(drop, settings)
    message = str(err.value)
    failures = err.value.result.failures
    assert any(f["type"] == etype and (column is None or f["column"] == column or
                                       (isinstance(f["column"], list) and column in f["column"]))
               for f in failures), message
    assert "raw gate FAILED for 2013-01-15" in message and etype in message
    assert needle in message, message

    # The drop left landing whole, into quarantine with the validation result beside it.
    with pytest.raises(DropMissing):
        find_drop(DAY, settings)
    q = Path(settings.partition("quarantine", DAY))
    assert (q / "_SUCCESS").exists()
    assert (q / "drop" / file).read_bytes() == corrupted
    report = json.loads((q / "validation.json").read_text())
    assert report["gate"]["passed"] is False and report["gate"]["failures"]
    assert etype in (q / "summary.txt").read_text()
    # Nothing downstream was written.
    assert not Path(settings.partition("features", DAY)).exists()
    assert not Path(settings.partition("raw", DAY)).exists()


def test_good_drop_passes_and_stays(settings):
    drop = land_day(DAY, settings)
    result = raw_gate(drop, settings)
    assert result.passed and not result.failures
    assert result.suites["raw_flights"]["unsuccessful_expectations"] == 0
    assert find_drop(DAY, settings).flights == 894
    assert Path(result.docs_uri).exists()  # Data Docs built under reports/


def test_weather_sensor_glitch_is_a_warning_not_a_stop(settings):
    """2013-02-12 has a 1048 mph wind reading: flagged in Data Docs, the day still flows."""
    drop = land_day(date(2013, 2, 12), settings)
    result = raw_gate(drop, settings)
    assert result.passed
    assert result.suites["raw_weather"]["unsuccessful_expectations"] >= 1


def test_gate_on_s3_quarantines_through_moto(s3_settings):
    drop = land_day(DAY, s3_settings)
    store = Store(s3_settings)
    df = pd.read_csv(io.BytesIO(store.read_bytes(drop.flights_uri)), dtype=str, keep_default_na=False)
    df.loc[:1, "origin"] = "BOS"
    store.write_text(drop.flights_uri, df.to_csv(index=False))
    with pytest.raises(QualityGateFailed, match="origin.*'BOS'"):
        raw_gate(drop, s3_settings)
    q = s3_settings.partition("quarantine", DAY)
    assert store.is_committed(q)
    assert "validation.json" in store.list(q)
    assert store.list(drop.uri) == []
    assert store.exists(s3_settings.zone("reports") + "/data_docs/index.html")
    assert store.exists(s3_settings.zone("reports") + f"/data_docs/dt={DAY.isoformat()}/index.html")


# ------------------------------------------------------------------ storage errors are not data
def test_missing_objects_and_buckets_on_moto(s3_settings):
    """A missing key is ObjectMissing; a missing bucket is a storage error, not a missing file."""
    store = Store(s3_settings)
    absent = s3_settings.zone("landing") + "/dt=2013-01-15/flights.csv"
    with pytest.raises(ObjectMissing, match="no such object: s3://.*flights.csv.*NoSuchKey"):
        store.read_bytes(absent)
    assert not store.exists(absent)
    no_bucket = "s3://flightline-no-such-bucket/lake/flights.csv"
    with pytest.raises(StorageError) as err:
        store.read_bytes(no_bucket)
    assert not isinstance(err.value, ObjectMissing)
    assert err.value.code == "NoSuchBucket" and err.value.uri == no_bucket
    assert no_bucket in str(err.value) and "NoSuchBucket" in str(err.value)
    # Nor is a folder in a missing bucket an empty one (nothing staged, nothing to publish).
    folder = "s3://flightline-no-such-bucket/lake/features/.dt=2013-01-15.stage-x"
    with pytest.raises(StorageError) as err:
        store.is_folder(folder)
    assert not isinstance(err.value, ObjectMissing) and err.value.code == "NoSuchBucket"
    # A folder listing names what is inside, never the folder itself or its parent's entries.
    store.write_text(s3_settings.zone("landing") + "/dt=2013-01-16/flights.csv", "x")
    assert store.list(s3_settings.zone("landing") + "/dt=2013-01-16") == ["flights.csv"]
    assert store.list(s3_settings.zone("landing") + "/dt=2013-01-16/flights.csv") == []


S3_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>{message}</Message><RequestId>flightline-test</RequestId></Error>"""


@pytest.fixture
def failing_s3(s3_settings, monkeypatch):
    """A real HTTP peer on loopback standing in for S3 that answers every request with an error.

    Set ``.status``/``.code`` before use; ``.requests`` counts what it was asked. Yields settings
    whose endpoint is that peer (same bucket and data root as ``s3_settings``).
    """

    class Peer(BaseHTTPRequestHandler):
        def _fail(self):
            server.requests += 1
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = b"" if self.command == "HEAD" else S3_ERROR.format(
                code=server.code, message=f"{server.code} from the test peer").encode()
            self.send_response(server.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _fail

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    server.status, server.code, server.requests = 503, "SlowDown", 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # botocore tries a throttled call twice; s3fs repeats that a few times with a backoff, then
    # gives up to our code.
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server, s3_settings.with_overrides(s3_endpoint_url=url)
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status,code", [(403, "AccessDenied"), (503, "SlowDown")])
def test_s3_errors_are_storage_errors_not_missing_objects(failing_s3, status, code):
    server, settings = failing_s3
    server.status, server.code = status, code
    store = Store(settings)
    uri = settings.zone("landing") + "/dt=2013-01-15/flights.csv"
    with pytest.raises(StorageError) as err:
        store.read_bytes(uri)
    assert not isinstance(err.value, ObjectMissing)
    assert err.value.code == code and err.value.uri == uri
    message = str(err.value)
    assert uri in message and code in message and "transient" in message
    # throttling was retried by the client, a refusal was not
    assert server.requests > 2 if status == 503 else server.requests == 1, server.requests
    with pytest.raises(StorageError) as err:  # HEAD has no body: the HTTP status is the code
        store.exists(uri)
    assert not isinstance(err.value, ObjectMissing) and err.value.code == str(status)


def test_throttled_read_is_retried_not_quarantined(s3_settings, failing_s3):
    """S3 throttling while the gate reads a good drop: a StorageError for Airflow to retry; the
    drop stays in landing, nothing is quarantined; once S3 answers again, the gate passes."""
    server, throttled = failing_s3
    drop = land_day(DAY, s3_settings)
    with pytest.raises(StorageError, match="SlowDown") as err:
        raw_gate(drop, throttled)
    assert not isinstance(err.value, (ObjectMissing, QualityGateFailed))
    store = Store(s3_settings)
    assert find_drop(DAY, s3_settings).flights == 894
    assert store.list(s3_settings.partition("quarantine", DAY)) == []
    server.status, server.code = 403, "AccessDenied"
    with pytest.raises(StorageError, match="AccessDenied"):
        raw_gate(drop, throttled)
    assert store.list(s3_settings.partition("quarantine", DAY)) == []
    assert raw_gate(drop, s3_settings).passed


def test_a_file_missing_from_the_drop_is_a_data_failure(settings):
    drop = land_day(DAY, settings)
    Path(drop.weather_uri).unlink()
    with pytest.raises(QualityGateFailed, match="weather.csv: does not exist") as err:
        raw_gate(drop, settings)
    assert [f["type"] for f in err.value.result.failures] == ["file_is_readable_csv"]
    assert (Path(settings.partition("quarantine", DAY)) / "drop" / "flights.csv").exists()
