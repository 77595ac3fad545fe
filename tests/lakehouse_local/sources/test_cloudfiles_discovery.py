"""``cloudFiles`` discovery that costs what is new: incremental listing, backfills, bounded state.

Most tests drive the stream reader the way Spark's planner does (``initialOffset``, ``latestOffset``,
``partitions``, ``commit``), one trigger at a time, with a clock they move; listings are counted by
wrapping the reader's listing function, S3 requests by a botocore event hook. Landed keys follow the
producer's layout, ``dt=YYYY-MM-DD/hr=HH/<utc>-<id>.jsonl``, with modification times in key order.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO_ROOT, RESOURCES

from lakehouse_local import storage
from lakehouse_local.sources.cloudfiles import (
    TEXT_SCHEMA,
    CloudFilesOptions,
    CloudFilesStreamReader,
    DiscoveryLog,
    OutputLayout,
    readers,
)
from lakehouse_local.sources.cloudfiles import listing as listing_module

START_S = 1_777_593_600  # 2026-05-01T00:00:00Z
HOUR_S = 3600
DAY_S = 24 * HOUR_S
BACKFILL_S = 2  # cloudFiles.backfillInterval of resources/streaming/cloudfiles_follow.py


def key(seconds: float, tag: str = "0") -> str:
    """The producer's key for an object flushed ``seconds`` after START_S."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(START_S + seconds))
    return f"dt={stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}/hr={stamp[9:11]}/{stamp}000Z-{tag}.jsonl"


class Landing:
    """A landing area on a local folder or in the embedded S3: put and delete objects by key."""

    def __init__(self, kind: str, tmp_path: Path, s3=None, bucket: str | None = None) -> None:
        self.kind, self.s3, self.bucket = kind, s3, bucket
        self.folder = tmp_path / "landing"
        self.uri = f"s3://{bucket}/landing" if kind == "s3" else storage.normalize(str(self.folder))

    def put(self, name: str, mtime_s: float | None = None) -> None:
        body = json.dumps({"key": name}).encode() + b"\n"
        if self.kind == "s3":
            self.s3.put_object(Bucket=self.bucket, Key=f"landing/{name}", Body=body)
            return
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        if mtime_s is not None:
            os.utime(path, (mtime_s, mtime_s))

    def land(self, seconds: float, tag: str = "0") -> str:
        """Land the producer's object for ``seconds``; modification time = key time (local folders)."""
        name = key(seconds, tag)
        self.put(name, START_S + seconds)
        return name

    def delete(self, name: str) -> None:
        if self.kind == "s3":
            self.s3.delete_object(Bucket=self.bucket, Key=f"landing/{name}")
        else:
            (self.folder / name).unlink()


@pytest.fixture(params=["local", "s3"])
def landing(request, tmp_path):
    if request.param == "local":
        return Landing("local", tmp_path)
    s3 = request.getfixturevalue("s3")
    return Landing("s3", tmp_path, s3, request.getfixturevalue("bucket"))


@pytest.fixture
def clock(monkeypatch):
    """The backfill clock (seconds), moved by the test: ``clock[0] += 3600``."""
    now = [float(START_S)]
    monkeypatch.setattr(listing_module.IncrementalListing, "clock", staticmethod(lambda: now[0]))
    return now


@pytest.fixture
def listings(monkeypatch):
    """Every listing the readers make: (``after``: None for a full listing, keys listed)."""
    made: list[tuple[str | None, list[str]]] = []
    real = readers.list_source_files

    def counted(options, **where):
        files = real(options, **where)
        made.append((where.get("after"), sorted(storage.relative_key(options.path, f.path) for f in files)))
        return files

    monkeypatch.setattr(readers, "list_source_files", counted)
    return made


@pytest.fixture
def list_requests(s3_endpoint):
    """S3 ListObjectsV2 requests sent by the runtime's client (made once the endpoint is known)."""
    sent: list[dict] = []
    events = storage.s3_client().meta.events
    handler = events.register("before-parameter-build.s3.ListObjectsV2", lambda params, **_: sent.append(params))
    yield sent
    events.unregister("before-parameter-build.s3.ListObjectsV2", handler)


