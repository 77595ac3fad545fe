"""The ops metrics' ingest→commit latencies, derived from ingest times aggregated with a batch's counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.pipeline.metrics import ingest_times, latencies

COMMITTED = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def test_latencies_are_the_commit_time_minus_the_ingest_times_quantiles(spark):
    # 100 rows ingested 1..100 s before the commit.
    rows = [((COMMITTED - timedelta(seconds=s)).replace(tzinfo=None),) for s in range(1, 101)]
    df = spark.createDataFrame(rows, "ingest_time timestamp")

    got = latencies(df.agg(*ingest_times("ingest_time")).first(), COMMITTED)

    assert got["latency_max_s"] == pytest.approx(100.0)
    assert got["latency_p50_s"] == pytest.approx(50.0, abs=1.0)
    assert got["latency_p95_s"] == pytest.approx(95.0, abs=1.0)


def test_latencies_of_selected_rows_only_and_of_no_rows(spark):
    rows = [((COMMITTED - timedelta(seconds=s)).replace(tzinfo=None), s <= 10) for s in range(1, 101)]
    df = spark.createDataFrame(rows, "ingest_time timestamp, inserted boolean")

    got = latencies(df.agg(*ingest_times("ingest_time", where="inserted")).first(), COMMITTED)
    assert got["latency_max_s"] == pytest.approx(10.0)

    none = latencies(df.filter("false").agg(*ingest_times("ingest_time")).first(), COMMITTED)
    assert none == {"latency_p50_s": None, "latency_p95_s": None, "latency_max_s": None}


def test_weighted_rows_give_the_latencies_of_the_rows_they_stand_for(spark):
    # Three landed files' records: 90 lines ingested 30 s before the commit, 10 lines 80 s before, and a file
    # that gave no line (its time must not count, not even as the earliest).
    files = [
        ((COMMITTED - timedelta(seconds=30)).replace(tzinfo=None), 90),
        ((COMMITTED - timedelta(seconds=80)).replace(tzinfo=None), 10),
        ((COMMITTED - timedelta(seconds=500)).replace(tzinfo=None), 0),
    ]
    df = spark.createDataFrame(files, "ingest_time timestamp, lines bigint")

    got = latencies(df.agg(*ingest_times("ingest_time", weight="lines")).first(), COMMITTED)

    assert got["latency_max_s"] == pytest.approx(80.0)
    assert got["latency_p50_s"] == pytest.approx(30.0)
    # The 95th percentile of latency is the 5th of ingest times: within the 10 lines 80 s old.
    assert got["latency_p95_s"] == pytest.approx(80.0)
