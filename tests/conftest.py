"""Shared fixtures: one embedded S3 endpoint and one local SparkSession per test session.

The S3 endpoint starts first so Spark's Python workers inherit ``AWS_ENDPOINT_URL``. A process is either
a classic Spark driver or a Spark Connect client, so the Spark Connect runs (the way serverless runs
notebooks) are subprocesses: ``e2e_connect_run`` runs ``python -m lakehouse_local pipeline --connect``,
kills it mid-stream and runs it again, once, and the tests read its tables here.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def s3_endpoint():
    from lakehouse_local.s3server import EmbeddedS3

    server = EmbeddedS3().start(export_env=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    """A boto3 S3 client on the embedded endpoint."""
    return s3_endpoint.client()


@pytest.fixture
def bucket(s3, request):
    """A fresh, empty bucket per test."""
    name = "test-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip("-")
    name = name + "-" + os.urandom(3).hex()
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def spark(s3_endpoint, tmp_path_factory):
    from lakehouse_local.session import get_or_create_session

    os.environ.setdefault("LAKEHOUSE_WAREHOUSE", str(tmp_path_factory.mktemp("warehouse")))
    session = get_or_create_session("clickstream-lakehouse-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def e2e_landing(s3, s3_endpoint, tmp_path_factory):
    """4,000 lines from the producer with every fault, in the embedded S3 (once per test session)."""
    from support import produce

    return produce(s3, s3_endpoint, tmp_path_factory.mktemp("producer"), "e2e-landing", events=4000, batch_size=250, seed=11)


@pytest.fixture(scope="session")
def e2e_lakehouse(spark, e2e_landing, tmp_path_factory):
    """The notebooks 00-03 run over ``e2e_landing``: a small demo lakehouse shared by the tests that query it."""
    return _run_e2e(spark, e2e_landing, tmp_path_factory)


@pytest.fixture(scope="session")
def e2e_connect_run(spark, e2e_landing, tmp_path_factory):
    """The same run as ``e2e_lakehouse``, its notebooks' ``spark`` a Spark Connect client (serverless's way),
    and interrupted: killed once Silver has committed its first micro-batch, then run again from the
    checkpoints. ``silver_rows_when_killed``: how far the killed run got."""
    from support import kill_after_first_silver_commit, run_pipeline_process

    from lakehouse_local.tables import FolderLakehouse

    root = tmp_path_factory.mktemp("lakehouse") / "lh"
    kill_after_first_silver_commit(e2e_landing["landing"], root, connect=True)
    lakehouse = FolderLakehouse(spark, str(root))
    killed_at = lakehouse.read("silver.events").count()
    run_pipeline_process(e2e_landing["landing"], root, connect=True)
    return SimpleNamespace(lakehouse=lakehouse, silver_rows_when_killed=killed_at)


@pytest.fixture(scope="session")
def e2e_connect_lakehouse(e2e_connect_run):
    """The Connect run's tables: every test of the Connect mode checks a killed and restarted run."""
    return e2e_connect_run.lakehouse


def _run_e2e(spark, landing, tmp_path_factory):
    from support import params

    from lakehouse_local.cli import run_pipeline
    from lakehouse_local.tables import FolderLakehouse

    root = tmp_path_factory.mktemp("lakehouse") / "lh"
    run_pipeline(spark, params(landing["landing"], root))
    return FolderLakehouse(spark, str(root))
