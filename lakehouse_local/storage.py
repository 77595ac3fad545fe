"""File storage access for the local runtime: list, read and write objects on S3 or a local disk.

One vocabulary for both: a *URI* is ``s3://bucket/key`` (also ``s3a://``, ``s3n://``), ``file:///abs/path``
or a plain local path. S3 goes through boto3, which honours ``AWS_ENDPOINT_URL`` (the embedded
endpoint locally, nothing on AWS). Listing follows Spark's file sources: recursive, and names that
start with ``_`` or ``.`` (hidden, e.g. ``_delta_log``, ``.tmp``) are skipped at every level below
the listed root.

A listing can start after a key (``start_after``, a path relative to the listed location): only
files whose relative key sorts after it are returned. Keys are ordered as S3 orders them, by code
point of the whole relative path (``/`` included), on S3 (``ListObjectsV2``'s ``StartAfter``) and on
a local disk alike, where folders whose every key sorts before it are not read at all.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, unquote, urlparse

log = logging.getLogger(__name__)

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One listed file. ``path`` is a full URI: ``s3://bucket/key`` or ``file:///abs/path``."""

    path: str
    size: int
    modification_time_ms: int

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEMES)


def split_s3(uri: str) -> tuple[str, str, str]:
    """``s3://bucket/a/b`` → (``s3://``, ``bucket``, ``a/b``)."""
    scheme, rest = uri.split("://", 1)
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} names no bucket; expected s3://bucket/prefix")
    return scheme + "://", bucket, key


def local_path(uri: str | os.PathLike[str]) -> Path:
    """The absolute filesystem path of a local URI (``file:///x``, ``file:/x``) or a plain path.

    The one URI-to-path conversion of the local runtime: the sources and delta-rs's table paths
    (:func:`lakehouse_local.delta_rs.table_path`) go through it. Other schemes are not checked here;
    callers decide first whether a URI is local (:func:`is_s3`).
    """
    text = os.fspath(uri)
    parsed = urlparse(text)
    if parsed.scheme == "file":
        text = unquote(parsed.path)
    return Path(text).expanduser().absolute()


def local_uri(path: str | Path) -> str:
    return Path(path).absolute().as_uri()


def normalize(uri: str) -> str:
    """The canonical URI of a location: S3 URIs unchanged, local paths as ``file:///abs/path``."""
    if is_s3(uri):
        return uri
    return local_uri(local_path(uri))


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def is_hidden(name: str) -> bool:
    """Spark's rule for names its file sources ignore (``_col=1`` partition folders are kept)."""
    return (name.startswith("_") and "=" not in name) or name.startswith(".") or name.endswith("._COPYING_")


_client_lock = threading.Lock()
_client: tuple[int, Any] | None = None


def s3_client():
    """The boto3 S3 client of this process (clients are thread-safe; a forked worker makes its own)."""
    global _client
    current = _client
    if current is None or current[0] != os.getpid():
        with _client_lock:
            current = _client
            if current is None or current[0] != os.getpid():
                import boto3
                from botocore.config import Config

                config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=32)
                current = (os.getpid(), boto3.session.Session().client("s3", config=config))
                _client = current
    return current[1]


def list_files(uri: str, *, skip_hidden: bool = True, start_after: str | None = None) -> list[FileInfo]:
    """Every file under ``uri`` (recursively), or ``uri`` itself when it names a file.

    A location that does not exist yet lists as empty: a landing prefix may be created by the
    first file written to it. With ``start_after`` (a key relative to ``uri``, see
    :func:`relative_key`), only files whose key sorts after it.
    """
    if is_s3(uri):
        return _list_s3(uri, skip_hidden=skip_hidden, start_after=start_after)
    return _list_local(local_path(uri), skip_hidden=skip_hidden, start_after=start_after)


def relative_key(root: str, path: str) -> str:
    """The key of ``path`` (a listed file's URI) relative to the listed location ``root``.

    The order of these keys is the order listings follow (:func:`list_files`'s ``start_after``).
    Local URIs are percent-encoded, keys are not; a root that names the file itself gives ``""``.
    """
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        return ""
    rest = path[len(prefix) :]
    return rest if is_s3(root) else unquote(rest)


def _list_s3(uri: str, *, skip_hidden: bool, start_after: str | None) -> list[FileInfo]:
    scheme, bucket, key = split_s3(uri)
    client = s3_client()
    prefix = key.rstrip("/") + "/" if key.strip("/") else ""
    found: list[FileInfo] = []
    paginator = client.get_paginator("list_objects_v2")
    # One request per 1,000 keys; after a key, only the keys that sort after it are paid for.
    extra = {"StartAfter": prefix + start_after} if start_after else {}
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **extra):
        for obj in page.get("Contents", ()):
            object_key = obj["Key"]
            if object_key.endswith("/"):
                continue  # a console-made "folder" marker, not a file
            relative = object_key[len(prefix) :]
            if skip_hidden and any(is_hidden(part) for part in relative.split("/")):
                continue
            found.append(
                FileInfo(
                    path=f"{scheme}{bucket}/{object_key}",
                    size=int(obj["Size"]),
                    modification_time_ms=int(obj["LastModified"].timestamp() * 1000),
                )
            )
    if not found and key and not key.endswith("/") and start_after is None:
        # The URI may name one object rather than a prefix (a listing after a key already found it).
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError:
            return []
        return [FileInfo(uri, int(head["ContentLength"]), int(head["LastModified"].timestamp() * 1000))]
    return found


