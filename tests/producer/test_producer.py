"""The producer against the embedded S3 endpoint: reconciliation, reproducibility, pacing, traffic, faults."""

from __future__ import annotations

import gzip
import hmac
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from support import REPO_ROOT

from lakehouse import contract
from lakehouse.rules import FUTURE_TOLERANCE_MINUTES, MAX_LATENESS_HOURS, SESSION_TIMEOUT_MINUTES
from producer import ConfigError, ProducerConfig, check_counts, faults, load_manifest, read_truth, run
from producer.cli import main
from producer.clock import SimulatedClock, format_timestamp
from producer.contract_check import CompiledContract
from producer.reconcile import differences, object_lines, recount_objects
from producer.traffic import SITE, TrafficModel, ip_hash

EXAMPLES = contract.SCHEMA_DIR / "examples"
KEY = re.compile(
    r"^landing/clickstream/dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})/(\d{8})T(\d{2})\d{7}Z-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jsonl(\.gz)?$"
)
ALL_FAULTS = {
    "dup_rate": 0.04,
    "synthetic_dup_rate": 0.03,
    "late_rate": 0.05,
    "malformed_rate": 0.02,
    "invalid_rate": 0.06,
}


def _config(bucket: str, tmp_path: Path, **overrides) -> ProducerConfig:
    options = {
        "bucket": bucket,
        "events": 3000,
        "rate": 250.0,
        "batch_size": 400,
        "seed": 11,
        "start_time": "2026-05-01T23:59:55Z",
        "manifest_path": str(tmp_path / "manifest.json"),
        "progress": False,
    }
    options.update(overrides)
    return ProducerConfig(**options)


def _objects(s3, bucket: str, prefix: str = "landing/clickstream/") -> dict[str, bytes]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------------------------------------
# The acceptance run: every fault on, everything reconciled
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty_run(s3, tmp_path_factory):
    bucket = "test-producer-faulty-" + os.urandom(3).hex()
    s3.create_bucket(Bucket=bucket)
    tmp_path = tmp_path_factory.mktemp("faulty")
    manifest = run(_config(bucket, tmp_path, **ALL_FAULTS), s3_client=s3)
    return bucket, tmp_path, manifest, _objects(s3, bucket)


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


def test_parsing_the_landed_lines_back_reproduces_every_ground_truth_count(faulty_run, s3):
    bucket, _, manifest, _ = faulty_run
    m = manifest.to_dict()
    check_counts(m)
    counts = m["counts"]
    assert counts["lines_sent"] == (
        counts["valid_unique_events"] + counts["natural_duplicates"] + sum(counts["expected_quarantine"].values())
    )
    for kind in ("natural_duplicates", "synthetic_duplicates", "late_events", "malformed_lines", "invalid_events"):
        assert counts[kind] > 0, kind
    recount = recount_objects(s3, bucket, [o["key"] for o in m["objects"]])
    assert differences(m, recount) == []
    assert recount.counts() == counts
    # Every contract reason and both lateness rules were injected and will be quarantined.
    expected_reasons = set(contract.CONTRACT_REASONS) | {"too_late", "future_event_time", "conflicting_duplicate"}
    assert set(counts["expected_quarantine"]) == expected_reasons
    assert counts["expected_quarantine"]["conflicting_duplicate"] == counts["synthetic_duplicates"]
    contract_and_rules = sum(
        v for k, v in counts["expected_quarantine"].items() if k not in ("malformed_json", "conflicting_duplicate")
    )
    assert counts["invalid_events"] == contract_and_rules
    assert sum(sum(a.values()) for a in m["by_date_action"].values()) == counts["valid_unique_events"]
    assert set(m["by_date_action"]) >= {"2026-05-01", "2026-05-02"}


