"""The producer CLI: help and usage errors, a backfill, the bash wrapper, and Ctrl+C flushing the batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from support import REPO_ROOT, landed_objects

from producer import ProducerConfig, load_manifest, run
from producer.cli import main
from producer.reconcile import object_lines


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
    from_script = landed_objects(s3, bucket)
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
    assert landed_objects(s3, in_process) == from_script


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
    landed = landed_objects(s3, bucket)
    assert [o["key"] for o in manifest["objects"]] == list(landed)
    assert sum(len(object_lines(v, k)) for k, v in landed.items()) == manifest["counts"]["lines_sent"]
    assert f"manifest: {manifest_path}" in out
