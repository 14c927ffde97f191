"""URI-based storage for the data root, local or ``s3://bucket/prefix``, on fsspec.

fsspec's ``LocalFileSystem`` and s3fs's ``S3FileSystem`` (the well-kept filesystem layer pandas,
pyarrow and Dask use) do the I/O: listing, reads, uploads, copies, deletes, and for S3 the
connection pool, multipart uploads and the retries of throttled or dropped requests. This module
adds what the data root needs on top:

- every write is atomic for readers: a single object is written to a temporary name and renamed
  (local) or PUT whole (S3, where an object only becomes visible once its upload completes);
- a folder of files (a partition) is assembled under a hidden name beside its place (a hidden
  folder locally, a hidden prefix on S3: :meth:`Store.stage_uri`) and then published: by
  ``os.replace`` locally, and on S3 by copying into place and writing a ``_SUCCESS`` commit marker
  last. Readers of partitions only trust folders with a ``_SUCCESS`` marker;
- failures are named: :class:`ObjectMissing` for an object that does not exist,
  :class:`StorageError` (with the URI and S3's error code) for everything else: denied,
  throttled past the retries, a missing bucket, a dropped connection. Those are problems of the
  store, never of the data.

A staged folder is a URI in the data root, so the task that builds it and the task that
validates or publishes it need not share a disk. What must read files (Spark, pyarrow) gets a
local copy (:meth:`Store.local_folder`).
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.settings import Settings

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

SUCCESS = "_SUCCESS"


class StorageError(RuntimeError):
    """A storage operation failed; the message names the URI (and the S3 error code, if any).

    Apart from :class:`ObjectMissing`, this is a problem of the store (throttling, a reset
    connection, denied access, a missing bucket), never of the data: callers let it propagate so
    the task is retried, and must not treat the object as absent or bad.
    """

    def __init__(self, message: str, *, uri: str = "", code: str = ""):
        super().__init__(message)
        self.uri = uri
        self.code = code


class ObjectMissing(StorageError):
    """The object does not exist: S3 answered 404/NoSuchKey/NotFound, or no such local file."""


#: S3 codes that mean "no such object". s3fs also turns ``NoSuchBucket`` into FileNotFoundError;
#: here a missing bucket is a configuration error, not a missing object.
_MISSING_CODES = ("404", "NoSuchKey", "NotFound")


def _s3_error(exc: BaseException) -> tuple[str, int | None, str] | None:
    """S3's (code, HTTP status, message) behind an error s3fs raised, if S3 answered one."""
    from botocore.exceptions import ClientError

    seen = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            err = seen.response.get("Error", {})
            status = seen.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return str(err.get("Code") or status or ""), status, str(err.get("Message") or seen)
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def _storage_errors(action: str, uri: str) -> Iterator[None]:
    """Turn the errors of one operation on ``uri`` into :class:`ObjectMissing` or a named
    :class:`StorageError` (s3fs raises OSError subclasses with botocore's error as the cause)."""
    from aiohttp import ClientError as HTTPClientError
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except StorageError:
        raise
    except (BotoCoreError, HTTPClientError) as exc:  # reset or refused, timed out, cut off
        code = type(exc).__name__
        raise StorageError(
            f"cannot {action} {uri}: {code}: {exc}. This is a storage error, not missing or bad "
            "data; it may be transient",
            uri=uri, code=code,
        ) from exc
    except OSError as exc:
        s3 = _s3_error(exc)
        if s3 is not None:
            code, status, message = s3
            if code in _MISSING_CODES:
                raise ObjectMissing(f"no such object: {uri} (S3 {code})", uri=uri,
                                    code=code) from exc
            raise StorageError(
                f"cannot {action} {uri}: S3 answered {code or 'an error'} (HTTP {status}): "
                f"{message}. This is a storage error, not missing or bad data; it may be "
                "transient (throttling, network), or access or configuration is wrong",
                uri=uri, code=code,
            ) from exc
        if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
            what = "a folder, not a file" if isinstance(exc, IsADirectoryError) else "absent"
            raise ObjectMissing(f"no such object: {uri} ({what})", uri=uri, code="ENOENT") from None
        code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        raise StorageError(
            f"cannot {action} {uri}: {code}: {exc.strerror or exc}. This is a storage error, not "
            "missing or bad data; it may be transient",
            uri=uri, code=code,
        ) from exc


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem(uri: str, settings: Settings) -> AbstractFileSystem:
    """The fsspec filesystem for ``uri``: s3fs for ``s3://`` (on the configured endpoint, with
    no listing cache: other processes write the same prefixes), else the local one. fsspec keeps
    one instance per process for the same arguments (a new one after a fork)."""
    import fsspec

    if not is_s3(uri):
        return fsspec.filesystem("file")
    import s3fs

    # One GET per read (with max_concurrency > 1, s3fs first asks for the size, and a HEAD's
    # 404 carries no error code: a missing bucket would read as a missing object).
    endpoint = settings.s3_endpoint_url or None
    return s3fs.S3FileSystem(endpoint_url=endpoint, use_listings_cache=False, max_concurrency=1)


