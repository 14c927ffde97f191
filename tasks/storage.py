"""URI-based storage for the data root: a local folder or ``s3://bucket/prefix`` through boto3.

Every write is atomic for readers:
- a single object is written to a temporary name and renamed (local) or PUT whole (S3, where
  an object only becomes visible once its upload completes);
- a folder of files (a partition) is assembled under a hidden name beside its place (a hidden
  folder locally, a hidden prefix on S3: :meth:`Store.stage_uri`) and then published: by
  ``os.replace`` locally, and on S3 by copying into place and writing a ``_SUCCESS`` commit marker
  last. Readers of partitions only trust folders with a ``_SUCCESS`` marker.

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
from functools import lru_cache
from pathlib import Path

from tasks.settings import Settings

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


_MISSING_CODES = ("404", "NoSuchKey", "NotFound")


@contextmanager
def _storage_errors(action: str, uri: str) -> Iterator[None]:
    """Turn boto and OS errors of one operation on ``uri`` into named storage errors."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING_CODES:
            raise ObjectMissing(f"no such object: {uri} (S3 {code})", uri=uri, code=code) from exc
        raise StorageError(
            f"cannot {action} {uri}: S3 answered {code or 'an error'} (HTTP {status}): "
            f"{err.get('Message') or exc}. This is a storage error, not missing or bad data; it "
            "may be transient (throttling, network), or access or configuration is wrong",
            uri=uri, code=code,
        ) from exc
    except BotoCoreError as exc:  # connection reset or refused, read timeout, cut-off body
        code = type(exc).__name__
        raise StorageError(
            f"cannot {action} {uri}: {code}: {exc}. This is a storage error, not missing or bad "
            "data; it may be transient",
            uri=uri, code=code,
        ) from exc
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        what = "a folder, not a file" if isinstance(exc, IsADirectoryError) else "absent"
        raise ObjectMissing(f"no such object: {uri} ({what})", uri=uri, code="ENOENT") from None
    except OSError as exc:
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


@lru_cache(maxsize=8)
def _client(endpoint_url: str):
    import boto3

    kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return boto3.client("s3", **kwargs)


def s3_client(settings: Settings):
    return _client(settings.s3_endpoint_url)


class Store:
    """Read, write, list and publish under local paths or S3 URIs."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def s3(self):
        return s3_client(self.settings)

    # ---------------------------------------------------------------- objects
    def exists(self, uri: str) -> bool:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            try:
                with _storage_errors("check", uri):
                    self.s3.head_object(Bucket=bucket, Key=key)
                return True
            except ObjectMissing:
                return False
        return Path(uri).exists()

    def read_bytes(self, uri: str) -> bytes:
        """The object's bytes. :class:`ObjectMissing` when it does not exist; any other failure
        (denied, throttled, cut off) is a :class:`StorageError` to retry, never "missing"."""
        with _storage_errors("read", uri):
            if is_s3(uri):
                bucket, key = split_s3(uri)
                return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return Path(uri).read_bytes()

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def write_bytes(self, uri: str, data: bytes) -> str:
        """Write one object atomically: readers see the old content or the new, never a part."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self.s3.put_object(Bucket=bucket, Key=key, Body=data)
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
            bucket, key = split_s3(uri)
            self.s3.upload_file(str(local_path), bucket, key)
            return uri
        return self.write_bytes(uri, Path(local_path).read_bytes())

    def download(self, uri: str, local_path: str | Path) -> Path:
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        with _storage_errors("download", uri):
            if is_s3(uri):
                bucket, key = split_s3(uri)
                self.s3.download_file(bucket, key, str(local_path))
            else:
                shutil.copyfile(uri, local_path)
        return local_path

    # ---------------------------------------------------------------- folders
    def list(self, uri: str) -> list[str]:
        """Names directly under a folder URI (files and sub-folders), sorted; [] if absent."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            prefix = key.rstrip("/") + "/" if key else ""
            names: set[str] = set()
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                for cp in page.get("CommonPrefixes", []):
                    names.add(cp["Prefix"][len(prefix) :].rstrip("/"))
                for obj in page.get("Contents", []):
                    names.add(obj["Key"][len(prefix) :])
            return sorted(n for n in names if n)
        path = Path(uri)
        if not path.is_dir():
            return []
        return sorted(p.name for p in path.iterdir())

    def walk_files(self, uri: str) -> Iterator[str]:
        """Every file URI below a folder, recursively."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            prefix = key.rstrip("/") + "/"
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield f"s3://{bucket}/{obj['Key']}"
            return
        for p in sorted(Path(uri).rglob("*")):
            if p.is_file():
                yield str(p)

    def delete(self, uri: str) -> None:
        """Remove one object; absent is fine."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self.s3.delete_object(Bucket=bucket, Key=key)
        else:
            Path(uri).unlink(missing_ok=True)

    def delete_tree(self, uri: str) -> None:
        if is_s3(uri):
            bucket, _ = split_s3(uri)
            keys = [split_s3(u)[1] for u in self.walk_files(uri)]
            for i in range(0, len(keys), 1000):
                chunk = [{"Key": k} for k in keys[i : i + 1000]]
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk})
            return
        shutil.rmtree(uri, ignore_errors=True)

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
            old_marker = join(final_uri, SUCCESS)
            self.delete(old_marker)
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
        fb, _ = split_s3(final_uri)
        prefix = stage.rstrip("/") + "/"
        for file_uri in files:
            rel = file_uri[len(prefix):]
            if rel == SUCCESS:
                continue
            sb, sk = split_s3(file_uri)
            with _storage_errors("copy", file_uri):
                self.s3.copy_object(Bucket=fb, Key=split_s3(join(final_uri, rel))[1],
                                    CopySource={"Bucket": sb, "Key": sk})
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