def _list_local(root: Path, *, skip_hidden: bool, start_after: str | None) -> list[FileInfo]:
    if root.is_file():
        stat = root.stat()
        return [FileInfo(local_uri(root), stat.st_size, stat.st_mtime_ns // 1_000_000)]
    if not root.is_dir():
        return []
    found: list[FileInfo] = []
    _walk_local(str(root), "", found, skip_hidden=skip_hidden, start_after=start_after)
    return found


def _walk_local(directory: str, prefix: str, found: list[FileInfo], *, skip_hidden: bool, start_after: str | None) -> None:
    """Files first, then sub-folders, names in order (as ``os.walk`` with sorted names, links not followed).

    After a key, a file is stat'ed only when its key sorts after it, and a folder is read only when
    some key in it can (its ``<folder>/`` sorts after the key, or the key lies inside it).
    """
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return  # removed while listing
    folders: list[tuple[str, str]] = []
    folder_uri = Path(directory).as_uri().rstrip("/") + "/"  # a file's URI is this + its quoted name
    for entry in entries:
        name = entry.name
        if skip_hidden and is_hidden(name):
            continue
        key = prefix + name
        if entry.is_dir():
            inner = key + "/"
            if entry.is_symlink() or (start_after is not None and inner < start_after and not start_after.startswith(inner)):
                continue
            folders.append((entry.path, inner))
            continue
        if start_after is not None and key <= start_after:
            continue
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue  # removed between listing and stat
        uri = folder_uri + quote_from_bytes(os.fsencode(name))  # Path(entry.path).as_uri(), one name quoted
        found.append(FileInfo(uri, stat.st_size, stat.st_mtime_ns // 1_000_000))
    for path, inner in folders:
        _walk_local(path, inner, found, skip_hidden=skip_hidden, start_after=start_after)
# A GET whose body breaks off mid-stream is fetched again: botocore retries only until the response
# headers arrive; the body is read after that, here.
READ_ATTEMPTS = 5


def read_bytes(uri: str) -> bytes:
    """The whole content of one file; ``FileNotFoundError`` when it does not exist (any more).

    An S3 body that breaks off (connection reset, fewer bytes than announced, a read timeout) is fetched
    again, a few times with backoff; the error that remains names the object.
    """
    if not is_s3(uri):
        return local_path(uri).read_bytes()
    from botocore.exceptions import ClientError

    _, bucket, key = split_s3(uri)
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            response = s3_client().get_object(Bucket=bucket, Key=key)
            body = response["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(uri) from None
            raise RuntimeError(f"reading {uri}: {error}") from error
        except _TRANSIENT as error:
            if attempt == READ_ATTEMPTS:
                raise RuntimeError(
                    f"reading {uri}: the body broke off {READ_ATTEMPTS} times ({error.__class__.__name__}: {error}); "
                    "check the network or the S3 endpoint, then run the stream again: it resumes with this file."
                ) from error
            log.info("reading %s: %s; fetching it again (attempt %d)", uri, error, attempt + 1)
            time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random()))
            continue
        expected = response.get("ContentLength")
        if expected is not None and len(body) != expected:
            if attempt == READ_ATTEMPTS:
                raise RuntimeError(f"reading {uri}: got {len(body)} of {expected} bytes, {READ_ATTEMPTS} times")
            continue
        return body
    raise AssertionError("unreachable")


def _transient_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError, ResponseStreamingError
    from urllib3.exceptions import ProtocolError

    return (ResponseStreamingError, BotoConnectionError, ReadTimeoutError, ProtocolError, ConnectionError)


_TRANSIENT = _transient_errors()


def write_bytes(uri: str, data: bytes, *, exclusive: bool = False) -> None:
    """Write a whole file atomically: readers see the old state or the new one, never a partial file.

    S3 PUTs are atomic by themselves; locally the data goes to a hidden temporary file in the same
    folder, is flushed to disk, then renamed over the target. With ``exclusive`` the write fails with
    ``FileExistsError`` when the file already exists (a conditional PUT on S3, a hard link locally),
    so two writers can never both believe they wrote the same file.
    """
    if is_s3(uri):
        _, bucket, key = split_s3(uri)
        client = s3_client()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, **({"IfNoneMatch": "*"} if exclusive else {}))
        except client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise FileExistsError(uri) from error
            raise
        return
    target = local_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(temporary, target)  # raises FileExistsError when the target exists
        else:
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def delete(uris: Iterable[str]) -> None:
    """Delete files; a file already gone is not an error."""
    by_bucket: dict[str, list[str]] = {}
    for uri in uris:
        if is_s3(uri):
            _, bucket, key = split_s3(uri)
            by_bucket.setdefault(bucket, []).append(key)
        else:
            local_path(uri).unlink(missing_ok=True)
    for bucket, keys in by_bucket.items():
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