def test_the_truth_file_is_every_first_arrival_as_sent(faulty_run, s3):
    bucket, tmp_path, manifest, _ = faulty_run
    m = manifest.to_dict()
    truth_path = tmp_path / m["truth_file"]
    with gzip.open(truth_path, "rt") as handle:
        truth_lines = handle.read().splitlines()
    recount = recount_objects(s3, bucket, [o["key"] for o in m["objects"]])
    assert truth_lines == recount.first_arrivals
    assert len(truth_lines) == m["counts"]["valid_unique_events"]
    events = list(read_truth(truth_path))
    assert len({e["event_id"] for e in events}) == len(events)
    # The run manifest and the truth file are also in S3, outside the landing prefix.
    key = f"manifests/clickstream/{m['run_id']}.json"
    assert m["manifest_uri"] == f"s3://{bucket}/{key}"
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == load_manifest(manifest.local_path) == m
    remote_truth = s3.get_object(Bucket=bucket, Key=f"manifests/clickstream/{m['truth_file']}")["Body"].read()
    assert remote_truth == truth_path.read_bytes()


def test_every_injected_line_is_recorded_where_it_landed(faulty_run, s3):
    bucket, tmp_path, manifest, objects = faulty_run
    m = manifest.to_dict()
    records = list(read_truth(tmp_path / m["faults_file"]))
    assert m["faults_file"] == f"{m['run_id']}.faults.jsonl.gz"
    kinds = Counter(r["kind"] for r in records)
    counts = m["counts"]
    assert kinds == {
        "natural_duplicate": counts["natural_duplicates"],
        "synthetic_duplicate": counts["synthetic_duplicates"],
        "late": counts["late_events"],
        "malformed": counts["malformed_lines"],
        "invalid": counts["invalid_events"],
    }
    assert Counter(r["reason"] for r in records if r["reason"]) == Counter(counts["expected_quarantine"])
    lines = {key: object_lines(body, key) for key, body in objects.items()}
    first_seen = {e["event_id"]: json.dumps(e, separators=(",", ":")) for e in read_truth(tmp_path / m["truth_file"])}
    for record in records:
        text = lines[record["key"]][record["line"] - 1]
        if record["kind"] == "natural_duplicate":
            assert text == first_seen[record["event_id"]]
        elif record["kind"] == "synthetic_duplicate":
            assert json.loads(text)["event_id"] == record["event_id"] and text != first_seen[record["event_id"]]
        elif record["kind"] == "late":
            assert text == first_seen[record["event_id"]]
        elif record["kind"] == "malformed":
            assert contract.violation_of_line(text).reason == "malformed_json"
        else:
            assert record["variant"]
            found = contract.violation_of_line(text)
            assert (found.reason if found else None) == (
                None if record["reason"] in ("too_late", "future_event_time") else record["reason"]
            )
            assert record["event_id"] not in first_seen
    remote = s3.get_object(Bucket=bucket, Key=f"manifests/clickstream/{m['faults_file']}")["Body"].read()
    assert remote == (tmp_path / m["faults_file"]).read_bytes()


def test_valid_events_pass_the_contract_and_every_injected_fault_fails_as_expected(faulty_run):
    _, _, manifest, objects = faulty_run
    seen: dict[str, dict] = {}
    reasons: Counter[str] = Counter()
    lates = 0
    for key in sorted(objects):
        for line in object_lines(objects[key], key):
            found = contract.violation_of_line(line)
            if found is not None:
                reasons[found.reason] += 1
                assert found.reason in contract.CONTRACT_REASONS
                continue
            event = json.loads(line)
            lateness = _ts(event["ingest_time"]) - _ts(event["event_time"])
            if lateness > timedelta(hours=MAX_LATENESS_HOURS):
                assert lateness >= timedelta(days=3, hours=1)
                reasons["too_late"] += 1
                continue
            if -lateness > timedelta(minutes=FUTURE_TOLERANCE_MINUTES):
                assert timedelta(minutes=10) <= -lateness <= timedelta(hours=3)
                reasons["future_event_time"] += 1
                continue
            # Every event that reaches Silver: contract-valid, and received after it happened.
            assert contract.is_valid(event)
            assert lateness >= timedelta(0), event
            original = seen.get(event["event_id"])
            if original is None:
                seen[event["event_id"]] = event
                lates += lateness >= timedelta(minutes=2)
            elif original != event:
                # A synthetic duplicate: another payload and a strictly later ingest_time.
                assert _ts(event["ingest_time"]) > _ts(original["ingest_time"])
                assert {k: v for k, v in event.items() if k != "ingest_time"} != {
                    k: v for k, v in original.items() if k != "ingest_time"
                }
                reasons["conflicting_duplicate"] += 1
    expected = manifest.counts["expected_quarantine"]
    assert dict(reasons) == expected
    assert lates == manifest.counts["late_events"]