class Stream:
    """One run of a stream's planner: triggers, each delivering the keys of one micro-batch."""

    def __init__(self, landing: Landing, schema_location: Path, *, offset: dict | None = None, **options: str) -> None:
        raw = {"cloudFiles.format": "text", "path": landing.uri, "cloudFiles.schemaLocation": str(schema_location)}
        parsed = CloudFilesOptions.from_options({**raw, **options})
        self.reader = CloudFilesStreamReader(parsed, OutputLayout.for_schema(TEXT_SCHEMA, parsed))
        self.root = parsed.path
        self.offset = offset or self.reader.initialOffset()

    def plan(self) -> tuple[dict, list[str]]:
        """The next micro-batch's end offset and keys, not committed (as a run killed before its commit)."""
        end = self.reader.latestOffset(self.offset, self.reader.getDefaultReadLimit())
        return end, self.keys(self.offset, end)

    def keys(self, start: dict, end: dict) -> list[str]:
        files = [path for partition in self.reader.partitions(start, end) for path, _, _ in partition.files]
        return sorted(storage.relative_key(self.root, path) for path in files)

    def trigger(self) -> list[str]:
        end, delivered = self.plan()
        self.reader.commit(end)
        self.offset = end
        return delivered

    @property
    def log(self) -> DiscoveryLog:
        return self.reader._discovery()


# --------------------------------------------------------------------------------------------------
# Incremental listing


def test_after_the_first_listing_a_trigger_lists_only_the_keys_after_the_last_one_seen(
    landing, tmp_path, clock, listings, list_requests
):
    landed = [landing.land(minute * 60) for minute in range(0, 180, 12)]  # 15 keys over 3 hours
    stream = Stream(landing, tmp_path / "schema")

    first = stream.trigger()
    requests_before = len(list_requests)
    nothing = stream.trigger()
    new = [landing.land(minute * 60) for minute in (181, 182)]
    two = stream.trigger()

    assert first == landed and nothing == [] and two == new
    assert listings == [(None, landed), (landed[-1], []), (landed[-1], new)]
    if landing.kind == "s3":
        assert [request.get("StartAfter") for request in list_requests[requests_before:]] == [
            f"landing/{landed[-1]}",
            f"landing/{landed[-1]}",
        ]


def test_keys_arriving_out_of_order_within_the_backfill_interval_are_ingested_exactly_once(
    landing, tmp_path, clock, listings
):
    options = {"cloudFiles.useIncrementalListing": "true", "cloudFiles.backfillInterval": "1 hour"}
    first, third = landing.land(60), landing.land(180)
    stream = Stream(landing, tmp_path / "schema", **options)
    delivered = [stream.trigger()]

    second = landing.land(120)  # lands late: its key sorts before the last one seen
    clock[0] += 600
    delivered.append(stream.trigger())
    fourth = landing.land(240)
    clock[0] += 600
    delivered.append(stream.trigger())
    clock[0] += 2500  # the backfill interval has passed since the first (full) listing
    delivered.append(stream.trigger())
    clock[0] += 60
    delivered.append(stream.trigger())
    clock[0] += 2 * HOUR_S  # another backfill: finds nothing it has not recorded
    delivered.append(stream.trigger())

    assert delivered == [[first, third], [], [fourth], [second], [], []]
    assert [after for after, _ in listings] == [None, third, third, None, fourth, None]
    assert sorted(k for batch in delivered for k in batch) == [first, second, third, fourth]
    assert stream.log.last_seq == 4  # recorded once each


