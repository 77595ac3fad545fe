"""``Lakehouse`` reads that the pipeline relies on, against real Delta tables."""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse_local import delta_rs
from lakehouse_local.tables import FolderLakehouse

COLUMNS = ["event_id", "payload_hash", "_record_id"]


def test_read_matching_returns_the_rows_of_the_given_keys_only(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    stored = pa.table({"event_id": ["e1", "e2", "e3"], "payload_hash": ["h1", "h2", "h3"], "_record_id": [1, 2, 3]})
    delta_rs.write(lakehouse.path("silver.events"), stored, mode="append")
    # A micro-batch's keys: repeated, and one the table does not hold.
    batch = spark.createDataFrame([("e3",), ("e1",), ("e3",), ("new",)], "event_id string")

    got = lakehouse.read_matching("silver.events", batch, "event_id", columns=COLUMNS)

    expected = spark.createDataFrame([("e1", "h1", 1), ("e3", "h3", 3)], "event_id string, payload_hash string, _record_id long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_read_matching_with_no_match_or_no_keys_is_empty_with_the_columns(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    stored = pa.table({"event_id": ["e1"], "payload_hash": ["h1"], "_record_id": [1]})
    delta_rs.write(lakehouse.path("silver.events"), stored, mode="append")

    for keys in ([("other",)], []):
        got = lakehouse.read_matching(
            "silver.events", spark.createDataFrame(keys, "event_id string"), "event_id", columns=COLUMNS
        )
        assert got.columns == COLUMNS
        assert got.count() == 0


def _metrics_row(batch_id: int, rows_in: int) -> dict:
    from datetime import datetime

    now = datetime(2026, 11, 20, 12, 0, 0)
    return {
        "layer": "silver", "stream_id": "s1", "batch_id": batch_id, "rows_in": rows_in, "rows_written": rows_in,
        "quarantined": 0, "duplicates_removed": 0, "late": 0, "late_dropped": 0, "watermark": None,
        "latency_p50_s": 1.5, "latency_p95_s": 2.5, "latency_max_s": 3.0, "duration_s": 4.0,
        "started_at": now, "committed_at": now,
    }


def test_upsert_rows_merges_on_the_keys_once_per_batch(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    lakehouse.create_table(catalog.PIPELINE_METRICS)

    lakehouse.upsert_rows([_metrics_row(0, 10), _metrics_row(1, 20)], "ops.pipeline_metrics", app_id="a", batch_id=0)
    # The same (app id, batch id) again is skipped; a new one updates the row of its key.
    lakehouse.upsert_rows([_metrics_row(0, 99)], "ops.pipeline_metrics", app_id="a", batch_id=0)
    lakehouse.upsert_rows([_metrics_row(1, 21)], "ops.pipeline_metrics", app_id="a", batch_id=1)

    got = lakehouse.read("ops.pipeline_metrics").select("batch_id", "rows_in", "latency_p95_s", "committed_at")
    committed = _metrics_row(0, 0)["committed_at"]
    assert sorted(tuple(r) for r in got.collect()) == [(0, 10, 2.5, committed), (1, 21, 2.5, committed)]


def test_upsert_without_an_order_keeps_one_row_per_key(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    lakehouse.create_table(catalog.DAILY_KPIS)
    columns = [c.name for c in catalog.DAILY_KPIS.columns]
    day = {c: 0 for c in columns} | {"event_date": None, "conversion_rate": 0.0}
    rows = [day | {"event_date": d, "events": n} for d, n in (("2026-11-20", 5), ("2026-11-20", 5), ("2026-11-21", 7))]
    df = spark.createDataFrame(rows).withColumn("event_date", F.to_date("event_date"))

    lakehouse.upsert(df, catalog.DAILY_KPIS.name, app_id="g", batch_id=0)
    got = lakehouse.read(catalog.DAILY_KPIS.name).select(F.col("event_date").cast("string"), "events")
    assert sorted(tuple(r) for r in got.collect()) == [("2026-11-20", 5), ("2026-11-21", 7)]


def test_a_lookup_spread_over_many_small_and_empty_chunks_keeps_every_row(spark, tmp_path):
    """pyspark 4.2's createDataFrame loses rows of an Arrow table whose chunks include empty ones (a filtered
    scan leaves many): the table layer hands Spark one chunk per column."""
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    sizes = [0, 3, 0, 0, 1, 0, 2, 0] * 20
    chunks = []
    for number, size in enumerate(sizes):
        chunks.append(pa.record_batch({"event_id": pa.array([f"e{number}-{i}" for i in range(size)], pa.string())}))
    table = pa.Table.from_batches(chunks)

    assert spark.createDataFrame(table).count() < table.num_rows  # the behaviour worked around
    assert lakehouse._frame("silver.events", table, ["event_id"]).count() == table.num_rows == 120


def test_a_reusable_batch_is_known_empty_only_when_it_holds_no_rows(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    rows = spark.createDataFrame([("e1",)], "event_id string")

    assert not lakehouse.known_empty(lakehouse.reusable(rows))
    assert lakehouse.known_empty(lakehouse.reusable(rows.filter("false")))
    # A frame that did not come from reusable: not known without a Spark job, so not known empty.
    assert not lakehouse.known_empty(rows.filter("false"))


def test_a_large_micro_batch_is_handed_back_as_a_scratch_file_removed_when_the_next_batch_binds(spark, tmp_path):
    from datetime import UTC, datetime

    from lakehouse_local import tables

    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    count = 20_000
    rows = pa.table({
        "event_id": [f"e{i:06d}" for i in range(count)],
        "value": ["x" * 60] * count,
        "event_time": pa.array([datetime(2026, 11, 20, 12, tzinfo=UTC)] * count, pa.timestamp("us", tz="UTC")),
        "n": pa.array(range(count), pa.int64()),
    })
    assert rows.nbytes >= tables.SCRATCH_MIN_BYTES
    source = lakehouse._dataframe(rows)  # what a micro-batch would be: rows in Spark
    scratch = tmp_path / "lh" / tables.SCRATCH_FOLDER
    # A folder left by a process that has ended goes at the next bind; one of a live process stays.
    ended = scratch / "999999999-gone"
    live = scratch / f"{os.getppid()}-running"
    for folder in (ended, live):
        folder.mkdir(parents=True)

    bound = lakehouse.bind(spark)
    assert not ended.exists() and live.exists()
    frame = bound.reusable(source)

    assert frame.schema == source.schema  # the rows' own schema, not Parquet's inference
    assert_df_equality(frame, source, ignore_row_order=True)
    (folder,) = [f for f in scratch.iterdir() if f != live]
    assert folder.name.startswith(f"{os.getpid()}-") and list(folder.glob("*.parquet"))
    # Small rows stay local rows: no file.
    small = bound.reusable(spark.createDataFrame([("e1",)], "event_id string"))
    assert small.count() == 1 and len(list(folder.glob("*.parquet"))) == 1

    lakehouse.bind(spark)  # the next micro-batch
    assert not folder.exists() and live.exists()


def _versions(lakehouse: FolderLakehouse, *names: str) -> dict[str, int]:
    from deltalake import DeltaTable

    return {name: DeltaTable(lakehouse.path(name)).version() for name in names}


def _bronze_line(spark):
    return spark.sql(
        "SELECT 'line' AS value, 's3://b/k.json' AS _source_file, 10L AS _file_size, current_timestamp() AS "
        "_file_modification_time, 1L AS _line_number, current_timestamp() AS _ingested_at, 'r1' AS _record_id"
    )


def test_writes_given_together_commit_at_the_end_of_the_block_in_the_order_given(spark, tmp_path, monkeypatch):
    from deltalake import DeltaTable

    committed = []
    for name in ("write", "merge"):
        original = getattr(delta_rs, name)
        monkeypatch.setattr(delta_rs, name, lambda path, *a, _f=original, **k: committed.append(path) or _f(path, *a, **k))
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    for spec in (catalog.BRONZE_EVENTS, catalog.spec("ops.pipeline_metrics")):
        lakehouse.create_table(spec)
    bronze = _bronze_line(spark)
    metrics = spark.createDataFrame([_metrics_row(4, 10)], catalog.spec("ops.pipeline_metrics").struct())
    before = _versions(lakehouse, "bronze.events", "ops.pipeline_metrics")

    with lakehouse.together() as writes:
        writes.append(bronze, "bronze.events", app_id="b", batch_id=4)
        writes.upsert(metrics, "ops.pipeline_metrics", app_id="m", batch_id=4)
        assert _versions(lakehouse, "bronze.events", "ops.pipeline_metrics") == before  # nothing yet

    after = _versions(lakehouse, "bronze.events", "ops.pipeline_metrics")
    assert after == {name: version + 1 for name, version in before.items()}
    assert committed == [lakehouse.path("bronze.events"), lakehouse.path("ops.pipeline_metrics")]
    assert DeltaTable(lakehouse.path("bronze.events")).to_pyarrow_table().column("value").to_pylist() == ["line"]
    # Outside a block, a write runs as it is called; a replayed batch id is skipped either way.
    assert lakehouse.append(bronze, "bronze.events", app_id="b", batch_id=4) is False
    with lakehouse.together() as writes:
        writes.append(bronze, "bronze.events", app_id="b", batch_id=4)
    assert _versions(lakehouse, "bronze.events")["bronze.events"] == after["bronze.events"]


def test_no_write_given_together_commits_when_the_block_or_one_of_its_sources_fails(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    lakehouse.create_table(catalog.BRONZE_EVENTS)
    good = _bronze_line(spark)
    # Fails when its rows are computed (under ANSI SQL a CAST to BIGINT refuses the text 'line').
    bad = good.withColumn("_line_number", F.expr("CAST(value AS BIGINT)"))
    before = _versions(lakehouse, "bronze.events")

    try:
        with lakehouse.together() as writes:
            writes.append(good, "bronze.events", app_id="b", batch_id=1)
            raise RuntimeError("the batch failed part-way")
    except RuntimeError:
        pass
    try:
        with lakehouse.together() as writes:
            writes.append(good, "bronze.events", app_id="b", batch_id=2)
            writes.append(bad, "bronze.events", app_id="b2", batch_id=2)
    except Exception as error:  # noqa: BLE001 - Spark's error class differs between classic and Connect
        assert "CAST" in str(error) or "cast" in str(error)
    else:
        raise AssertionError("the bad source did not fail")

    assert _versions(lakehouse, "bronze.events") == before


def test_tables_are_created_with_auto_compaction_and_micro_batches_do_not_pile_up_files(spark, tmp_path):
    from deltalake import DeltaTable

    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    lakehouse.create_table(catalog.PIPELINE_METRICS)
    path = lakehouse.path("ops.pipeline_metrics")
    assert DeltaTable(path).metadata().configuration == catalog.TABLE_PROPERTIES

    batches = delta_rs.AUTO_COMPACT_MIN_FILES + 5
    for batch_id in range(batches):  # one metrics row per micro-batch, one MERGE each
        lakehouse.upsert_rows([_metrics_row(batch_id, batch_id)], "ops.pipeline_metrics", app_id="a", batch_id=batch_id)

    assert len(DeltaTable(path).file_uris()) < delta_rs.AUTO_COMPACT_MIN_FILES
    got = lakehouse.read("ops.pipeline_metrics").select("batch_id", "rows_in").collect()
    assert sorted(tuple(r) for r in got) == [(n, n) for n in range(batches)]


def _compiled_classes(spark) -> int:
    """How many classes Spark has compiled for generated code in this JVM so far."""
    return spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME().getCount()


def test_accumulate_adds_a_batch_once_and_the_next_batch_reuses_the_compiled_code(spark, tmp_path):
    from deltalake import DeltaTable

    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    lakehouse.create_table(catalog.EVENTS_PER_MINUTE)
    name, add = "gold.events_per_minute", ["events"]

    def increment(events: int):
        return spark.sql(
            "SELECT TIMESTAMP'2026-05-01 10:00:00' AS window_start, TIMESTAMP'2026-05-01 10:01:00' AS window_end, "
            f"'view' AS action, {events}L AS events, DATE'2026-05-01' AS event_date"
        )

    def stored() -> list[tuple[int, int]]:
        rows = DeltaTable(lakehouse.path(name)).to_pyarrow_table().to_pylist()
        return [(row["events"], row["_batch_id"]) for row in rows]

    lakehouse.accumulate(increment(3), name, add=add, batch_id=7)
    lakehouse.accumulate(increment(3), name, add=add, batch_id=7)  # a replay adds nothing
    assert stored() == [(3, 7)]
    # The batch id is not a constant of the generated code: batch 8 runs the classes batch 7 compiled.
    compiled = _compiled_classes(spark)
    lakehouse.accumulate(increment(3), name, add=add, batch_id=8)
    assert stored() == [(6, 8)]
    assert _compiled_classes(spark) == compiled


def test_rows_the_driver_holds_are_appended_as_they_are_without_a_spark_job(spark, tmp_path, monkeypatch):
    from deltalake import DeltaTable

    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    lakehouse.create_table(catalog.GOLD_KEYS)
    # The table's columns out of order, and one more: a micro-batch's new member keys as Gold holds them.
    keys = lakehouse.reusable(spark.sql(
        "SELECT 7L AS batch_id, 'u1' AS member, '[]' AS group_key, DATE'2026-05-01' AS event_date, 'users' AS metric, "
        "'[\"users\",\"2026-05-01\",\"[]\",\"u1\"]' AS key, 'x' AS extra"
    ))

    def no_job(*_args, **_kwargs):
        raise AssertionError("a Spark job ran for rows the driver holds")

    monkeypatch.setattr(type(keys), "toArrow", no_job)
    with lakehouse.together() as writes:
        writes.append(keys, "ops.gold_keys", app_id="k", batch_id=7)
    monkeypatch.undo()

    written = DeltaTable(lakehouse.path("ops.gold_keys")).to_pyarrow_table()
    assert written.column_names == catalog.GOLD_KEYS.column_names
    assert written.to_pylist() == [{
        "key": '["users","2026-05-01","[]","u1"]', "metric": "users", "event_date": date(2026, 5, 1),
        "group_key": "[]", "member": "u1", "batch_id": 7,
    }]
    # Held rows whose types differ from the table's are conformed by Spark, as any other frame.
    narrow = lakehouse.reusable(spark.sql(
        "SELECT 'k2' AS key, 'users' AS metric, DATE'2026-05-01' AS event_date, '[]' AS group_key, 'u2' AS member, "
        "8 AS batch_id"
    ))
    lakehouse.append(narrow, "ops.gold_keys", app_id="k", batch_id=8)
    batch_ids = DeltaTable(lakehouse.path("ops.gold_keys")).to_pyarrow_table().column("batch_id")
    assert batch_ids.type == pa.int64() and sorted(batch_ids.to_pylist()) == [7, 8]