class Store:
    """Read, write, list and publish under local paths or S3 URIs."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def fs(self, uri: str) -> AbstractFileSystem:
        return filesystem(uri, self.settings)

    # ---------------------------------------------------------------- objects
    def exists(self, uri: str) -> bool:
        with _storage_errors("check", uri):
            return self.fs(uri).exists(uri)

    def read_bytes(self, uri: str) -> bytes:
        """The object's bytes. :class:`ObjectMissing` when it does not exist; any other failure
        (denied, throttled, cut off) is a :class:`StorageError` to retry, never "missing"."""
        with _storage_errors("read", uri):
            return self.fs(uri).cat_file(uri)

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def write_bytes(self, uri: str, data: bytes) -> str:
        """Write one object atomically: readers see the old content or the new, never a part."""
        if is_s3(uri):
            with _storage_errors("write", uri):
                self.fs(uri).pipe_file(uri, data)
            return uri
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return uri

    def write_text(self, uri: str, text: str) -> str:
        return self.write_bytes(uri, text.encode("utf-8"))

    def upload_file(self, local_path: str | Path, uri: str) -> str:
        if is_s3(uri):
            with _storage_errors("upload to", uri):
                self.fs(uri).put_file(str(local_path), uri)
            return uri
        return self.write_bytes(uri, Path(local_path).read_bytes())

    def download(self, uri: str, local_path: str | Path) -> Path:
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.with_name(f".{local_path.name}.part-{uuid.uuid4().hex}")
        try:  # a download cut off leaves no partial file under the name
            with _storage_errors("download", uri):
                if is_s3(uri):
                    self.fs(uri).get_file(uri, str(tmp))
                else:
                    shutil.copyfile(uri, tmp)
            os.replace(tmp, local_path)
        finally:
            tmp.unlink(missing_ok=True)
        return local_path

    # ---------------------------------------------------------------- folders
    def list(self, uri: str) -> list[str]:
        """Names directly under a folder URI (files and sub-folders), sorted; [] if absent."""
        fs = self.fs(uri)
        try:
            with _storage_errors("list", uri):
                if not is_s3(uri) and not fs.isdir(uri):
                    return []
                entries = fs.ls(uri, detail=False)
        except ObjectMissing:
            return []
        own = fs._strip_protocol(uri).rstrip("/")  # a folder marker, or the URI a file
        names = {e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != own}
        return sorted(n for n in names if n)

    def walk_files(self, uri: str) -> Iterator[str]:
        """Every file URI below a folder, recursively, sorted."""
        fs = self.fs(uri)
        prefix = uri.rstrip("/") + "/"
        with _storage_errors("list", uri):
            if is_s3(uri):  # (s3fs's isdir would take a missing bucket for an empty folder)
                found = [p for p in fs.find(prefix) if f"s3://{p}".startswith(prefix)]
            else:
                found = fs.find(prefix) if fs.isdir(uri) else []
        for path in sorted(found):
            yield f"s3://{path}" if is_s3(uri) else path

    def delete(self, uri: str) -> None:
        """Remove one object; absent is fine."""
        if not is_s3(uri):
            Path(uri).unlink(missing_ok=True)
            return
        try:
            with _storage_errors("delete", uri):
                self.fs(uri).rm_file(uri)
        except ObjectMissing:
            pass

    def delete_tree(self, uri: str) -> None:
        """Remove a folder and everything below it; absent is fine."""
        if not is_s3(uri):
            shutil.rmtree(uri, ignore_errors=True)
            return
        files = list(self.walk_files(uri))
        if files:
            with _storage_errors("delete", uri):
                self.fs(uri).rm(files)

    def is_committed(self, folder_uri: str) -> bool:
        """True when a published folder carries its ``_SUCCESS`` commit marker."""
        return self.exists(join(folder_uri, SUCCESS))

    def is_folder(self, uri: str) -> bool:
        """True when a folder (an S3 prefix) holds at least one file."""
        if is_s3(uri):
            return next(iter(self.walk_files(uri)), None) is not None
        return Path(uri).is_dir()

    def stage_uri(self, final_uri: str) -> str:
        """A fresh hidden place beside ``final_uri`` to stage it in, in the data root: a local
        folder (created) or an S3 prefix; :meth:`clean_staging` removes what a killed run left."""
        if not is_s3(final_uri):
            return str(self.staging_dir(final_uri))
        parent, _, name = final_uri.rstrip("/").rpartition("/")
        return f"{parent}/.{name}.stage-{uuid.uuid4().hex}"

    def upload_folder(self, local_dir: str | Path, uri: str) -> str:
        """Every file of a local folder under ``uri`` (an S3 prefix), then the folder removed."""
        local_dir = Path(local_dir)
        for p in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            self.upload_file(p, join(uri, p.relative_to(local_dir).as_posix()))
        shutil.rmtree(local_dir, ignore_errors=True)
        return uri

    def local_folder(self, uri: str, scratch: str | Path) -> Path:
        """A folder's files on this machine: the folder itself when local, else a copy of the
        S3 prefix under ``scratch``."""
        if not is_s3(uri):
            return Path(uri)
        dest = Path(scratch) / uuid.uuid4().hex
        prefix = uri.rstrip("/") + "/"
        for file_uri in self.walk_files(uri):
            self.download(file_uri, dest / file_uri[len(prefix):])
        return dest

    def publish_folder(self, local_dir: str | Path, final_uri: str) -> str:
        """Publish a finished folder as ``final_uri`` atomically, replacing what was there.

        Locally: rename into place (the old partition is moved aside first, then removed).
        On S3: drop the old marker, upload (or, from a staged S3 prefix, copy) every file, write
        the ``_SUCCESS`` marker last. A ``_SUCCESS`` file is always written so readers can tell a
        committed folder. Either way the staged folder is consumed: moved into place, or
        removed once copied.
        """
        if is_s3(str(local_dir)):
            return self._publish_s3_prefix(str(local_dir), final_uri)
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise StorageError(f"cannot publish {local_dir}: not a folder")
        marker = local_dir / SUCCESS
        if not marker.exists():
            marker.write_text("")
        if is_s3(final_uri):
            self.delete(join(final_uri, SUCCESS))
            self.delete_tree(final_uri)
            files = sorted(p for p in local_dir.rglob("*") if p.is_file() and p.name != SUCCESS)
            for p in files:
                self.upload_file(p, join(final_uri, p.relative_to(local_dir).as_posix()))
            self.upload_file(marker, join(final_uri, SUCCESS))
            shutil.rmtree(local_dir, ignore_errors=True)
            return final_uri
        final = Path(final_uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged = final.parent / f".{final.name}.staged-{uuid.uuid4().hex}"
        shutil.move(str(local_dir), staged)  # same filesystem when local_dir is a staging dir
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex}"
        if final.exists():
            os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
        return final_uri

    def _publish_s3_prefix(self, stage: str, final_uri: str) -> str:
        if not is_s3(final_uri):
            raise StorageError(f"cannot publish {stage} to {final_uri}: both must be on S3")
        files = list(self.walk_files(stage))
        if not files:
            raise StorageError(f"cannot publish {stage}: nothing staged there", uri=stage)
        self.delete(join(final_uri, SUCCESS))
        self.delete_tree(final_uri)
        prefix = stage.rstrip("/") + "/"
        fs = self.fs(final_uri)
        for file_uri in files:
            rel = file_uri[len(prefix):]
            if rel == SUCCESS:
                continue
            with _storage_errors("copy", file_uri):
                fs.cp_file(file_uri, join(final_uri, rel))  # one server-side copy
        self.write_bytes(join(final_uri, SUCCESS), b"")
        self.delete_tree(stage)
        return final_uri

    def clean_staging(self, final_uri: str) -> None:
        """Remove hidden staging/old folders a killed run left beside ``final_uri``."""
        if is_s3(final_uri):
            parent, _, name = final_uri.rstrip("/").rpartition("/")
            for entry in self.list(parent):
                if entry.startswith(f".{name}."):
                    self.delete_tree(join(parent, entry))
            return
        final = Path(final_uri)
        if final.parent.is_dir():
            for p in final.parent.glob(f".{final.name}.*"):
                shutil.rmtree(p, ignore_errors=True)

    def staging_dir(self, final_uri: str) -> Path:
        """A fresh local folder to assemble ``final_uri`` in (beside it when local)."""
        if is_s3(final_uri):
            import tempfile

            return Path(tempfile.mkdtemp(prefix="flightline-stage-"))
        final = Path(final_uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        path = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
        path.mkdir()
        return path