def test_auto_lists_in_full_at_start_and_again_after_a_full_listing_found_a_key_out_of_order(
    landing, tmp_path, clock, listings
):
    a, c = landing.land(60), landing.land(180)
    stream = Stream(landing, tmp_path / "schema")  # useIncrementalListing: auto (the default)
    assert stream.trigger() == [a, c]
    assert stream.trigger() == []
    b = landing.land(120)  # late
    clock[0] += 3599
    assert stream.trigger() == []  # incremental: not found yet
    clock[0] += 1  # an hour since the last full listing: auto's backfill
    assert stream.trigger() == [b]
    d = landing.land(240)
    assert stream.trigger() == [d]  # full again, having just found a late key; this one found none
    assert stream.trigger() == []
    restarted = Stream(landing, tmp_path / "schema", offset=stream.offset)
    e = landing.land(150)  # landed while down, sorting before the last key seen
    assert restarted.trigger() == [e]  # a run starts with a full listing

    assert [after for after, _ in listings] == [None, c, c, None, None, d, None]


def test_listing_false_lists_everything_every_trigger(landing, tmp_path, clock, listings):
    a = landing.land(60)
    stream = Stream(landing, tmp_path / "schema", **{"cloudFiles.useIncrementalListing": "false"})
    stream.trigger()
    b = landing.land(30)
    assert stream.trigger() == [b]
    assert listings == [(None, [a]), (None, [b, a])]


# --------------------------------------------------------------------------------------------------
# Exactly once across restarts


def test_restart_after_a_kill_replays_the_planned_batch_and_keeps_exactly_once(landing, tmp_path, clock, listings):
    options = {"cloudFiles.useIncrementalListing": "true", "cloudFiles.backfillInterval": "1 hour"}
    first = [landing.land(n * 60) for n in range(3)]
    stream = Stream(landing, tmp_path / "schema", **options)
    assert stream.trigger() == first
    committed = stream.offset
    more = [landing.land(n * 60) for n in range(3, 6)]
    clock[0] += 60
    planned_end, planned = stream.plan()  # recorded in the log, then the process dies before its commit
    assert planned == more
    late = landing.land(150, "late")  # lands while the stream is down, before the last key seen
    newer = landing.land(600)

    clock[0] += 60
    restarted = Stream(landing, tmp_path / "schema", offset=committed, **options)
    replayed = restarted.keys(committed, planned_end)  # Spark replays the planned batch from its offset log
    restarted.reader.commit(planned_end)
    restarted.offset = planned_end
    after_restart = [restarted.trigger()]
    clock[0] += HOUR_S
    after_restart.append(restarted.trigger())

    assert replayed == more
    # The restart listed after the last key seen (no backfill due yet); the backfill then found the late key.
    assert after_restart == [[newer], [late]]
    assert [after for after, _ in listings][-2:] == [more[-1], None]
    everything = first + replayed + [k for batch in after_restart for k in batch]
    assert sorted(everything) == sorted([*first, *more, late, newer]) and len(set(everything)) == len(everything)


