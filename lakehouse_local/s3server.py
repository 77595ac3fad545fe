"""Embedded S3 endpoint for local runs and tests: moto's server mode on 127.0.0.1 and a free port.

boto3 reaches it over real HTTP, exactly as it would reach MinIO, LocalStack or AWS. Start it
*before* the local SparkSession so Spark's Python workers inherit ``AWS_ENDPOINT_URL``.

``ListObjectsV2`` without a delimiter is answered from a sorted index of each bucket's keys, kept
up to date as objects are put and deleted: moto copies and sorts every key of the bucket on every
request, so one page cost as much as the whole bucket and a full listing grew with its square. With
the index a page costs what it returns, as on S3; the answers are moto's (same keys, order, pages
and continuation tokens). Listings with a delimiter are moto's own.
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

# Dummy credentials: the embedded endpoint accepts any, and they keep boto3 from looking further.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedS3:
    """A running moto S3 server; ``endpoint_url`` is what boto3's ``endpoint_url`` wants."""

    def __init__(self, port: int | None = None) -> None:
        from moto.server import ThreadedMotoServer

        install_sorted_listing()
        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved_env: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, export_env: bool = True) -> EmbeddedS3:
        # One access-log line per request would drown the pipeline's own output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        log.info("embedded S3 endpoint listening on %s", self.endpoint_url)
        if export_env:
            env = dict(LOCAL_CREDENTIALS, AWS_ENDPOINT_URL=self.endpoint_url)
            for key, value in env.items():
                self._saved_env[key] = os.environ.get(key)
                os.environ[key] = value
        return self

    def stop(self) -> None:
        self._server.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        )


# -- ListObjectsV2 from a sorted index ----------------------------------------------------------------

_INDEX_ATTRIBUTE = "_lakehouse_sorted_keys"
_index_lock = threading.RLock()
_installed = False
moto_list_objects_v2: Any = None  # moto's own, kept to compare answers with


def install_sorted_listing() -> None:
    """Answer delimiter-less ``ListObjectsV2`` from per-bucket sorted key indexes (idempotent)."""
    global _installed
    with _index_lock:
        if _installed:
            return
        try:
            from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket, S3Backend
            from moto.s3.utils import _VersionedKeyStore
        except ImportError as error:  # another moto layout: its own (slower) listing still answers
            log.warning("embedded S3: moto's listing is used as is (%s)", error)
            _installed = True
            return
        global moto_list_objects_v2
        _track_key_store(_VersionedKeyStore)
        original = moto_list_objects_v2 = S3Backend.list_objects_v2

        def list_objects_v2(
            self: Any,
            bucket: Any,
            prefix: str | None,
            delimiter: str | None,
            continuation_token: str | None,
            start_after: str | None,
            max_keys: int,
        ) -> Any:
            if delimiter or isinstance(bucket, FakeTableStorageBucket):
                return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
            after = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
            store = bucket.keys
            page: list[Any] = []
            with _index_lock:
                names = _sorted_names(store)
                position = bisect.bisect_right(names, after) if after else 0
                if prefix:
                    position = max(position, bisect.bisect_left(names, prefix))
                # One key past the page, so moto's truncation sees there is more.
                while position < len(names) and len(page) <= max_keys:
                    name = names[position]
                    position += 1
                    if prefix and not name.startswith(prefix):
                        break
                    key = store.get(name)
                    if key is not None and not isinstance(key, FakeDeleteMarker):
                        page.append(key)
            return self._truncate_result(page, max_keys)

        S3Backend.list_objects_v2 = list_objects_v2
        _installed = True


def _sorted_names(store: Any) -> list[str]:
    names = store.__dict__.get(_INDEX_ATTRIBUTE)
    if names is None:
        names = sorted(dict.keys(store))
        store.__dict__[_INDEX_ATTRIBUTE] = names
    return names


def _track_key_store(store_class: type) -> None:
    """Keep each key store's index (built on its first listing) in step with its keys."""
    set_item, set_list, pop = store_class.__setitem__, store_class.setlist, store_class.pop

    def added(store: Any, name: str) -> None:
        names = store.__dict__.get(_INDEX_ATTRIBUTE)
        if names is not None:
            position = bisect.bisect_left(names, name)
            if position == len(names) or names[position] != name:
                names.insert(position, name)

    def tracked_set_item(store: Any, name: str, value: Any) -> Any:
        with _index_lock:
            result = set_item(store, name, value)
            added(store, name)
        return result

    def tracked_set_list(store: Any, name: str, values: Any) -> Any:
        with _index_lock:
            result = set_list(store, name, values)
            added(store, name)
        return result

    def tracked_pop(store: Any, name: str) -> Any:
        with _index_lock:
            result = pop(store, name)
            names = store.__dict__.get(_INDEX_ATTRIBUTE)
            if names is not None:
                position = bisect.bisect_left(names, name)
                if position < len(names) and names[position] == name:
                    del names[position]
        return result

    def forget_index(method: Any) -> Any:
        # Mutations moto does not make today: rebuild the index at the next listing.
        def forgetting(store: Any, *args: Any, **kwargs: Any) -> Any:
            with _index_lock:
                store.__dict__.pop(_INDEX_ATTRIBUTE, None)
                return method(store, *args, **kwargs)

        return forgetting

    store_class.__setitem__ = tracked_set_item
    store_class.setlist = tracked_set_list
    store_class.pop = tracked_pop
    for name in ("__delitem__", "clear", "update", "popitem", "setdefault"):
        setattr(store_class, name, forget_index(getattr(store_class, name)))
