"""The producer's run configuration: every option, its default, and the checks that reject bad input.

One :class:`ProducerConfig` drives a run whether it comes from the CLI or from Python (the demo and
the pipeline tests build it directly). Fault rates are shares of the lines written, so they must
add up to at most 1.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

DEFAULT_PREFIX = "landing/clickstream"
DEFAULT_MANIFESTS_PREFIX = "manifests/clickstream"
DEFAULT_MANIFEST_DIR = os.path.join(".lakehouse", "manifests")
BUCKET_ENV = "LANDING_BUCKET"

FAULT_RATE_FIELDS = ("dup_rate", "synthetic_dup_rate", "late_rate", "malformed_rate", "invalid_rate")

# Options that only say where or how bytes are written; they do not change any event, so they are
# left out of the content fingerprint (the same run gzipped or not carries the same events).
_DELIVERY_FIELDS = frozenset(
    {
        "bucket",
        "prefix",
        "endpoint_url",
        "region",
        "gzip",
        "manifest_path",
        "manifests_prefix",
        "max_attempts",
        "retry_mode",
        "batch_retries",
        "batch_retry_backoff_seconds",
        "progress",
    }
)


class ConfigError(ValueError):
    """A producer option has a value the producer cannot run with."""


@dataclass
class ProducerConfig:
    """Everything one producer run needs. Rates are per second; fault rates are shares of lines.

    ``events`` and ``duration_seconds`` both bound the run (whichever comes first); with neither,
    a live run goes on until stopped. ``start_time`` is ``"now"`` (real clock, paced with sleeps)
    or an ISO-8601 UTC instant (simulated clock from there, no sleeping: a backfill).
    """

    bucket: str = ""
    prefix: str = DEFAULT_PREFIX
    endpoint_url: str | None = None
    region: str | None = None
    # Lines written per second of (real or simulated) clock time, faults included.
    rate: float = 100.0
    events: int | None = None
    duration_seconds: float | None = None
    batch_size: int = 1000
    # A batch is flushed when it holds batch_size lines or this much clock time has passed.
    batch_interval_seconds: float = 5.0
    gzip: bool = False
    seed: int | None = None
    start_time: str = "now"
    users: int = 5000
    # Funnel: P(click | view), P(add_to_cart | click), P(purchase | add_to_cart).
    click_probability: float = 0.45
    add_to_cart_probability: float = 0.30
    purchase_probability: float = 0.40
    dup_rate: float = 0.0
    synthetic_dup_rate: float = 0.0
    late_rate: float = 0.0
    malformed_rate: float = 0.0
    invalid_rate: float = 0.0
    manifest_path: str | None = None
    manifests_prefix: str = DEFAULT_MANIFESTS_PREFIX
    # botocore attempts per PUT (first try included), then the producer's own whole-batch retries.
    max_attempts: int = 5
    retry_mode: str = "standard"
    batch_retries: int = 5
    batch_retry_backoff_seconds: float = 1.0
    # None: a live progress line when stderr is a terminal, plain log lines otherwise.
    progress: bool | None = None

    def __post_init__(self) -> None:
        self.prefix = self.prefix.strip("/")
        self.manifests_prefix = self.manifests_prefix.strip("/")
        if not self.bucket:
            self.bucket = os.environ.get(BUCKET_ENV, "")

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first option that cannot work."""
        if not self.bucket:
            raise ConfigError(f"no landing bucket: pass --bucket (or bucket=...) or set {BUCKET_ENV}")
        if not self.prefix:
            raise ConfigError("--prefix must not be empty: the landing area needs its own prefix")
        if self.manifests_prefix == self.prefix or self.manifests_prefix.startswith(self.prefix + "/"):
            raise ConfigError(
                f"--manifests-prefix {self.manifests_prefix!r} is inside the landing prefix {self.prefix!r}; "
                "manifests must live outside it or the pipeline would ingest them"
            )
        if not self.rate > 0:
            raise ConfigError(f"--rate must be > 0 events/s, got {self.rate}")
        if self.events is not None and self.events < 0:
            raise ConfigError(f"--events must be >= 0, got {self.events}")
        if self.duration_seconds is not None and self.duration_seconds < 0:
            raise ConfigError(f"--duration must be >= 0 seconds, got {self.duration_seconds}")
        if self.start_time != "now" and self.events is None and self.duration_seconds is None:
            raise ConfigError("a fixed --start-time is a backfill: give --events or --duration so it ends")
        parse_start_time(self.start_time)
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not self.batch_interval_seconds > 0:
            raise ConfigError(f"--batch-interval must be > 0 seconds, got {self.batch_interval_seconds}")
        if self.users < 1:
            raise ConfigError(f"--users must be >= 1, got {self.users}")
        for name in ("click_probability", "add_to_cart_probability", "purchase_probability", *FAULT_RATE_FIELDS):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{option_name(name)} must be between 0 and 1, got {value}")
        total = sum(getattr(self, name) for name in FAULT_RATE_FIELDS)
        if total > 1.0:
            raise ConfigError(
                f"the fault rates add up to {total:.3f}; they are shares of the lines and must sum to <= 1"
            )
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts must be >= 1, got {self.max_attempts}")
        if self.retry_mode not in ("standard", "adaptive", "legacy"):
            raise ConfigError(f"--retry-mode must be standard, adaptive or legacy, got {self.retry_mode!r}")
        if self.batch_retries < 0:
            raise ConfigError(f"--batch-retries must be >= 0, got {self.batch_retries}")

    def parameters(self) -> dict[str, Any]:
        """Every option as recorded in the run manifest."""
        return asdict(self)

    def content_fingerprint(self) -> str:
        """Hex digest of the options that shape event content (seed and start time included)."""
        shaping = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _DELIVERY_FIELDS}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def option_name(field_name: str) -> str:
    """The CLI flag of a config field, for error messages."""
    flags = {
        "duration_seconds": "--duration",
        "batch_interval_seconds": "--batch-interval",
        "click_probability": "--p-click",
        "add_to_cart_probability": "--p-add-to-cart",
        "purchase_probability": "--p-purchase",
        "manifest_path": "--manifest",
        "batch_retry_backoff_seconds": "--batch-retry-backoff",
    }
    return flags.get(field_name, "--" + field_name.replace("_", "-"))


def parse_start_time(value: str) -> datetime | None:
    """``None`` for ``"now"``, else the instant as an aware UTC datetime (naive input is read as UTC)."""
    if value == "now":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(
            f"--start-time must be 'now' or an ISO-8601 UTC time like 2026-05-01T00:00:00Z, got {value!r}"
        ) from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if parsed.utcoffset() != UTC.utcoffset(None):
        raise ConfigError(f"--start-time must be in UTC (Z or +00:00), got {value!r}")
    return parsed.astimezone(UTC)
