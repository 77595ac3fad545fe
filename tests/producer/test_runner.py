"""A producer run against the embedded S3 endpoint: objects under layout keys, reproducible content, pacing, stopping."""

from __future__ import annotations

import gzip
import os
import random
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from support import ALL_FAULTS, landed_objects, parse_time, producer_config

from producer import load_manifest, read_truth, run
from producer.clock import SimulatedClock
from producer.reconcile import object_lines

KEY = re.compile(
    r"^landing/clickstream/dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})/(\d{8})T(\d{2})\d{7}Z-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jsonl(\.gz)?$"
)


def test_listed_objects_hold_exactly_the_manifest_lines_under_unique_layout_keys(faulty_run):
    bucket, _, manifest, objects = faulty_run
    m = manifest.to_dict()
    assert m["status"] == "complete"
    assert m["counts"]["lines_sent"] == 3000
    assert [o["key"] for o in m["objects"]] == sorted(objects), "manifest order is landing order (keys sort by time)"
    assert len(set(objects)) == len(m["objects"]) == m["counts"]["objects"] == 8
    assert sum(len(object_lines(body, key)) for key, body in objects.items()) == m["counts"]["lines_sent"]
    for entry in m["objects"]:
        body = objects[entry["key"]]
        assert entry["bytes"] == len(body)
        assert entry["lines"] == len(object_lines(body, entry["key"]))
        match = KEY.match(entry["key"])
        assert match, entry["key"]
        day, hour, compact_day, compact_hour, _ = match.groups()
        assert day.replace("-", "") == compact_day and hour == compact_hour
    # The run crosses midnight: partitions of both days.
    assert {KEY.match(k).group(1) for k in objects} == {"2026-05-01", "2026-05-02"}
    assert m["landing"] == {
        "bucket": bucket,
        "prefix": "landing/clickstream",
        "uri": f"s3://{bucket}/landing/clickstream",
    }


def test_same_seed_and_parameters_give_byte_identical_content(s3, tmp_path):
    buckets = []
    for name in ("a", "b", "c"):
        bucket = f"test-repro-{name}-{os.urandom(3).hex()}"
        s3.create_bucket(Bucket=bucket)
        buckets.append(bucket)
    options = dict(events=1500, batch_size=500, **ALL_FAULTS)
    first = run(producer_config(buckets[0], tmp_path / "a", **options), s3_client=s3)
    second = run(producer_config(buckets[1], tmp_path / "b", **options), s3_client=s3)
    other_seed = run(producer_config(buckets[2], tmp_path / "c", **dict(options, seed=12)), s3_client=s3)
    a, b, c = (landed_objects(s3, bucket) for bucket in buckets)
    assert list(a) == list(b), "same keys"
    assert all(a[k] == b[k] for k in a), "same bytes"
    assert first.run_id == second.run_id
    assert first.counts == second.counts
    assert (tmp_path / "a" / first.truth_file).read_bytes() == (tmp_path / "b" / second.truth_file).read_bytes()
    assert b"".join(a.values()) != b"".join(c.values())
    assert other_seed.run_id != first.run_id


def test_gzip_objects_carry_the_same_lines(s3, bucket, tmp_path):
    plain_bucket = bucket + "-plain"
    s3.create_bucket(Bucket=plain_bucket)
    run(producer_config(plain_bucket, tmp_path / "plain", events=800), s3_client=s3)
    zipped = run(producer_config(bucket, tmp_path / "gz", events=800, gzip=True), s3_client=s3)
    plain, gz = landed_objects(s3, plain_bucket), landed_objects(s3, bucket)
    assert all(k.endswith(".jsonl.gz") for k in gz)
    assert [k + ".gz" for k in plain] == list(gz)
    assert [gzip.decompress(v) for v in gz.values()] == list(plain.values())
    assert zipped.counts["lines_sent"] == 800
    head = s3.head_object(Bucket=bucket, Key=next(iter(gz)))
    assert head["ContentType"] == "application/gzip"
    assert head["Metadata"]["run-id"] == zipped.run_id


class JitteryClock(SimulatedClock):
    """A generated clock: sleeps overshoot by up to 30%, and reading the time costs a little time."""

    def __init__(self, start: float, seed: int = 3) -> None:
        super().__init__(start)
        self.rng = random.Random(seed)
        self.sleeps = 0

    def time(self) -> float:
        self._now += self.rng.uniform(0.0, 0.002)
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            actual = seconds * (1.0 + self.rng.uniform(0.0, 0.3))
            self.sleeps += 1
            self._now += actual


def test_rate_control_2000_events_per_second_for_10_seconds(s3, bucket, tmp_path):
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()
    clock = JitteryClock(start)
    config = producer_config(
        bucket, tmp_path, events=None, duration_seconds=10.0, rate=2000.0, batch_size=1000, start_time="now"
    )
    manifest = run(config, s3_client=s3, clock=clock)
    sent = manifest.counts["lines_sent"]
    assert abs(sent - 20_000) <= 0.02 * 20_000
    assert sent == 20_000
    assert all(o["lines"] <= 1000 for o in manifest.objects)
    # It paced itself on the clock (about 10 s of sleeping), and oversleeping did not accumulate.
    assert clock.sleeps >= 10
    assert 9.0 <= clock.time() - start <= 11.5
    # Line k is received at first + (k + 1) / rate: 2,000 ingest times in each second of the run.
    first = parse_time(manifest.stats["first_ingest_time"]).timestamp()
    per_second: Counter[int] = Counter()
    for event in read_truth(tmp_path / manifest.truth_file):
        millis = round((parse_time(event["ingest_time"]).timestamp() - first) * 1000)
        per_second[(max(millis, 1) - 1) // 1000] += 1
    assert sorted(per_second) == list(range(10))
    assert all(abs(count - 2000) <= 2 for count in per_second.values()), per_second


def test_a_live_run_paces_on_the_real_clock(s3, bucket, tmp_path):
    began = time.monotonic()
    manifest = run(
        producer_config(
            bucket, tmp_path, events=None, duration_seconds=1.0, rate=300.0, batch_size=100, start_time="now"
        ),
        s3_client=s3,
    )
    elapsed = time.monotonic() - began
    assert manifest.counts["lines_sent"] == 300
    assert 0.9 <= elapsed < 6.0
    assert manifest.stats["clock"] == "real"
    first = parse_time(manifest.stats["first_ingest_time"])
    assert abs((datetime.now(first.tzinfo) - first).total_seconds()) < 30


def test_stop_event_flushes_the_current_batch_and_writes_the_manifest(s3, bucket, tmp_path):
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    config = producer_config(
        bucket,
        tmp_path,
        events=None,
        duration_seconds=60.0,
        rate=200.0,
        batch_size=10_000,
        batch_interval_seconds=30.0,
        start_time="now",
    )
    manifest = run(config, s3_client=s3, stop_event=stop)
    assert manifest.status == "interrupted"
    # Nothing was due for a flush before the stop (size and interval far away): the stop flushed it.
    assert manifest.counts["objects"] == 1
    assert 1 <= manifest.counts["lines_sent"] <= 400
    landed = landed_objects(s3, bucket)
    assert sum(len(object_lines(v, k)) for k, v in landed.items()) == manifest.counts["lines_sent"]
    assert load_manifest(manifest.local_path)["status"] == "interrupted"
