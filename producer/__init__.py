"""The clickstream producer: realistic storefront traffic, landed in S3 as JSON-lines micro-batches.

Python API (the CLI, ``python -m producer``, is a thin layer over it)::

    from producer import ProducerConfig, run

    manifest = run(ProducerConfig(bucket="my-bucket", events=10_000, seed=7,
                                  start_time="2026-05-01T00:00:00Z", dup_rate=0.01))
    manifest.to_dict()["counts"]

Modules: :mod:`producer.traffic` (users, sessions, funnel), :mod:`producer.faults` (injected
faults), :mod:`producer.stream` (lines and their classification), :mod:`producer.writer` (S3
delivery and retries), :mod:`producer.manifest` (ground truth), :mod:`producer.runner` (pacing and
the run), :mod:`producer.aws` (bucket setup, verification, cleanup), :mod:`producer.cli`.
"""

from producer.config import ConfigError, ProducerConfig
from producer.manifest import Manifest, check_counts, load_manifest, read_truth
from producer.runner import ProducerError, run
from producer.writer import make_s3_client

__all__ = [
    "ConfigError",
    "Manifest",
    "ProducerConfig",
    "ProducerError",
    "check_counts",
    "load_manifest",
    "make_s3_client",
    "read_truth",
    "run",
]