def test_late_events_are_minutes_to_hours_old_and_stay_inside_the_hard_limit(faulty_run):
    _, tmp_path, manifest, _ = faulty_run
    lateness = sorted(
        (_ts(e["ingest_time"]) - _ts(e["event_time"])).total_seconds()
        for e in read_truth(tmp_path / manifest.truth_file)
    )
    late = [s for s in lateness if s >= faults.MIN_LATENESS_SECONDS]
    on_time = [s for s in lateness if s < faults.MIN_LATENESS_SECONDS]
    assert len(late) == manifest.counts["late_events"]
    assert max(on_time) <= 30.0
    assert max(late) < MAX_LATENESS_HOURS * 3600
    assert max(late) > 3600, "some late events should be hours old"


def test_manifest_records_every_option_and_the_resolved_seed_and_start(faulty_run):
    _, _, manifest, _ = faulty_run
    params = manifest.parameters
    for name in (
        "bucket",
        "prefix",
        "endpoint_url",
        "rate",
        "events",
        "duration_seconds",
        "batch_size",
        "gzip",
        "seed",
        "start_time",
        "dup_rate",
        "synthetic_dup_rate",
        "late_rate",
        "malformed_rate",
        "invalid_rate",
        "manifest_path",
        "manifests_prefix",
    ):
        assert name in params, name
    assert params["seed"] == 11
    assert params["start_time"] == "2026-05-01T23:59:55.000Z"
    assert params["invalid_rate"] == 0.06
    assert manifest.run_id.startswith("20260501T235955000Z-")
    assert _ts(manifest.created_at)


# ---------------------------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------------------------


def test_same_seed_and_parameters_give_byte_identical_content(s3, tmp_path):
    buckets = []
    for name in ("a", "b", "c"):
        bucket = f"test-repro-{name}-{os.urandom(3).hex()}"
        s3.create_bucket(Bucket=bucket)
        buckets.append(bucket)
    options = dict(events=1500, batch_size=500, **ALL_FAULTS)
    first = run(_config(buckets[0], tmp_path / "a", **options), s3_client=s3)
    second = run(_config(buckets[1], tmp_path / "b", **options), s3_client=s3)
    other_seed = run(_config(buckets[2], tmp_path / "c", **dict(options, seed=12)), s3_client=s3)
    a, b, c = (_objects(s3, bucket) for bucket in buckets)
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
    run(_config(plain_bucket, tmp_path / "plain", events=800), s3_client=s3)
    zipped = run(_config(bucket, tmp_path / "gz", events=800, gzip=True), s3_client=s3)
    plain, gz = _objects(s3, plain_bucket), _objects(s3, bucket)
    assert all(k.endswith(".jsonl.gz") for k in gz)
    assert [k + ".gz" for k in plain] == list(gz)
    assert [gzip.decompress(v) for v in gz.values()] == list(plain.values())
    assert zipped.counts["lines_sent"] == 800
    head = s3.head_object(Bucket=bucket, Key=next(iter(gz)))
    assert head["ContentType"] == "application/gzip"
    assert head["Metadata"]["run-id"] == zipped.run_id


