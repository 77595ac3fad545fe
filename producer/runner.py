"""One producer run: pace lines at the configured rate, batch them, land them, write the manifest.

Pacing follows a schedule, not a sleep per batch: line ``k`` (from 0) is received at
``start + (k + 1) / rate`` on the run's clock and carries that ``ingest_time``. The loop sleeps until
a batch is due (full, or ``batch_interval_seconds`` after the last flush), then makes every line
due by then. A slow PUT or an oversleeping clock is therefore caught up, never accumulated as drift,
and with a simulated clock the content depends only on the seed and the parameters.

The next batch is built while the previous one uploads (one upload at a time, in order), so a
later object never lands before an earlier one.
"""

from __future__ import annotations

import gzip
import logging
import math
import random
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from producer.clock import Clock, RealClock, SimulatedClock, format_timestamp, key_timestamp
from producer.config import DEFAULT_MANIFEST_DIR, ProducerConfig, parse_start_time
from producer.manifest import GroundTruth, Manifest, build_manifest, write_local
from producer.progress import Progress
from producer.stream import Line, LineStream
from producer.traffic import TrafficModel, random_uuid
from producer.writer import BatchNotDelivered, BatchWriter, DeliveryStats, make_s3_client, object_key

log = logging.getLogger(__name__)

_TEXT = attrgetter("text")

# Sleeps on a real clock are cut into slices this long so the progress line stays live.
_REALTIME_SLEEP_SLICE_SECONDS = 0.5
# A line due within this much clock time counts as due: float error on epoch seconds is ~0.2 µs.
_SCHEDULE_TOLERANCE_SECONDS = 1e-6


class ProducerError(RuntimeError):
    """A run could not deliver everything; the manifest it wrote says what did land."""

    def __init__(self, message: str, manifest: Manifest | None = None) -> None:
        super().__init__(message)
        self.manifest = manifest


def _undelivered(error: BatchNotDelivered) -> dict[str, str]:
    return {"key": error.key, "spill_path": str(error.spill_path or ""), "error": str(error.cause)}


class _Batch:
    __slots__ = ("seq", "key", "lines", "body", "content_type")

    def __init__(self, seq: int, key: str, lines: list[Line], body: bytes, content_type: str) -> None:
        self.seq = seq
        self.key = key
        self.lines = lines
        self.body = body
        self.content_type = content_type


