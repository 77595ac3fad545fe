"""S3 faults: the endpoint answers some PUTs with 503 SlowDown, loses answers, or fails for good.

Faults are injected on the HTTP layer of a real botocore client (a ``before-send`` hook returning a
503 response instead of sending), so botocore's own retry handler and then the producer's
whole-batch retry run exactly as they would against AWS.
"""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import unquote

import pytest
from botocore.awsrequest import AWSResponse

from producer import ProducerConfig, ProducerError, load_manifest, make_s3_client, run
from producer.reconcile import differences, object_lines, recount_objects

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>"
)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: object):
        yield self._data


def slow_down(request) -> AWSResponse:
    return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Body(SLOW_DOWN))


class PutFaults:
    """A ``before-send`` hook for PutObject: decides per call whether S3 "answers" 503 SlowDown."""

    def __init__(
        self,
        *,
        share: float = 0.0,
        seed: int = 1,
        fail_key_attempts: dict[str, int] | None = None,
        land_then_fail: set[str] | None = None,
        side_client=None,
        always_fail_after: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.share = share
        self.fail_key_attempts = dict(fail_key_attempts or {})
        self.land_then_fail = set(land_then_fail or ())
        self.side_client = side_client
        self.always_fail_after = always_fail_after
        self.injected = 0
        self.puts_by_key: dict[str, int] = {}

    def __call__(self, request, **_: object):
        key = unquote(request.url.split("/", 4)[-1].split("?")[0])
        self.puts_by_key[key] = self.puts_by_key.get(key, 0) + 1
        landing = "/landing/" in request.url
        if self.always_fail_after is not None and landing and self.landing_calls() > self.always_fail_after:
            return self._fail(request)
        for pattern, remaining in list(self.fail_key_attempts.items()):
            if pattern in request.url and remaining > 0:
                self.fail_key_attempts[pattern] = remaining - 1
                return self._fail(request)
        for pattern in list(self.land_then_fail):
            if pattern in request.url:
                # The PUT really lands, then the answer is lost: the retry must not make a second object.
                self.land_then_fail.discard(pattern)
                bucket = request.url.split("/")[3]
                self.side_client.put_object(Bucket=bucket, Key=key, Body=request.body)
                return self._fail(request)
        if landing and self.rng.random() < self.share:
            return self._fail(request)
        return None

    def landing_calls(self) -> int:
        return sum(n for k, n in self.puts_by_key.items() if k.startswith("landing/"))

    def _fail(self, request) -> AWSResponse:
        self.injected += 1
        return slow_down(request)


def _client(endpoint: str, faults: PutFaults, *, max_attempts: int = 4):
    client = make_s3_client(endpoint, max_attempts=max_attempts, retry_mode="standard")
    client.meta.events.register("before-send.s3.PutObject", faults)
    return client


@pytest.fixture(autouse=True)
def short_botocore_backoff(monkeypatch):
    """botocore waits up to 1 s x 2^n after a SlowDown; the waits shrink, the retry decisions stay botocore's."""
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(
        ExponentialBackoff,
        "_DEFAULT_BACKOFF_CONFIG",
        {"throttling_base_scale": 0.02, "non_throttling_base_scale": 0.01},
    )


def _config(bucket: str, tmp_path: Path, **overrides) -> ProducerConfig:
    options = {
        "bucket": bucket,
        "events": 4000,
        "rate": 500.0,
        "batch_size": 400,
        "seed": 5,
        "start_time": "2026-05-03T08:00:00Z",
        "dup_rate": 0.03,
        "synthetic_dup_rate": 0.02,
        "late_rate": 0.03,
        "malformed_rate": 0.01,
        "invalid_rate": 0.03,
        "batch_retry_backoff_seconds": 0.01,
        "manifest_path": str(tmp_path / "manifest.json"),
        "progress": False,
    }
    options.update(overrides)
    return ProducerConfig(**options)


def _landed(s3, bucket: str) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="landing/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def _assert_exact(s3, bucket: str, manifest) -> None:
    m = manifest.to_dict()
    landed = _landed(s3, bucket)
    assert [o["key"] for o in m["objects"]] == sorted(landed), "every batch landed exactly once"
    assert sum(len(object_lines(body, key)) for key, body in landed.items()) == m["counts"]["lines_sent"]
    assert differences(m, recount_objects(s3, bucket, [o["key"] for o in m["objects"]])) == []


def test_503_slowdown_on_a_share_of_puts_still_lands_every_batch_once(s3_endpoint, s3, bucket, tmp_path):
    faults = PutFaults(share=0.3, seed=7)
    client = _client(s3_endpoint.endpoint_url, faults, max_attempts=6)
    manifest = run(_config(bucket, tmp_path), s3_client=client)
    assert faults.injected >= 3, "the test must actually inject faults"
    assert manifest.status == "complete"
    assert manifest.counts["objects"] == 10
    assert manifest.counts["lines_sent"] == 4000
    # botocore retried each 503 itself; the producer saw the retries but never an error.
    assert manifest.stats["put_retries"] == faults.injected
    assert manifest.stats["put_errors"] == 0
    _assert_exact(s3, bucket, manifest)


def test_when_botocore_gives_up_the_producer_retries_the_whole_batch(s3_endpoint, s3, bucket, tmp_path):
    # Every botocore attempt of the third batch's first PUT fails: 3 attempts, then the batch retry.
    faults = PutFaults(fail_key_attempts={"T080002400Z-": 3})
    client = _client(s3_endpoint.endpoint_url, faults, max_attempts=3)
    manifest = run(_config(bucket, tmp_path), s3_client=client)
    assert manifest.status == "complete"
    assert manifest.stats["batch_retries"] == 1
    assert manifest.stats["put_errors"] == 1
    assert manifest.stats["put_retries"] == 2
    third = [k for k in faults.puts_by_key if "T080002400Z-" in k]
    assert len(third) == 1 and faults.puts_by_key[third[0]] == 4
    _assert_exact(s3, bucket, manifest)


def test_a_put_that_landed_but_lost_its_answer_is_not_duplicated(s3_endpoint, s3, bucket, tmp_path):
    faults = PutFaults(land_then_fail={"T080001600Z-"}, side_client=s3)
    client = _client(s3_endpoint.endpoint_url, faults)
    manifest = run(_config(bucket, tmp_path), s3_client=client)
    key = next(k for k in faults.puts_by_key if "T080001600Z-" in k)
    assert faults.puts_by_key[key] == 2, "the retry rewrote the same key"
    assert manifest.counts["objects"] == 10
    _assert_exact(s3, bucket, manifest)


def test_a_batch_that_cannot_land_is_saved_reported_and_left_out_of_the_manifest(s3_endpoint, s3, bucket, tmp_path):
    # The fourth landing PUT and everything after it fail for good.
    faults = PutFaults(always_fail_after=3)
    client = _client(s3_endpoint.endpoint_url, faults, max_attempts=2)
    with pytest.raises(ProducerError, match="could not write s3 object") as raised:
        run(_config(bucket, tmp_path, batch_retries=2), s3_client=client)
    manifest = raised.value.manifest
    assert manifest.status == "failed"
    assert manifest.counts["objects"] == 3
    assert manifest.counts["lines_sent"] == 1200
    (undelivered,) = manifest.undelivered
    spilled = Path(undelivered["spill_path"])
    assert spilled.is_file()
    assert len(object_lines(spilled.read_bytes(), spilled.name)) == 400
    assert manifest.stats["batch_retries"] == 2
    on_disk = load_manifest(tmp_path / "manifest.json")
    assert on_disk["status"] == "failed" and on_disk["undelivered"] == manifest.undelivered
    _assert_exact(s3, bucket, manifest)


def test_a_missing_bucket_fails_fast_with_the_fix_named(s3_endpoint, tmp_path, caplog):
    client = make_s3_client(s3_endpoint.endpoint_url, max_attempts=2)
    with pytest.raises(ProducerError) as raised:
        run(_config("no-such-bucket-for-producer", tmp_path), s3_client=client)
    manifest = raised.value.manifest
    assert manifest.counts["lines_sent"] == 0
    assert manifest.stats["batch_retries"] == 0
    assert "setup-aws --bucket no-such-bucket-for-producer" in caplog.text
