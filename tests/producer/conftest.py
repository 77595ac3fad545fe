"""Producer fixtures: one run with every fault on, landed in the embedded S3 once per test session."""

from __future__ import annotations

import os

import pytest
from support import ALL_FAULTS, landed_objects, producer_config

from producer import run


@pytest.fixture(scope="session")
def faulty_run(s3, tmp_path_factory):
    """3,000 lines crossing midnight with every fault rate non-zero: (bucket, manifest folder, manifest, objects)."""
    bucket = "test-producer-faulty-" + os.urandom(3).hex()
    s3.create_bucket(Bucket=bucket)
    tmp_path = tmp_path_factory.mktemp("faulty")
    manifest = run(producer_config(bucket, tmp_path, **ALL_FAULTS), s3_client=s3)
    return bucket, tmp_path, manifest, landed_objects(s3, bucket)