@contextmanager
def _graceful_interrupt(stop_event: threading.Event) -> Iterator[None]:
    """First Ctrl+C asks the run to stop (flush, then write the manifest); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop_event.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        log.warning("stop requested: flushing the current batch and writing the manifest (Ctrl+C again to abort)")
        stop_event.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(
    config: ProducerConfig,
    *,
    s3_client: Any = None,
    clock: Clock | None = None,
    stop_event: threading.Event | None = None,
) -> Manifest:
    """Produce clickstream lines into ``s3://bucket/prefix`` as ``config`` says; return the manifest.

    ``s3_client`` defaults to one built from the config (default credential chain, retry mode).
    ``clock`` defaults to the real clock for ``start_time="now"`` and a simulated clock otherwise.
    Setting ``stop_event`` ends the run like Ctrl+C: the due lines are flushed and the manifest
    written. Raises :class:`ProducerError` (after writing the manifest) if a batch cannot land.
    """
    config.check()
    stop_event = stop_event or threading.Event()
    fixed_start = parse_start_time(config.start_time)
    if clock is None:
        clock = RealClock(stop_event) if fixed_start is None else SimulatedClock(fixed_start.timestamp())
    client = s3_client or make_s3_client(
        config.endpoint_url, config.region, max_attempts=config.max_attempts, retry_mode=config.retry_mode
    )
    with _graceful_interrupt(stop_event):
        return _Run(config, client, clock, stop_event).execute()


class _Run:
    def __init__(self, config: ProducerConfig, client: Any, clock: Clock, stop_event: threading.Event) -> None:
        self.config = config
        self.client = client
        self.clock = clock
        self.stop_event = stop_event
        self.realtime = bool(getattr(clock, "realtime", False))
        # Milliseconds: the precision of every timestamp the run writes.
        self.start = round(clock.time(), 3)
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**63)
        # The resolved parameters reproduce this run's content exactly, even for a live run.
        self.resolved = replace(config, seed=seed, start_time=format_timestamp(self.start))
        fingerprint = self.resolved.content_fingerprint()
        self.run_id = f"{key_timestamp(self.start)}-{fingerprint[:12]}"
        content_seed = f"{seed}:{fingerprint}"
        self.key_rng = random.Random(content_seed + ":keys")
        traffic_rng = random.Random(content_seed + ":traffic")
        traffic = TrafficModel(
            traffic_rng,
            users=config.users,
            rate=config.rate,
            click_probability=config.click_probability,
            add_to_cart_probability=config.add_to_cart_probability,
            purchase_probability=config.purchase_probability,
        )
        self.stream = LineStream(
            traffic_rng,
            traffic,
            dup_rate=config.dup_rate,
            synthetic_dup_rate=config.synthetic_dup_rate,
            late_rate=config.late_rate,
            malformed_rate=config.malformed_rate,
            invalid_rate=config.invalid_rate,
        )
        self.manifest_path = Path(config.manifest_path or Path(DEFAULT_MANIFEST_DIR) / f"{self.run_id}.json")
        self.truth = GroundTruth(
            self.manifest_path.parent / f"{self.run_id}.truth.jsonl.gz",
            self.manifest_path.parent / f"{self.run_id}.faults.jsonl.gz",
        )
        self.stats = DeliveryStats()
        self.writer = BatchWriter(
            client,
            config.bucket,
            batch_retries=config.batch_retries,
            backoff_seconds=config.batch_retry_backoff_seconds,
            spill_dir=self.manifest_path.parent / "unsent" / self.run_id,
            stats=self.stats,
        )
        self.progress = Progress(interactive=config.progress)
        total = math.inf if config.events is None else config.events
        if config.duration_seconds is not None:
            # The tolerance absorbs float error such as 0.29 * 100 == 28.999999999999996.
            total = min(total, math.floor(config.rate * config.duration_seconds + 1e-6))
        self.total = total
        self.emitted = 0
        self.seq = 0
        self.last_key_time = 0.0
        self.undelivered: list[dict[str, Any]] = []

    # -- schedule ------------------------------------------------------------------------------

    def _due(self, now: float) -> int:
        """How many lines are due by clock time ``now``."""
        due = math.floor((now - self.start + _SCHEDULE_TOLERANCE_SECONDS) * self.config.rate)
        return int(min(self.total, max(0, due)))

    def _sleep_until(self, when: float) -> None:
        while not self.stop_event.is_set():
            remaining = when - self.clock.time()
            if remaining <= 0:
                return
            self.clock.sleep(min(remaining, _REALTIME_SLEEP_SLICE_SECONDS) if self.realtime else remaining)
            self._report()

    # -- batches -------------------------------------------------------------------------------

    def _build(self, count: int, flushed_at: float) -> _Batch:
        rate, start, first = self.config.rate, self.start, self.emitted
        next_line = self.stream.next_line
        lines = [next_line(start + (k + 1) / rate) for k in range(first, first + count)]
        body = ("\n".join(map(_TEXT, lines)) + "\n").encode()
        if self.config.gzip:
            # mtime=0: the same lines always give the same bytes.
            body = gzip.compress(body, compresslevel=5, mtime=0)
        # Keys sort in landing order even when batches are flushed within the same millisecond.
        self.last_key_time = max(round(flushed_at, 3), self.last_key_time + 0.001)
        key = object_key(self.config.prefix, self.last_key_time, random_uuid(self.key_rng), gzip=self.config.gzip)
        content_type = "application/gzip" if self.config.gzip else "application/x-ndjson"
        self.seq += 1
        return _Batch(self.seq, key, lines, body, content_type)

    def _upload(self, batch: _Batch) -> _Batch:
        metadata = {"run-id": self.run_id, "batch": str(batch.seq), "lines": str(len(batch.lines))}
        self.writer.put(batch.key, batch.body, content_type=batch.content_type, metadata=metadata)
        # Here, on the upload thread and only once the object landed: gzip releases the GIL, so
        # compressing the truth file overlaps with building the next batch.
        self.truth.write_truth(batch.key, batch.lines)
        return batch

    def _landed(self, future: Future[_Batch]) -> None:
        batch = future.result()
        self.truth.record_object(batch.key, batch.lines, len(batch.body))
        log.debug("landed s3://%s/%s (%d lines)", self.config.bucket, batch.key, len(batch.lines))
        self._report()

    def _report(self, force: bool = False) -> None:
        s = self.stats
        self.progress.update(
            lines=self.truth.lines_sent,
            batches=len(self.truth.objects),
            retries=s.put_retries + s.batch_retries,
            errors=s.put_errors,
            force=force,
        )

    # -- the run -------------------------------------------------------------------------------

    def execute(self) -> Manifest:
        config = self.config
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        log.info(
            "run %s: %s events/s into s3://%s/%s (%s clock from %s, seed %s)",
            self.run_id,
            config.rate,
            config.bucket,
            config.prefix,
            "real" if self.realtime else "simulated",
            format_timestamp(self.start),
            self.resolved.seed,
        )
        status = "complete"
        failure: BaseException | None = None
        pending: Future[_Batch] | None = None
        uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="producer-upload")
        try:
            last_flush = self.start
            while self.emitted < self.total:
                if not self.stop_event.is_set():
                    target = min(self.emitted + config.batch_size, self.total)
                    self._sleep_until(
                        min(self.start + target / config.rate, last_flush + config.batch_interval_seconds)
                    )
                now = self.clock.time()
                due = self._due(now)
                if self.stop_event.is_set():
                    # Stopping: flush what is due by now (the current batch), nothing more.
                    self.total = min(self.total, due)
                count = min(config.batch_size, due - self.emitted)
                if count <= 0:
                    # The batch interval passed with nothing due (a low rate): wait another interval.
                    last_flush = now
                    continue
                batch = self._build(count, now)
                self.emitted += count
                last_flush = now
                if pending is not None:
                    previous, pending = pending, None
                    self._landed(previous)
                pending = uploader.submit(self._upload, batch)
            if pending is not None:
                previous, pending = pending, None
                self._landed(previous)
            if self.stop_event.is_set():
                status = "interrupted"
        except BatchNotDelivered as error:
            status, failure = "failed", error
            self.undelivered.append(_undelivered(error))
        except BaseException as error:
            # Anything else (a second Ctrl+C, a bug) still gets a manifest of what landed.
            status, failure = ("aborted" if isinstance(error, KeyboardInterrupt) else "failed"), error
        finally:
            uploader.shutdown(wait=True)
            if pending is not None:
                # The upload in flight when the run stopped may still have landed: count it if so.
                try:
                    self._landed(pending)
                except BatchNotDelivered as error:
                    self.undelivered.append(_undelivered(error))
            manifest = self._finish(created_at, status)
        if isinstance(failure, BatchNotDelivered):
            raise ProducerError(
                f"run {self.run_id} stopped: {failure}; manifest at {manifest.local_path}", manifest
            ) from failure
        if failure is not None:
            raise failure
        return manifest

    def _finish(self, created_at: str, status: str) -> Manifest:
        s = self.stats
        self.progress.close(
            lines=self.truth.lines_sent,
            batches=len(self.truth.objects),
            retries=s.put_retries + s.batch_retries,
            errors=s.put_errors,
        )
        self.truth.close()
        manifest = build_manifest(
            run_id=self.run_id,
            created_at=created_at,
            parameters=self.resolved.parameters(),
            bucket=self.config.bucket,
            prefix=self.config.prefix,
            truth=self.truth,
            local_path=self.manifest_path,
        )
        manifest.status = status
        manifest.finished_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        manifest.stats = {
            **s.as_dict(),
            "clock": "real" if self.realtime else "simulated",
            "first_ingest_time": format_timestamp(self.start),
            "sessions_started": self.stream.traffic.sessions_started,
        }
        manifest.undelivered = self.undelivered
        prefix = self.config.manifests_prefix
        manifest_key = f"{prefix}/{self.run_id}.json"
        manifest.manifest_uri = f"s3://{self.config.bucket}/{manifest_key}"
        write_local(manifest)
        log.info("manifest written to %s", manifest.local_path)
        try:
            for name, path in (
                (manifest.truth_file, self.truth.truth_path),
                (manifest.faults_file, self.truth.faults_path),
            ):
                self.writer.put(f"{prefix}/{name}", path.read_bytes(), content_type="application/gzip")
            self.writer.put(manifest_key, manifest.to_json().encode(), content_type="application/json")
            log.info("manifest uploaded to %s", manifest.manifest_uri)
        except BatchNotDelivered as error:
            log.error("manifest kept only locally at %s: %s", manifest.local_path, error)
            if status == "complete":
                raise ProducerError(
                    f"run {self.run_id} landed every batch but its manifest upload failed: {error}", manifest
                ) from error
        return manifest