def test_killed_stream_restarted_delivers_every_line_exactly_once(tmp_path, request):
    """A real stream in a process of its own (incremental listing, a 2-second backfill), killed (SIGKILL)
    while the sink holds micro-batch 2 (its offset written, its commit not), with files landing in and out
    of key order around it; restarted from its checkpoint with ``availableNow`` in the tests' session."""
    work = tmp_path
    landing = Landing("local", tmp_path)
    landed = [landing.land(0), landing.land(10)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), SPARK_LOG_LEVEL="ERROR")
    command = [sys.executable, str(RESOURCES / "streaming" / "cloudfiles_follow.py"), str(work)]
    log = (work / "run.log").open("a")
    process = subprocess.Popen(
        command + ["follow"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        spark = request.getfixturevalue("spark")  # the tests' session starts while the stream's does
        deadline = time.monotonic() + 180
        while not (work / "held").exists():
            assert process.poll() is None, (work / "run.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the stream never reached batch 2"
            if 0 in _batches(work) and len(landed) == 2:
                landed += [landing.land(20), landing.land(30), landing.land(5, "late"), landing.land(40)]
            time.sleep(0.1)
        held = json.loads((work / "held").read_text())
        landed += [landing.land(50), landing.land(7, "late")]  # while batch 2 is held
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    log.close()
    landed += [landing.land(900), landing.land(8, "late")]  # while the stream is down
    # The drain's one listing must be a backfill (with "true", a run starts where the last one ended):
    # start it once the backfill interval has passed since the killed run's last full listing.
    time.sleep(BACKFILL_S + 0.5)
    follow = runpy.run_path(str(RESOURCES / "streaming" / "cloudfiles_follow.py"))
    follow["run"](spark, work, "drain")

    batches = _batches(work)
    delivered = [line for batch_id in sorted(batches) for line in batches[batch_id]]
    assert sorted(delivered) == sorted(json.dumps({"key": name}) for name in landed)  # each line exactly once
    assert held and batches[2] == held  # the restart replayed the held batch with the same files
    assert sorted(batches) == list(range(len(batches))) and len(batches) >= 5


def _batches(work: Path) -> dict[int, list[str]]:
    """The sink's output: one JSON file per batch id (a replayed batch rewrites its own)."""
    folder = work / "batches"
    if not folder.exists():
        return {}
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json")}


# --------------------------------------------------------------------------------------------------
# State that stays small


def test_a_file_deleted_by_expiry_leaves_the_state_and_is_not_reported_missing(landing, tmp_path, clock, caplog):
    options = {"cloudFiles.useIncrementalListing": "true", "cloudFiles.backfillInterval": "1 day"}
    old = [landing.land(n * 60) for n in range(4)]
    stream = Stream(landing, tmp_path / "schema", **options)
    assert stream.trigger() == old
    for name in old[:2]:
        landing.delete(name)  # the landing's expiry
    newer = landing.land(3600)

    caplog.set_level(logging.INFO)
    clock[0] += DAY_S
    delivered = stream.trigger()  # a backfill: lists everything, finds two keys gone
    stream.log.compact()
    reopened = DiscoveryLog.open(str(tmp_path / "schema"), stream.root)

    assert delivered == [newer]
    assert stream.log.known_paths == 3 and reopened.known_paths == 3
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert "forgot 2 discovered files no longer in" in caplog.text


def test_an_empty_full_listing_forgets_nothing(tmp_path, clock):
    landing = Landing("local", tmp_path)
    names = [landing.land(n * 60) for n in range(3)]
    stream = Stream(landing, tmp_path / "schema", **{"cloudFiles.useIncrementalListing": "false"})
    assert stream.trigger() == names
    landing.folder.rename(tmp_path / "unmounted")  # a folder that is gone for a while is not an expiry
    assert stream.trigger() == []
    (tmp_path / "unmounted").rename(landing.folder)
    assert stream.trigger() == []
    assert stream.log.known_paths == 3


def test_a_week_of_landing_with_expiry_keeps_the_discovery_state_bounded(tmp_path, clock, monkeypatch):
    """Three weeks, one object every two hours, a 7-day expiry, a daily backfill: nothing grows with time."""
    monkeypatch.setattr(DiscoveryLog, "SEGMENTS_PER_COMPACTION", 10)
    landing = Landing("local", tmp_path)
    options = {"cloudFiles.useIncrementalListing": "true", "cloudFiles.backfillInterval": "1 day"}
    stream = Stream(landing, tmp_path / "schema", **options)
    landed, delivered, alive = [], [], []
    known, held, log_files = [], [], []
    for step in range(21 * 12):
        seconds = step * 2 * HOUR_S
        clock[0] = START_S + seconds
        alive.append((seconds, landing.land(seconds)))
        landed.append(alive[-1][1])
        while alive[0][0] < seconds - 7 * DAY_S:  # expiry
            landing.delete(alive.pop(0)[1])
        delivered += stream.trigger()
        known.append(stream.log.known_paths)
        held.append(stream.log.held_entries)
        log_files.append(len(list((tmp_path / "schema" / "_discovery").iterdir())))

    assert sorted(delivered) == sorted(landed) and len(delivered) == len(set(delivered))
    # At most the 7 days the landing keeps, plus the day between backfills.
    assert max(known) <= 8 * 12 + 1 and known[-1] <= 8 * 12
    assert max(known[-7 * 12 :]) == max(known[7 * 12 : 14 * 12])  # no trend from week to week
    assert max(held) <= 10 and max(log_files) <= 10 + 5  # segments, a compaction, id/owner/start/listing
    reopened = DiscoveryLog.open(str(tmp_path / "schema"), stream.root)
    assert reopened.known_paths == stream.log.known_paths and reopened.held_entries <= 10


def test_paths_older_than_max_file_age_are_forgotten_and_such_files_are_ignored(tmp_path, clock, monkeypatch):
    monkeypatch.setattr(DiscoveryLog, "SEGMENTS_PER_COMPACTION", 5)
    landing = Landing("local", tmp_path)
    options = {"cloudFiles.useIncrementalListing": "true", "cloudFiles.maxFileAge": "2 days"}
    stream = Stream(landing, tmp_path / "schema", **options)
    delivered = []
    for day in range(10):  # no expiry, no backfill: only maxFileAge bounds what is remembered
        landing.land(day * DAY_S)
        delivered += stream.trigger()
    landing.put("dt=2026-05-11/old-copy.jsonl", mtime_s=START_S)  # a new key with a 10-day-old modification time
    delivered += stream.trigger()

    assert delivered == [key(day * DAY_S) for day in range(10)]  # the old copy is ignored
    # Compacted after days 4 and 9: what is left are the files of days 7, 8 and 9.
    assert stream.log.known_paths == 3


def test_compaction_drops_committed_entries_and_keeps_those_still_to_be_read(tmp_path, monkeypatch):
    monkeypatch.setattr(DiscoveryLog, "SEGMENTS_PER_COMPACTION", 3)
    landing = Landing("local", tmp_path)
    stream = Stream(landing, tmp_path / "schema", **{"cloudFiles.maxFilesPerTrigger": "1"})
    names = [landing.land(n * 60) for n in range(2)]
    assert stream.trigger() == names[:1]  # two recorded, one read
    start = stream.offset
    more = [landing.land(120)]
    stream.reader._discover()  # second segment
    more.append(landing.land(180))
    stream.reader._discover()  # third segment: compaction; seq 1 is committed, 2..4 are not

    reopened = Stream(landing, tmp_path / "schema", offset=start)
    assert stream.log.held_entries == 3 and reopened.log.held_entries == 3
    assert reopened.keys(start, {**start, "seq": 4}) == [names[1], *more]
    with pytest.raises(RuntimeError, match="before the discovery log"):
        reopened.keys({**start, "seq": 0}, start)


# --------------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("cloudFiles.useIncrementalListing", "sometimes", r"useIncrementalListing must be one of auto, true, false"),
        ("cloudFiles.backfillInterval", "1 month", r"backfillInterval must be a positive interval"),
        ("cloudFiles.backfillInterval", "daily", r"backfillInterval must be a positive interval"),
        ("cloudFiles.maxFileAge", "0 days", r"maxFileAge must be a positive interval"),
        ("cloudFiles.maxFileAge", "1 year", r"maxFileAge must be a positive interval"),
        ("recursiveFileLookup", "false", r"recursiveFileLookup 'false' is not supported.*always recursive"),
    ],
)
def test_listing_options_refuse_values_that_are_not_implemented(option, value, message):
    with pytest.raises(ValueError, match=message):
        CloudFilesOptions.from_options({"cloudFiles.format": "text", "path": "/landing", option.lower(): value})


def test_listing_options_take_auto_loader_values():
    parse = CloudFilesOptions.from_options
    defaults = parse({"cloudFiles.format": "text", "path": "/landing"})
    chosen = parse(
        {
            "cloudfiles.format": "text",
            "path": "/landing",
            "cloudfiles.useincrementallisting": "TRUE",
            "cloudfiles.backfillinterval": "1 day 12 hours",
            "cloudfiles.maxfileage": "interval 1 week",
            "recursivefilelookup": "true",
        }
    )
    assert (defaults.use_incremental_listing, defaults.backfill_interval_ms, defaults.max_file_age_ms) == (
        "auto",
        None,
        None,
    )
    assert (chosen.use_incremental_listing, chosen.backfill_interval_ms, chosen.max_file_age_ms) == (
        "true",
        36 * HOUR_S * 1000,
        7 * DAY_S * 1000,
    )
