"""Helpers shared by the tests: a producer run with every fault, notebook parameters, producer options and traffic."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producer import ProducerConfig
    from producer.traffic import TrafficModel

REPO_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = REPO_ROOT / "tests" / "resources"
PREFIX = "landing/clickstream"


# The e2e runs' micro-batch sizes: small, so the watermark advances between batches, and several Gold batches
# (Silver writes a file per day a batch touches), so adding to the days a batch touched is exercised batch by batch.
MICRO_BATCHES = {
    "max_files_per_trigger": "4",
    "max_table_files_per_trigger": "1",
    "gold_max_table_files_per_trigger": "4",
}


def params(landing: str, lakehouse: Path, **extra) -> dict[str, str]:
    """Widget values for notebooks 00-03, with the e2e runs' micro-batch sizes (:data:`MICRO_BATCHES`)."""
    return {
        "landing_path": landing,
        "lakehouse": str(lakehouse),
        "checkpoint_root": "",
        "trigger": "availableNow",
        "watermark_delay": "10 minutes",
        **MICRO_BATCHES,
        "reset": "false",
        **extra,
    }


def pipeline_command(landing: str, lakehouse: Path, *, connect: bool = False, **flags: str) -> list[str]:
    """``python -m lakehouse_local pipeline`` with the micro-batch sizes of :func:`params`."""
    options = {name.replace("_", "-"): value for name, value in {**MICRO_BATCHES, **flags}.items()}
    command = [sys.executable, "-m", "lakehouse_local", "pipeline", "--landing", landing, "--lakehouse", str(lakehouse)]
    for name, value in options.items():
        command += [f"--{name}", value]
    return command + (["--connect"] if connect else [])


def run_pipeline_process(
    landing: str, lakehouse: Path, *, connect: bool = False, env: dict[str, str] | None = None, **flags: str
) -> None:
    """Run the notebooks in a process of their own (a Spark Connect client needs one, and so does another S3
    endpoint: Spark's workers take the environment the JVM started with); fail with its output."""
    result = subprocess.run(
        pipeline_command(landing, lakehouse, connect=connect, **flags),
        cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env or {})), capture_output=True, text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise AssertionError(f"pipeline exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def kill_after_first_silver_commit(
    landing: str, lakehouse: Path, *, connect: bool = False, env: dict[str, str] | None = None, **flags: str
) -> None:
    """Start the notebooks in a process of their own and kill it (SIGKILL, the whole process group: the JVM,
    the Connect server, the foreachBatch workers) once Silver has committed its first micro-batch."""
    process = subprocess.Popen(
        pipeline_command(landing, lakehouse, connect=connect, **flags), cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env or {})),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    silver_commits = lakehouse / "_checkpoints" / "silver" / "commits"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            if silver_commits.exists() and any(p.name.isdigit() for p in silver_commits.iterdir()):
                break
            time.sleep(0.2)
        assert process.poll() is None, "the pipeline finished before it could be interrupted"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)


def produce(s3, s3_endpoint, folder: Path, bucket: str, *, events: int, batch_size: int, seed: int) -> dict:
    """A producer run with every fault rate non-zero, spread over a few hours of event time."""
    from producer import ProducerConfig, profiles, run

    s3.create_bucket(Bucket=bucket)
    manifest = run(
        ProducerConfig(
            bucket=bucket,
            prefix=PREFIX,
            endpoint_url=s3_endpoint.endpoint_url,
            events=events,
            seed=seed,
            start_time="2026-11-20T21:00:00Z",
            rate=events / 10_000,  # ~2.8 hours of event time, crossing midnight
            batch_size=batch_size,
            batch_interval_seconds=7200,
            users=300,
            **profiles.TESTS,
            manifest_path=str(folder / "manifest.json"),
            progress=False,
        ),
        s3_client=s3,
    )
    from producer.manifest import read_truth

    return {
        "landing": f"s3://{bucket}/{PREFIX}",
        "manifest": manifest.to_dict(),
        "truth": list(manifest.truth_events()),
        # Every line that was not a plain valid event (late, duplicate, invalid, ...), with its kind and event_id.
        "faults": list(read_truth(manifest.faults_path)),
    }


# Every fault rate non-zero, for the producer's tests.
ALL_FAULTS = {
    "dup_rate": 0.04,
    "synthetic_dup_rate": 0.03,
    "late_rate": 0.05,
    "malformed_rate": 0.02,
    "invalid_rate": 0.06,
}


def producer_config(bucket: str, tmp_path: Path, **overrides) -> ProducerConfig:
    """A small simulated-clock run that crosses midnight, its manifest under ``tmp_path``."""
    from producer import ProducerConfig

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


def landed_objects(s3, bucket: str, prefix: str = "landing/clickstream/") -> dict[str, bytes]:
    """Every object under ``prefix``, key to body, in key order."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def traffic_model(seed: int = 1, rate: float = 50.0, **options) -> TrafficModel:
    from producer.traffic import TrafficModel

    probabilities = {"click_probability": 0.45, "add_to_cart_probability": 0.3, "purchase_probability": 0.4}
    probabilities.update(options)
    return TrafficModel(random.Random(seed), users=400, rate=rate, **probabilities)


def traffic_events(model: TrafficModel, count: int, rate: float = 50.0, start: float = 1.77e9) -> list[dict]:
    """``count`` events from ``model``, received ``1 / rate`` seconds apart."""
    return [model.next_event(start + (k + 1) / rate) for k in range(count)]
