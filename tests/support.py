"""Helpers shared by the end-to-end tests: a producer run with every fault, and notebook parameters."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = REPO_ROOT / "tests" / "resources"
PREFIX = "landing/clickstream"


def params(landing: str, lakehouse: Path, **extra) -> dict[str, str]:
    """Widget values for notebooks 00-03 (small micro-batches, so the watermark advances between them)."""
    return {
        "landing_path": landing,
        "lakehouse": str(lakehouse),
        "checkpoint_root": "",
        "trigger": "availableNow",
        "watermark_delay": "10 minutes",
        "max_files_per_trigger": "4",
        "max_table_files_per_trigger": "1",
        # Several Gold batches, so recomputing touched days batch by batch is exercised.
        "gold_max_table_files_per_trigger": "1",
        "reset": "false",
        **extra,
    }


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
    return {"landing": f"s3://{bucket}/{PREFIX}", "manifest": manifest.to_dict(), "truth": list(manifest.truth_events())}
