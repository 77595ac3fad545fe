"""Delivery to S3: the client, the landing key layout, and PUTs that never silently lose a batch.

Two layers of retries: botocore retries each PUT (``standard`` or ``adaptive`` mode, throttling
and 5xx included), and the producer retries the whole batch with exponential backoff when botocore
gives up. A retry reuses the batch's key, so a PUT that landed but whose answer was lost is
overwritten with the same bytes: one object per batch, never two. A batch that still cannot be
delivered is saved to a local spill file and reported, not dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from producer.clock import key_timestamp

log = logging.getLogger(__name__)

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
MAX_BATCH_BACKOFF_SECONDS = 30.0
# Client errors worth retrying; other 4xx (no bucket, access denied, bad request) will not heal.
_RETRYABLE_CLIENT_STATUS = {408, 429}


def make_s3_client(
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    max_attempts: int = 5,
    retry_mode: str = "standard",
) -> Any:
    """An S3 client from boto3's default credential chain.

    ``endpoint_url`` (or ``AWS_ENDPOINT_URL``) points at MinIO, LocalStack or the embedded endpoint;
    those get path-style addressing, which all of them accept.
    """
    endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
    options: dict[str, Any] = {
        "retries": {"total_max_attempts": max_attempts, "mode": retry_mode},
        "connect_timeout": 10,
        "read_timeout": 60,
    }
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=Config(**options))


def object_key(prefix: str, batch_time: float, token: str, *, gzip: bool) -> str:
    """``<prefix>/dt=YYYY-MM-DD/hr=HH/<utc-timestamp>-<token>.jsonl[.gz]`` for a batch flushed at ``batch_time``."""
    stamp = key_timestamp(batch_time)
    day = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}"
    suffix = ".jsonl.gz" if gzip else ".jsonl"
    return f"{prefix}/dt={day}/hr={stamp[9:11]}/{stamp}-{token}{suffix}"


@dataclass
class DeliveryStats:
    """What delivery cost so far; read by the progress line and written to the manifest."""

    puts: int = 0
    bytes: int = 0
    put_retries: int = 0
    put_errors: int = 0
    batch_retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "puts": self.puts,
            "bytes": self.bytes,
            "put_retries": self.put_retries,
            "put_errors": self.put_errors,
            "batch_retries": self.batch_retries,
        }


class BatchNotDelivered(RuntimeError):
    """A batch could not be written to S3; its bytes are in ``spill_path`` (if saving them worked)."""

    def __init__(self, key: str, cause: BaseException, spill_path: Path | None) -> None:
        where = f"; its lines are saved in {spill_path}" if spill_path else ""
        super().__init__(f"could not write s3 object {key}: {cause}{where}")
        self.key = key
        self.cause = cause
        self.spill_path = spill_path


def _retry_attempts(error: BaseException) -> int:
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
    return 0


def is_retryable(error: BaseException) -> bool:
    """Whether another try of the whole batch can succeed."""
    if isinstance(error, (NoCredentialsError, ParamValidationError)):
        return False
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return not (400 <= status < 500) or status in _RETRYABLE_CLIENT_STATUS
    return isinstance(error, (BotoCoreError, OSError))


def explain(error: BaseException, bucket: str) -> str:
    """A message that says what to do about a fatal S3 error."""
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found: configure them (aws configure, AWS_PROFILE or env) or pass --endpoint-url"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return f"bucket {bucket!r} does not exist: create it with `python -m producer setup-aws --bucket {bucket}`"
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return f"S3 refused the request ({code}): check the credentials and their rights on bucket {bucket!r}"
    return str(error)


class BatchWriter:
    """PUTs batch objects with both layers of retries; thread-safe for one caller at a time."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        batch_retries: int = 5,
        backoff_seconds: float = 1.0,
        spill_dir: Path | None = None,
        stats: DeliveryStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.batch_retries = batch_retries
        self.backoff_seconds = backoff_seconds
        self.spill_dir = spill_dir
        self.stats = stats or DeliveryStats()
        self._sleep = sleep

    def put(self, key: str, body: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> None:
        """Write one object; raise :class:`BatchNotDelivered` once every retry has failed."""
        stats = self.stats
        attempt = 0
        while True:
            try:
                response = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {}
                )
            except Exception as error:  # every failure is classified below; none is swallowed
                with stats._lock:
                    stats.put_errors += 1
                    stats.put_retries += _retry_attempts(error)
                if not is_retryable(error) or attempt >= self.batch_retries:
                    spill = self._spill(key, body)
                    log.error(
                        "giving up on s3://%s/%s after %d batch retries: %s",
                        self.bucket,
                        key,
                        attempt,
                        explain(error, self.bucket),
                    )
                    raise BatchNotDelivered(key, error, spill) from error
                attempt += 1
                delay = min(MAX_BATCH_BACKOFF_SECONDS, self.backoff_seconds * 2 ** (attempt - 1))
                with stats._lock:
                    stats.batch_retries += 1
                log.warning(
                    "PUT s3://%s/%s failed (%s); retrying the whole batch in %.2fs (retry %d of %d)",
                    self.bucket,
                    key,
                    error,
                    delay,
                    attempt,
                    self.batch_retries,
                )
                self._sleep(delay)
                continue
            with stats._lock:
                stats.puts += 1
                stats.bytes += len(body)
                stats.put_retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            return

    def _spill(self, key: str, body: bytes) -> Path | None:
        if self.spill_dir is None:
            return None
        try:
            path = self.spill_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            return path
        except OSError as exc:
            log.error("could not save undelivered batch %s locally: %s", key, exc)
            return None