# ---------------------------------------------------------------------------------------------
# Pacing
# ---------------------------------------------------------------------------------------------


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
    config = _config(
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
    first = _ts(manifest.stats["first_ingest_time"]).timestamp()
    per_second: Counter[int] = Counter()
    for event in read_truth(tmp_path / manifest.truth_file):
        millis = round((_ts(event["ingest_time"]).timestamp() - first) * 1000)
        per_second[(max(millis, 1) - 1) // 1000] += 1
    assert sorted(per_second) == list(range(10))
    assert all(abs(count - 2000) <= 2 for count in per_second.values()), per_second


def test_a_live_run_paces_on_the_real_clock(s3, bucket, tmp_path):
    began = time.monotonic()
    manifest = run(
        _config(bucket, tmp_path, events=None, duration_seconds=1.0, rate=300.0, batch_size=100, start_time="now"),
        s3_client=s3,
    )
    elapsed = time.monotonic() - began
    assert manifest.counts["lines_sent"] == 300
    assert 0.9 <= elapsed < 6.0
    assert manifest.stats["clock"] == "real"
    first = _ts(manifest.stats["first_ingest_time"])
    assert abs((datetime.now(first.tzinfo) - first).total_seconds()) < 30


def test_stop_event_flushes_the_current_batch_and_writes_the_manifest(s3, bucket, tmp_path):
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    config = _config(
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
    landed = _objects(s3, bucket)
    assert sum(len(object_lines(v, k)) for k, v in landed.items()) == manifest.counts["lines_sent"]
    assert load_manifest(manifest.local_path)["status"] == "interrupted"


def test_ctrl_c_on_the_cli_flushes_and_writes_the_manifest(s3, s3_endpoint, bucket, tmp_path):
    manifest_path = tmp_path / "m.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer",
            "--bucket",
            bucket,
            "--endpoint-url",
            s3_endpoint.endpoint_url,
            "--rate",
            "200",
            "--batch-size",
            "100000",
            "--batch-interval",
            "60",
            "--manifest",
            str(manifest_path),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "events/s into" not in (line := process.stderr.readline()):
        assert line or process.poll() is None, "producer exited early"
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    manifest = load_manifest(manifest_path)
    assert manifest["status"] == "interrupted"
    assert manifest["counts"]["lines_sent"] >= 100
    landed = _objects(s3, bucket)
    assert [o["key"] for o in manifest["objects"]] == list(landed)
    assert sum(len(object_lines(v, k)) for k, v in landed.items()) == manifest["counts"]["lines_sent"]
    assert f"manifest: {manifest_path}" in out


# ---------------------------------------------------------------------------------------------
# Traffic model
# ---------------------------------------------------------------------------------------------


def _traffic(seed: int = 1, rate: float = 50.0, **options) -> TrafficModel:
    probabilities = {"click_probability": 0.45, "add_to_cart_probability": 0.3, "purchase_probability": 0.4}
    probabilities.update(options)
    return TrafficModel(random.Random(seed), users=400, rate=rate, **probabilities)


def _events(model: TrafficModel, count: int, rate: float = 50.0, start: float = 1.77e9) -> list[dict]:
    return [model.next_event(start + (k + 1) / rate) for k in range(count)]


def test_users_keep_their_device_country_agent_and_ip_hash_across_runs():
    attributes = defaultdict(set)
    for seed in (1, 2):
        for event in _events(_traffic(seed), 4000):
            attributes[event["user_id"]].add(
                (event["device_type"], event["country"], event["user_agent"], event["ip_hash"])
            )
    assert len(attributes) > 100
    assert all(len(values) == 1 for values in attributes.values())
    devices = Counter(next(iter(v))[0] for v in attributes.values())
    assert devices["mobile"] > devices["desktop"] > devices["tablet"] > 0


def test_ip_hash_is_an_hmac_sha256_with_the_configured_key(monkeypatch):
    monkeypatch.setenv("CLICKSTREAM_HMAC_KEY", "key-one")
    first = _traffic().user(5)
    monkeypatch.setenv("CLICKSTREAM_HMAC_KEY", "key-two")
    second = _traffic().user(5)
    assert re.fullmatch(r"[0-9a-f]{64}", first.ip_hash)
    assert first.ip_hash != second.ip_hash
    assert (first.device_type, first.country, first.user_agent) == (
        second.device_type,
        second.country,
        second.user_agent,
    )
    assert ip_hash("203.0.113.7", b"key-one") == hmac.new(b"key-one", b"203.0.113.7", sha256).hexdigest()
    assert ip_hash("203.0.113.7", b"key-one") != sha256(b"203.0.113.7").hexdigest()


def test_sessions_never_span_30_minutes_of_inactivity():
    # One event an hour: every event finds its session timed out and opens a new one.
    sparse = _events(_traffic(rate=1 / 3600), 20, rate=1 / 3600)
    assert len({e["session_id"] for e in sparse}) == 20
    by_session = defaultdict(list)
    for event in _events(_traffic(rate=0.5), 3000, rate=0.5):
        by_session[event["session_id"]].append(_ts(event["event_time"]))
    gaps = [b - a for times in by_session.values() for a, b in zip(times, times[1:], strict=False)]
    assert gaps and max(gaps) <= timedelta(minutes=SESSION_TIMEOUT_MINUTES)
    assert all(b >= a for times in by_session.values() for a, b in zip(times, times[1:], strict=False))
    users_per_session = defaultdict(set)
    for event in _events(_traffic(), 2000):
        users_per_session[event["session_id"]].add(event["user_id"])
    assert all(len(u) == 1 for u in users_per_session.values())


def test_journeys_follow_the_funnel_with_the_configured_probabilities():
    def journeys(**probabilities):
        sessions = defaultdict(list)
        for event in _events(_traffic(**probabilities), 6000):
            sessions[event["session_id"]].append(event)
        return sessions

    everything = journeys(click_probability=1.0, add_to_cart_probability=1.0, purchase_probability=1.0)
    for events in everything.values():
        actions = [e["action"] for e in events]
        expected = ["view", "click", "add_to_cart", "purchase"] * (len(actions) // 4 + 1)
        assert actions == expected[: len(actions)]
        for event in events:
            if event["action"] == "add_to_cart":
                assert event["page"].startswith("/products/sku-")
            if event["action"] == "purchase":
                assert event["page"] == "/checkout"
    views_only = journeys(click_probability=0.0)
    assert {e["action"] for events in views_only.values() for e in events} == {"view"}
    low = Counter(e["action"] for s in journeys(click_probability=0.2).values() for e in s)
    high = Counter(e["action"] for s in journeys(click_probability=0.8).values() for e in s)
    assert low["click"] / low["view"] < high["click"] / high["view"]
    assert high["purchase"] > 0


def test_referrers_come_from_the_source_then_from_the_previous_page():
    sessions = defaultdict(list)
    for event in _events(_traffic(), 5000):
        sessions[event["session_id"]].append(event)
    external = {"organic": "https://", "paid_search": "https://", "social": "https://", "referral": "https://"}
    for events in sessions.values():
        first = events[0]
        assert first["action"] == "view"
        if first["source"] in (None, "email"):
            assert first["referrer"] is None
        else:
            assert first["referrer"].startswith(external[first["source"]])
            assert not first["referrer"].startswith(SITE)
        assert len({e["source"] for e in events}) == 1
        for previous, event in zip(events, events[1:], strict=False):
            if event["action"] == "view":
                assert event["referrer"] == SITE + previous["page"]


def test_every_event_satisfies_the_contract_and_is_received_after_it_happened():
    for event in _events(_traffic(), 1500):
        assert contract.violation(event) is None
        assert _ts(event["ingest_time"]) >= _ts(event["event_time"])
        assert event["ingest_time"].endswith("Z") and len(event["ingest_time"]) == 24


# ---------------------------------------------------------------------------------------------
# Fault builders and the fast contract check
# ---------------------------------------------------------------------------------------------


def test_invalid_variants_cover_every_reason_and_each_gets_exactly_its_reason():
    rng = random.Random(4)
    model = _traffic()
    covered = set()
    for variant in faults.INVALID_VARIANTS:
        ingest = 1.77e9
        value = faults.make_invalid(variant, model.next_event(ingest), rng, ingest)
        found = contract.violation(value)
        if variant.reason in ("too_late", "future_event_time"):
            assert found is None
        else:
            assert found.reason == variant.reason, variant.name
        covered.add(variant.reason)
    assert covered == (set(contract.CONTRACT_REASONS) - {"malformed_json"}) | {"too_late", "future_event_time"}
    first_round = [v.reason for v in faults.INVALID_VARIANTS[:9]]
    assert len(set(first_round)) == 9, "the first invalid events already cover every reason"


def test_a_variant_that_misses_its_reason_is_refused():
    broken = faults.InvalidVariant("invalid_enum", "not_really", lambda e, rng, ingest: e)
    with pytest.raises(faults.InjectionError, match="invalid_enum"):
        faults.make_invalid(broken, _traffic().next_event(1.77e9), random.Random(1), 1.77e9)


def test_malformed_lines_never_parse_and_are_never_blank():
    rng = random.Random(9)
    model = _traffic()
    for _ in range(300):
        text = faults.make_malformed(faults.serialize(model.next_event(1.77e9)), rng)
        assert text.strip() and "\n" not in text
        with pytest.raises(ValueError):
            json.loads(text)


def test_the_fast_contract_check_agrees_with_jsonschema_on_the_examples():
    checker = CompiledContract()
    assert checker.compiled
    for path in sorted((EXAMPLES / "valid").glob("*.json")):
        checker.validate(json.loads(path.read_text()))
    for path in sorted((EXAMPLES / "invalid").glob("*.json")):
        try:
            event = json.loads(path.read_text())
        except ValueError:
            continue
        assert not checker.accepts(event), path.name
        with pytest.raises(contract.ContractError):
            checker.validate(event)


def test_the_fast_contract_check_never_accepts_what_jsonschema_rejects():
    checker = CompiledContract()
    rng = random.Random(21)
    tricky = [
        None,
        True,
        1,
        1.0,
        2,
        "",
        "x",
        [],
        {},
        "2026-02-30T10:00:00Z",
        "2026-05-01T10:00:00+02:00",
        "2026-05-01T10:00:00.5Z",
        "2026-05-01T10:00:00z",
        "2026-05-01t10:00:00Z",
        "2026-05-01T24:00:00Z",
        "A7E2B9C4-1D3F-4E5A-8B6C-0D9E8F7A6B5C",
        "a7e2b9c41d3f4e5a8b6c0d9e8f7a6b5c",
        "view",
        "purchase",
        "VIEW",
        "US",
        "us",
        "USA",
        "f" * 64,
        "F" * 64,
        "f" * 63,
        "mobile",
        "phone",
        "/",
        "0" * 64 + "\n",
    ]
    base = _events(_traffic(), 50)
    fields = contract.field_names()
    accepted = rejected = 0
    for _ in range(4000):
        event = dict(rng.choice(base))
        for name in rng.sample(fields, rng.randint(1, 3)):
            if rng.random() < 0.15:
                event.pop(name, None)
            else:
                event[name] = rng.choice(tricky)
        if checker.accepts(event):
            accepted += 1
            assert contract.violation(event) is None, event
        else:
            rejected += 1
    assert accepted > 50 and rejected > 1000


def test_an_unknown_schema_keyword_turns_the_fast_path_off():
    schema = json.loads(contract.SCHEMA_PATH.read_text())
    schema["properties"]["page"]["maxLength"] = 5
    checker = CompiledContract(schema)
    assert not checker.compiled
    assert not checker.accepts(json.loads((EXAMPLES / "valid" / "view_required_fields_only.json").read_text()))


# ---------------------------------------------------------------------------------------------
# Configuration and CLI
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bucket": ""}, "--bucket"),
        ({"dup_rate": 0.6, "invalid_rate": 0.6}, "add up to 1.200"),
        ({"rate": 0}, "--rate"),
        ({"manifests_prefix": "landing/clickstream/manifests"}, "inside the landing prefix"),
        ({"start_time": "2026-05-01T00:00:00+02:00"}, "UTC"),
        ({"start_time": "yesterday"}, "--start-time"),
        ({"events": None, "duration_seconds": None}, "backfill"),
        ({"click_probability": 1.5}, "--p-click"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(overrides, message, tmp_path, monkeypatch):
    monkeypatch.delenv("LANDING_BUCKET", raising=False)
    with pytest.raises(ConfigError, match=re.escape(message)):
        _config(overrides.pop("bucket", "some-bucket"), tmp_path, **overrides).check()


def test_cli_help_and_usage_errors(capsys, monkeypatch):
    monkeypatch.delenv("LANDING_BUCKET", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "setup-aws", "verify", "cleanup"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--bucket",
        "--prefix",
        "--endpoint-url",
        "--rate",
        "--events",
        "--duration",
        "--batch-size",
        "--gzip",
        "--seed",
        "--start-time",
        "--dup-rate",
        "--synthetic-dup-rate",
        "--late-rate",
        "--malformed-rate",
        "--invalid-rate",
        "--manifest",
    ):
        assert option in out, option
    assert main(["--events", "10"]) == 2
    assert "LANDING_BUCKET" in capsys.readouterr().err


def test_the_cli_runs_a_backfill_and_prints_where_the_manifest_is(s3, bucket, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LANDING_BUCKET", bucket)
    code = main(
        [
            "--events",
            "500",
            "--rate",
            "100",
            "--seed",
            "5",
            "--start-time",
            "2026-05-01T00:00:00Z",
            "--invalid-rate",
            "0.1",
            "--manifest",
            str(tmp_path / "run.json"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "500 lines in 1 objects" in out
    manifest = load_manifest(tmp_path / "run.json")
    assert manifest["parameters"]["bucket"] == bucket
    assert manifest["counts"]["invalid_events"] > 0
    assert manifest["stats"]["clock"] == "simulated"


def test_the_bash_wrapper_forwards_to_the_cli(s3, s3_endpoint, bucket, tmp_path):
    result = subprocess.run(
        [
            str(REPO_ROOT / "scripts" / "02_run_producer.sh"),
            "--bucket",
            bucket,
            "--endpoint-url",
            s3_endpoint.endpoint_url,
            "--events",
            "50",
            "--start-time",
            "2026-05-01T00:00:00Z",
            "--seed",
            "1",
            "--manifest",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    assert result.returncode == 0, result.stderr
    assert load_manifest(tmp_path / "m.json")["counts"]["lines_sent"] == 50
    from_script = _objects(s3, bucket)
    assert len(from_script) == 1
    # Another process (another hash seed) with the same seed and options writes the same bytes.
    in_process = bucket + "-again"
    s3.create_bucket(Bucket=in_process)
    config = ProducerConfig(
        bucket=in_process,
        events=50,
        start_time="2026-05-01T00:00:00Z",
        seed=1,
        manifest_path=str(tmp_path / "again.json"),
    )
    run(config, s3_client=s3)
    assert _objects(s3, in_process) == from_script


def test_timestamps_are_utc_with_milliseconds():
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert (
        format_timestamp(datetime(2026, 4, 30, 23, 33, 20, 123400, tzinfo=UTC).timestamp())
        == "2026-04-30T23:33:20.123Z"
    )
    assert (
        format_timestamp(datetime(2026, 4, 30, 23, 59, 59, 999600, tzinfo=UTC).timestamp())
        == "2026-05-01T00:00:00.000Z"
    )


def test_progress_is_one_live_line_on_a_terminal_and_log_lines_otherwise(caplog):
    import io
    import logging

    from producer.progress import Progress

    screen = io.StringIO()
    live = Progress(interactive=True, stream=screen, interval_seconds=0.0)
    live.update(lines=1000, batches=1, retries=2, errors=1)
    live.update(lines=2000, batches=2, retries=3, errors=1)
    live.close(lines=2000, batches=2, retries=3, errors=1)
    text = screen.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "2,000 events" in text and "events/s" in text and "2 batches" in text and "3 retries" in text
    assert "1 errors" in text
    with caplog.at_level(logging.INFO, logger="producer.progress"):
        quiet = Progress(interactive=False, stream=io.StringIO(), interval_seconds=0.0)
        quiet.update(lines=500, batches=1, retries=0, errors=0)
    assert "progress: 500 events" in caplog.text
