"""01_setup_aws, aws_verify and cleanup_s3 (``python -m producer setup-aws|verify|cleanup``) on the embedded endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from support import REPO_ROOT

from producer import ProducerConfig, run
from producer.aws import LANDING_LIFECYCLE_RULE_ID, TLS_ONLY_SID, setup_bucket
from producer.cli import main

SCRIPTS = REPO_ROOT / "scripts"


def _script(name: str, *args: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / name), *args, "--endpoint-url", endpoint],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHON=sys.executable),
    )


def _produce(s3, bucket: str, tmp_path: Path, **overrides):
    options = {
        "bucket": bucket,
        "events": 1200,
        "rate": 200.0,
        "batch_size": 300,
        "seed": 3,
        "start_time": "2026-05-04T10:00:00Z",
        "manifest_path": str(tmp_path / "manifest.json"),
        "progress": False,
    }
    options.update(overrides)
    return run(ProducerConfig(**options), s3_client=s3)


# ---------------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------------


def test_setup_script_creates_a_locked_down_bucket_and_reads_back_every_setting(s3, s3_endpoint, tmp_path):
    bucket = "test-setup-" + os.urandom(3).hex()
    result = _script(
        "01_setup_aws.sh", "--bucket", bucket, "--landing-expiration-days", "5", endpoint=s3_endpoint.endpoint_url
    )
    assert result.returncode == 0, result.stderr
    assert f"created bucket {bucket}" in result.stdout
    assert "blocked all public access" in result.stdout

    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert rule["BucketKeyEnabled"] is True
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statement["Sid"] == TLS_ONLY_SID
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["ID"] == LANDING_LIFECYCLE_RULE_ID
    assert lifecycle["Status"] == "Enabled"
    assert lifecycle["Filter"] == {"Prefix": "landing/clickstream/"}
    assert lifecycle["Expiration"] == {"Days": 5}
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # The endpoint enforces the policy: a plain-HTTP write is refused, and the script said it would be.
    assert "plain HTTP" in result.stdout
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="landing/clickstream/x.jsonl", Body=b"{}\n")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_setup_is_idempotent_and_keeps_other_rules_and_statements(s3, bucket):
    other_rule = {"ID": "keep-me", "Filter": {"Prefix": "archive/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [other_rule]})
    other_statement = {
        "Sid": "AllowAnalyticsRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/gold/*",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other_statement]}))

    first = setup_bucket(s3, bucket, expiration_days=3, tls_only=True)
    assert first[0] == f"bucket {bucket} already exists: kept"
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["AllowAnalyticsRead", TLS_ONLY_SID]
    second = setup_bucket(s3, bucket, expiration_days=3, tls_only=True)
    assert "TLS-only bucket policy already in place: kept" in second
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"] == statements
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"keep-me", LANDING_LIFECYCLE_RULE_ID}
    assert rules[LANDING_LIFECYCLE_RULE_ID]["Expiration"] == {"Days": 3}


def test_setup_without_the_tls_policy_leaves_a_local_endpoint_usable(s3, capsys):
    bucket = "test-setup-http-" + os.urandom(3).hex()
    assert main(["setup-aws", "--bucket", bucket, "--no-tls-only-policy"]) == 0
    assert "TLS-only bucket policy skipped" in capsys.readouterr().out
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="landing/clickstream/ok.jsonl", Body=b"{}\n")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------


def test_verify_script_reports_the_newest_objects_and_a_contract_sample(s3, s3_endpoint, bucket, tmp_path):
    manifest = _produce(s3, bucket, tmp_path, invalid_rate=0.1, malformed_rate=0.05)
    result = _script(
        "aws_verify.sh",
        "--bucket",
        bucket,
        "--newest",
        "2",
        "--sample",
        "200",
        "--manifest",
        str(tmp_path / "manifest.json"),
        endpoint=s3_endpoint.endpoint_url,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"s3://{bucket}/landing/clickstream: 4 objects" in out
    newest = [o["key"] for o in manifest.objects][-2:]
    assert all(key in out for key in newest)
    assert "lines in those objects: 600" in out
    assert "sample of 200 lines" in out
    assert "malformed_json:" in out and "invalid_type:" in out
    assert "reproduces every ground-truth count" in out
    assert out.rstrip().endswith("OK")


def test_verify_strict_fails_on_quarantine_bound_lines_and_reconciliation_catches_a_lost_object(
    s3, bucket, tmp_path, capsys
):
    manifest = _produce(s3, bucket, tmp_path, invalid_rate=0.1)
    assert main(["verify", "--bucket", bucket, "--strict"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("NOT OK")
    assert main(["verify", "--bucket", bucket, "--manifest", str(tmp_path / "manifest.json")]) == 0
    capsys.readouterr()
    lost = manifest.objects[1]["key"]
    s3.delete_object(Bucket=bucket, Key=lost)
    assert main(["verify", "--bucket", bucket, "--manifest", str(tmp_path / "manifest.json")]) == 1
    assert f"missing: {lost}" in capsys.readouterr().out


def test_verify_flags_keys_outside_the_layout_and_an_empty_landing_area(s3, bucket, capsys):
    assert main(["verify", "--bucket", bucket]) == 1
    assert "0 objects" in capsys.readouterr().out
    s3.put_object(Bucket=bucket, Key="landing/clickstream/stray.json", Body=b'{"a": 1}\n')
    assert main(["verify", "--bucket", bucket]) == 1
    assert "key does not follow" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# cleanup
# ---------------------------------------------------------------------------------------------


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_cleanup_script_refuses_without_confirmation_then_deletes_only_the_demo_prefixes(
    s3, s3_endpoint, bucket, tmp_path
):
    manifest = _produce(s3, bucket, tmp_path)
    s3.put_object(Bucket=bucket, Key="other/keep.txt", Body=b"keep")
    before = _keys(s3, bucket)
    assert len(before) == 4 + 3 + 1

    refused = _script("cleanup_s3.sh", "--bucket", bucket, endpoint=s3_endpoint.endpoint_url)
    assert refused.returncode == 2
    assert "would delete 7 objects" in refused.stderr and "--confirm" in refused.stderr
    assert _keys(s3, bucket) == before

    done = _script("cleanup_s3.sh", "--bucket", bucket, "--confirm", endpoint=s3_endpoint.endpoint_url)
    assert done.returncode == 0, done.stderr
    assert f"deleted 4 objects under s3://{bucket}/landing/clickstream/" in done.stdout
    assert f"deleted 3 objects under s3://{bucket}/manifests/clickstream/" in done.stdout
    assert _keys(s3, bucket) == ["other/keep.txt"]
    assert manifest.counts["objects"] == 4


def test_cleanup_deletes_every_version_and_only_drops_an_empty_bucket(s3, bucket, tmp_path, capsys):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket=bucket, Key="landing/clickstream/a.jsonl", Body=body)
    s3.delete_object(Bucket=bucket, Key="landing/clickstream/a.jsonl")
    s3.put_object(Bucket=bucket, Key="other/keep.txt", Body=b"keep")

    assert main(["cleanup", "--bucket", bucket, "--confirm", "--delete-bucket"]) == 1
    assert "holds 1 objects outside" in capsys.readouterr().err
    assert len(s3.list_object_versions(Bucket=bucket, Prefix="landing/")["Versions"]) == 2, "nothing deleted"

    assert main(["cleanup", "--bucket", bucket, "--confirm"]) == 0
    assert f"deleted 3 object versions under s3://{bucket}/landing/clickstream/" in capsys.readouterr().out
    versions = s3.list_object_versions(Bucket=bucket, Prefix="landing/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")

    assert main(["cleanup", "--bucket", bucket, "--prefix", "other", "--confirm", "--delete-bucket"]) == 0
    assert f"deleted bucket {bucket}" in capsys.readouterr().out
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_cleanup_refuses_an_empty_prefix(bucket, capsys):
    assert main(["cleanup", "--bucket", bucket, "--prefix", "/", "--confirm"]) == 1
    assert "whole bucket" in capsys.readouterr().err


def test_the_powershell_twins_are_thin_wrappers_over_the_same_commands():
    for name, command in (
        ("01_setup_aws", "setup-aws"),
        ("02_run_producer", "run"),
        ("aws_verify", "verify"),
        ("cleanup_s3", "cleanup"),
    ):
        ps1 = (SCRIPTS / f"{name}.ps1").read_text()
        sh = (SCRIPTS / f"{name}.sh").read_text()
        assert f"-m producer {command} @args" in ps1
        assert f'-m producer {command} "$@"' in sh
        assert os.access(SCRIPTS / f"{name}.sh", os.X_OK)
        assert len(ps1.splitlines()) <= 10 and len(sh.splitlines()) <= 12
