"""The manifest of a run with every fault: counts that reconcile, the truth and faults files, every option recorded."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from support import parse_time

from lakehouse import contract
from producer import check_counts, load_manifest, read_truth
from producer.reconcile import differences, object_lines, recount_objects


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
    assert parse_time(manifest.created_at)
