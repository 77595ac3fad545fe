"""The ``delta`` Spark data source: batch and streaming reads and writes over delta-rs.

Every table the sink writes is read back with ``deltalake.DeltaTable`` directly (an independent
reader) and compared exactly: values, Arrow types and row count.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles

from lakehouse_local import delta_rs
from lakehouse_local.sources.delta import (
    DeltaSourceError,
    DeltaStreamReader,
    group_files,
    read_files,
    snapshot_files,
    table_spark_schema,
)

TS = pa.timestamp("us", tz="UTC")

EVENTS = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("user_id", T.IntegerType(), metadata={"comment": "pseudonymous user"}),
        T.StructField("event_time", T.TimestampType()),
    ]
)
EVENTS_ARROW = pa.schema([("event_id", pa.string()), ("user_id", pa.int32()), ("event_time", TS)])


def delta_rows(path: Path | str, *, sort_by: str = "event_id") -> pa.Table:
    """The table as delta-rs reads it, sorted (pyarrow's local filesystem: delta-rs's own Python
    filesystem handler can abort the interpreter at exit)."""
    table = DeltaTable(str(path)).to_pyarrow_table(filesystem=SubTreeFileSystem(str(path), LocalFileSystem()))
    return table.sort_by(sort_by)


def event_rows(ids: range | list[int], *, day: int = 20) -> list[tuple]:
    return [(f"e{i:03d}", i % 7, datetime(2026, 11, day, i % 24, tzinfo=UTC)) for i in ids]


def event_table(ids: range | list[int], *, day: int = 20) -> pa.Table:
    rows = event_rows(ids, day=day)
    return pa.Table.from_pylist([dict(zip(EVENTS_ARROW.names, r, strict=True)) for r in rows], schema=EVENTS_ARROW)


def assert_table(actual: pa.Table, expected: pa.Table) -> None:
    """Same Arrow types (ignoring field metadata), same rows, same count."""
    assert [(f.name, f.type) for f in actual.schema] == [(f.name, f.type) for f in expected.schema]
    assert actual.num_rows == expected.num_rows
    assert actual.to_pylist() == expected.to_pylist()


def spark_rows(df) -> pa.Table:
    return pa.Table.from_pylist([r.asDict() for r in df.orderBy("event_id").collect()], schema=EVENTS_ARROW)


def run_available_now(reader, path: str, checkpoint: Path, *, output: str = "append"):
    query = (
        reader.writeStream.format("delta")
        .outputMode(output)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(path)
    )
    query.awaitTermination(120)
    assert not query.isActive
    if query.exception():
        raise query.exception()
    return query


def input_rows_per_batch(query) -> dict[int, int]:
    return {p["batchId"]: p["numInputRows"] for p in query.recentProgress}


def noise_table(rows: int, *, start: int = 0) -> pa.Table:
    """Rows that do not compress: a Parquet file of them is about 300 bytes a row."""
    return pa.table({
        "n": pa.array(range(start, start + rows), pa.int64()),
        "text": [os.urandom(150).hex() for _ in range(rows)],
    })


def query_id(checkpoint: Path) -> str:
    return json.loads((checkpoint / "metadata").read_text())["id"]


# --------------------------------------------------------------------------- batch


def test_partition_values_of_each_type_are_restored_from_the_log(tmp_path):
    path = str(tmp_path / "t")
    data = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "at": pa.array([datetime(2026, 11, 20, 13, tzinfo=UTC), None, datetime(2026, 11, 21, tzinfo=UTC)], TS),
            "day": pa.array([datetime(2026, 11, 20).date(), datetime(2026, 11, 21).date(), None]),
            "ok": [True, False, None],
            "n": pa.array([7, None, 9], pa.int32()),
        }
    )
    delta_rs.write(path, data, partition_by=["at", "day", "ok", "n"])
    schema = table_spark_schema(path)

    _, _, files = snapshot_files(path)
    rows = pa.Table.from_batches([b for part in group_files(path, files) for b in read_files(part, schema)])

    assert_table(rows.sort_by("id"), data)


def test_a_read_of_fewer_files_than_cores_splits_large_files_by_row_group_and_loses_no_row(tmp_path, monkeypatch):
    from lakehouse_local.sources.delta import read as delta_read

    path = str(tmp_path / "t")
    monkeypatch.setattr(delta_rs, "ROW_GROUP_ROWS", 1_000)
    big = pa.table({"n": pa.array(range(5_500), pa.int64()), "text": [f"line {i} " * 20 for i in range(5_500)]})
    delta_rs.write(path, big)  # one file of six row groups
    delta_rs.write(path, big.slice(0, 10))  # a small file: read whole
    schema = table_spark_schema(path)
    _, _, files = snapshot_files(path)
    monkeypatch.setattr(delta_read, "MIN_SPLIT_BYTES", min(f.size for f in files) + 1)

    parts = group_files(path, files, cores=4)
    assert [p.row_groups for p in parts] == [(0, 1), (2,), (3,), (4, 5), None]  # up to 4 tasks for the large file
    assert [sum(len(b) for b in read_files(p, schema)) for p in parts[:4]] == [2_000, 1_000, 1_000, 1_500]
    rows = pa.Table.from_batches([b for p in parts for b in read_files(p, schema)])
    assert sorted(rows.column("n").to_pylist()) == sorted([*range(5_500), *range(10)])

    # As many files as cores: a whole file per task.
    assert [(len(p.files), p.row_groups) for p in group_files(path, files, cores=2)] == [(1, None), (1, None)]
    assert len(group_files(path, files[:1], cores=2)) == 2


def test_a_read_of_many_small_files_gives_every_core_a_task_in_file_order(tmp_path):
    from lakehouse_local.sources.delta.log import DataFile
    from lakehouse_local.sources.delta.read import MAX_PARTITION_BYTES

    mib = 1024 * 1024
    files = [DataFile(path=f"f{i}.parquet", size=mib + i, partition_values=(), modification_time=0) for i in range(28)]
    parts = group_files("t", files, cores=2)
    assert [len(p.files) for p in parts] == [14, 14]
    assert [f for p in parts for f in p.files] == files  # contiguous, in order

    # Unequal sizes: bytes (with each file's open cost) stay about equal, whole files only.
    uneven = [DataFile(path=f"u{i}.parquet", size=s * mib, partition_values=(), modification_time=0) for i, s in enumerate([40, 1, 1, 1, 30, 1])]
    assert [[f.path for f in p.files] for p in group_files("t", uneven, cores=2)] == [
        ["u0.parquet", "u1.parquet"], ["u2.parquet", "u3.parquet", "u4.parquet", "u5.parquet"]
    ]

    # A read larger than a partition may hold: more partitions than cores, none above the limit by much.
    large = [DataFile(path=f"l{i}.parquet", size=60 * mib, partition_values=(), modification_time=0) for i in range(10)]
    parts = group_files("t", large, cores=2)
    assert len(parts) == 5
    assert all(sum(f.size for f in p.files) <= MAX_PARTITION_BYTES for p in parts)


def test_stream_offsets_split_versions_by_file_count_and_stop_at_the_latest_version(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.write(path, event_table(range(0, 3)), partition_by=["event_id"])  # version 0: three files
    reader = DeltaStreamReader(path, table_spark_schema(path), {})

    def files(start: dict, end: dict) -> list[str]:
        return [f.path.split("/")[0] for part in reader.partitions(start, end) for f in part.files]

    start = reader.initialOffset()
    assert start["reservoirVersion"] == -1  # not pinned until the first batch
    first = reader.latestOffset(start, ReadMaxFiles(2))
    assert (first["reservoirVersion"], first["index"], first["isStartingVersion"]) == (0, 1, True)
    assert len(files(start, first)) == 2

    delta_rs.write(path, event_table(range(3, 6)))  # version 1: three more files
    second = reader.latestOffset(first, ReadMaxFiles(2))
    assert (second["reservoirVersion"], second["index"], second["isStartingVersion"]) == (1, 0, False)
    assert len(files(first, second)) == 2  # the snapshot's last file and the version's first

    third = reader.latestOffset(second, ReadAllAvailable())
    assert (third["reservoirVersion"], third["index"]) == (1, 2)
    assert reader.latestOffset(third, ReadMaxFiles(2)) == third  # nothing new: no batch
    assert sorted(files(start, first) + files(first, second) + files(second, third)) == [
        f"event_id=e{i:03d}" for i in range(6)
    ]


def test_a_stream_counts_each_piece_of_a_large_file_as_a_file_and_reads_every_row_once(tmp_path, monkeypatch):
    from lakehouse_local.sources.delta import read as delta_read

    path = str(tmp_path / "t")
    monkeypatch.setattr(delta_rs, "ROW_GROUP_ROWS", 1_000)
    delta_rs.write(path, noise_table(5_500))  # version 0: one file of six row groups of about 300 KB
    delta_rs.write(path, noise_table(10, start=5_500))  # version 1: a small file
    _, _, (large,) = snapshot_files(path, 0)
    monkeypatch.setattr(delta_read, "CUT_FILES_OVER_BYTES", large.size - 1)
    monkeypatch.setattr(delta_read, "PIECE_BYTES", large.size * 2 // 5)

    cut = delta_read.pieces(path, [large])
    assert [p.row_groups for p in cut] == [(0, 1), (2, 3), (4, 5)]  # two row groups of 1,000 rows fit, three do not
    assert sum(p.size for p in cut) <= large.size and min(p.size for p in cut) > 0
    assert delta_read.pieces(path, [large], over_bytes=large.size) == [large]  # not larger than the limit: whole

    def batches(reader: DeltaStreamReader) -> list[list[int]]:
        offsets, start = [], reader.initialOffset()
        while (end := reader.latestOffset(start, ReadMaxFiles(1))) != start:
            schema = table_spark_schema(path)
            offsets.append([len(b) for part in reader.partitions(start, end) for b in read_files(part, schema)])
            start = end
        return offsets

    first = batches(DeltaStreamReader(path, table_spark_schema(path), {"startingVersion": "0"}))
    assert [sum(b) for b in first] == [2_000, 2_000, 1_500, 10]  # one piece (or file) per batch
    # Another reader (a restart) cuts the same pieces: the offsets point at the same rows.
    assert batches(DeltaStreamReader(path, table_spark_schema(path), {"startingVersion": "0"})) == first


def test_max_bytes_per_trigger_takes_files_until_the_batch_holds_the_limit_and_at_least_one(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.create_table(path, EVENTS_ARROW, partition_by=["event_id"])
    delta_rs.write(path, event_table(range(0, 7)))  # version 1: seven files of about the same size
    _, _, files = snapshot_files(path)
    size = max(f.size for f in files)

    def taken(max_bytes: int, limit: ReadMaxFiles | ReadAllAvailable | None = None) -> list[int]:
        limit = limit or ReadMaxFiles(1000)
        reader = DeltaStreamReader(path, table_spark_schema(path), {"startingVersion": "1",
                                                                    "maxBytesPerTrigger": str(max_bytes)})
        counts, start = [], reader.initialOffset()
        while (end := reader.latestOffset(start, limit)) != start:
            counts.append(sum(len(p.files) for p in reader.partitions(start, end)))
            start = end
        return counts

    assert taken(2 * size + size // 2) == [3, 3, 1]  # the third file crosses the limit and is still taken
    assert taken(1) == [1] * 7  # a file larger than the limit is taken alone
    assert taken(1, ReadMaxFiles(2)) == [1] * 7
    assert taken(100 * size, ReadMaxFiles(2)) == [2, 2, 2, 1]  # whichever limit is reached first
    assert taken(1, ReadAllAvailable()) == [7]  # Trigger.Once reads everything
    with pytest.raises(DeltaSourceError, match=r"maxBytesPerTrigger must be a positive byte size.*'lots'"):
        DeltaStreamReader(path, table_spark_schema(path), {"maxBytesPerTrigger": "lots"})


def test_batch_write_append_and_overwrite_round_trip(spark, tmp_path):
    path = str(tmp_path / "bronze")
    spark.createDataFrame(event_rows(range(0, 5)), EVENTS).write.format("delta").mode("append").save(path)
    spark.createDataFrame(event_rows(range(5, 8)), EVENTS).write.format("delta").mode("append").save(path)

    assert_table(delta_rows(path), event_table(range(0, 8)))
    assert DeltaTable(path).version() == 1  # one commit per write
    assert_table(spark_rows(spark.read.format("delta").load(path)), event_table(range(0, 8)))

    spark.createDataFrame(event_rows(range(20, 22)), EVENTS).write.format("delta").mode("overwrite").save(path)
    assert_table(delta_rows(path), event_table(range(20, 22)))

    once = spark.createDataFrame(event_rows([30]), EVENTS).write.format("delta").mode("append")
    once.option("txnAppId", "backfill").option("txnVersion", 4).save(path)
    once.option("txnAppId", "backfill").option("txnVersion", 4).save(path)  # already written: skipped
    assert_table(delta_rows(path), event_table([20, 21, 30]))
    assert_table(spark_rows(spark.read.format("delta").option("versionAsOf", 1).load(path)), event_table(range(0, 8)))


def test_column_comments_reach_the_delta_schema_and_come_back(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.createDataFrame(event_rows(range(2)), EVENTS).write.format("delta").mode("append").save(path)

    fields = {f["name"]: f["metadata"] for f in json.loads(DeltaTable(path).schema().to_json())["fields"]}
    assert fields == {"event_id": {}, "user_id": {"comment": "pseudonymous user"}, "event_time": {}}
    schema = spark.read.format("delta").load(path).schema
    assert schema["user_id"].metadata == {"comment": "pseudonymous user"}
    assert [f.dataType for f in schema] == [T.StringType(), T.IntegerType(), T.TimestampType()]


def test_batch_write_merge_schema_adds_a_column(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.createDataFrame(event_rows([1]), EVENTS).write.format("delta").mode("append").save(path)
    wider = spark.createDataFrame(event_rows([2]), EVENTS).withColumn("page", F.lit("/home"))

    with pytest.raises(Exception, match=r"(?i)schema"):
        wider.write.format("delta").mode("append").save(path)
    wider.write.format("delta").mode("append").option("mergeSchema", "true").save(path)

    table = delta_rows(path)
    assert table.column("page").to_pylist() == [None, "/home"]
    assert spark.read.format("delta").load(path).orderBy("event_id").select("page").collect()[0].page is None

    narrow = spark.createDataFrame([("e9",)], "event_id string")
    narrow.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    assert delta_rows(path).to_pydict() == {"event_id": ["e9"]}


def test_batch_read_of_a_partitioned_table_restores_partition_columns(spark, tmp_path):
    path = str(tmp_path / "t")
    data = pa.table(
        {
            "event_id": ["a", "b", "c"],
            "event_date": pa.array([datetime(2026, 11, 20).date(), None, datetime(2026, 11, 21).date()]),
            "country": ["DE", "FR", None],
            "n": pa.array([1, 2, 3], pa.int64()),
        }
    )
    delta_rs.write(path, data, partition_by=["event_date", "country"])

    df = spark.read.format("delta").load(path)

    assert [f.name for f in df.schema] == ["event_id", "event_date", "country", "n"]
    assert [tuple(r) for r in df.orderBy("event_id").collect()] == [tuple(r.values()) for r in data.to_pylist()]


def test_missing_table_and_unknown_options_fail_clearly(spark, tmp_path):
    missing = str(tmp_path / "silver" / "events")
    with pytest.raises(Exception, match=r"table not found at .*silver/events.*upstream notebook"):
        spark.read.format("delta").load(missing).collect()

    path = str(tmp_path / "t")
    delta_rs.write(path, event_table(range(2)))
    with pytest.raises(Exception, match=r"option\(s\) readChangeFeed not supported"):
        spark.read.format("delta").option("readChangeFeed", "true").load(path).collect()
    with pytest.raises(Exception, match=r"option\(s\) ignoreChanges not supported"):
        spark.readStream.format("delta").option("ignoreChanges", "true").load(path).writeStream.format("delta").option(
            "checkpointLocation", str(tmp_path / "ck")
        ).trigger(availableNow=True).start(str(tmp_path / "out")).awaitTermination(60)


# --------------------------------------------------------------------------- streaming


def test_stream_reads_the_snapshot_then_new_versions_and_ignores_compaction(spark, tmp_path):
    src, dst, checkpoint = str(tmp_path / "src"), str(tmp_path / "dst"), tmp_path / "ck"
    for start in (0, 3, 6):  # three versions, one file each
        delta_rs.write(src, event_table(range(start, start + 3)))
    reader = spark.readStream.format("delta").option("maxFilesPerTrigger", 1).load(src)

    query = run_available_now(reader, dst, checkpoint)
    assert input_rows_per_batch(query) == {0: 3, 1: 3, 2: 3}  # the starting snapshot, one file per batch
    assert_table(delta_rows(dst), event_table(range(0, 9)))

    DeltaTable(src).optimize.compact()  # rewrites the three files as one: no data change
    delta_rs.write(src, event_table([9, 10]), partition_by=None)
    delta_rs.merge(src, event_table([11, 12]), keys=["event_id"], when_matched="ignore")  # inserts only
    query = run_available_now(reader, dst, checkpoint)

    assert input_rows_per_batch(query) == {3: 2, 4: 2}
    assert_table(delta_rows(dst), event_table(range(0, 13)))
    assert DeltaTable(dst).transaction_version(query_id(checkpoint)) == 4
    assert DeltaTable(dst).version() == 4  # one commit per micro-batch


def test_max_files_per_trigger_splits_a_large_version_under_available_now(spark, tmp_path):
    src, dst, checkpoint = str(tmp_path / "src"), str(tmp_path / "dst"), tmp_path / "ck"
    delta_rs.create_table(src, EVENTS_ARROW, partition_by=["event_id"])
    delta_rs.write(src, event_table(range(0, 5)))  # version 1: five files, one per partition

    reader = spark.readStream.format("delta").option("startingVersion", 1).option("maxFilesPerTrigger", 2)
    query = run_available_now(reader.load(src), dst, checkpoint)

    assert input_rows_per_batch(query) == {0: 2, 1: 2, 2: 1}
    assert_table(delta_rows(dst), event_table(range(0, 5)))


def test_a_compacted_file_streams_in_pieces_under_available_now(spark, tmp_path):
    src, dst, checkpoint = str(tmp_path / "src"), str(tmp_path / "dst"), tmp_path / "ck"
    delta_rs.write(src, noise_table(240_000))  # one file of about 73 MiB: five pieces of at most 16 MiB
    reader = spark.readStream.format("delta").option("maxFilesPerTrigger", 1)
    query = run_available_now(reader.load(src), dst, checkpoint)

    # Row groups of 16,384 rows, of about 5 MiB: three a piece.
    assert input_rows_per_batch(query) == {0: 49_152, 1: 49_152, 2: 49_152, 3: 49_152, 4: 240_000 - 4 * 49_152}
    assert delta_rows(dst, sort_by="n").column("n").to_pylist() == list(range(240_000))


def test_change_commits_stop_the_stream_unless_skipped(spark, tmp_path):
    src, dst, checkpoint = str(tmp_path / "src"), str(tmp_path / "dst"), tmp_path / "ck"
    delta_rs.write(src, event_table(range(0, 2)))  # version 0: before startingVersion
    delta_rs.write(src, event_table(range(2, 4)))
    delta_rs.merge(src, event_table([3, 4]), keys=["event_id"])  # version 2 updates e003: a change commit
    delta_rs.write(src, event_table(range(5, 6)))

    reader = spark.readStream.format("delta").option("startingVersion", 1)
    with pytest.raises(Exception, match=r"commit 2 updated or deleted existing rows.*skipChangeCommits"):
        run_available_now(reader.load(src), dst, checkpoint)
    assert_table(delta_rows(dst), event_table(range(2, 4)))  # what came before the change was delivered

    run_available_now(reader.option("skipChangeCommits", "true").load(src), dst, checkpoint)
    assert_table(delta_rows(dst), event_table([2, 3, 5]))


def test_stream_stopped_mid_way_restarts_from_its_checkpoint(spark, tmp_path):
    src, dst, checkpoint = str(tmp_path / "src"), str(tmp_path / "dst"), tmp_path / "ck"
    for start in range(0, 36, 3):  # twelve versions: a starting snapshot of twelve files
        delta_rs.write(src, event_table(range(start, start + 3)))
    query = (
        spark.readStream.format("delta")
        .option("maxFilesPerTrigger", 1)
        .load(src)
        .writeStream.format("delta")
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="100 milliseconds")
        .start(dst)
    )
    try:
        deadline = time.monotonic() + 60
        while not (delta_rs.table_exists(dst) and DeltaTable(dst).version() >= 2):
            assert time.monotonic() < deadline and query.isActive, "the stream did not get going"
            time.sleep(0.05)
    finally:
        query.stop()
    assert 0 < delta_rows(dst).num_rows < 36

    delta_rs.write(src, event_table(range(100, 103)))
    run_available_now(spark.readStream.format("delta").load(src), dst, checkpoint)

    assert_table(delta_rows(dst), event_table(list(range(0, 36)) + [100, 101, 102]))


def test_replayed_batch_is_not_committed_twice(spark, tmp_path):
    """A crash after the Delta commit but before Spark's commit log: Spark replays the batch."""
    src, dst, checkpoint = str(tmp_path / "src"), str(tmp_path / "dst"), tmp_path / "ck"
    delta_rs.write(src, event_table(range(0, 3)))
    delta_rs.write(src, event_table(range(3, 5)))
    query = (
        spark.readStream.format("delta")
        .load(src)
        .writeStream.format("delta")
        .option("checkpointLocation", str(checkpoint))
        .trigger(once=True)
        .start(dst)
    )
    query.awaitTermination(120)
    assert_table(delta_rows(dst), event_table(range(0, 5)))

    for name in ("0", ".0.crc"):  # batch 0 is in the table, not in Spark's commit log
        (checkpoint / "commits" / name).unlink(missing_ok=True)
    delta_rs.write(src, event_table(range(5, 7)))  # the source moved on meanwhile
    run_available_now(spark.readStream.format("delta").load(src), dst, checkpoint)

    # batch 0 replayed the same snapshot and was skipped; batch 1 read the new version
    assert_table(delta_rows(dst), event_table(range(0, 7)))
    assert DeltaTable(dst).version() == 1
    assert DeltaTable(dst).transaction_version(query_id(checkpoint)) == 1


def test_stream_sink_refuses_the_complete_output_mode(spark, tmp_path):
    src = str(tmp_path / "src")
    delta_rs.write(src, event_table(range(0, 3)))
    counts = spark.readStream.format("delta").load(src).groupBy("user_id").count()

    with pytest.raises(Exception, match=r"complete output mode is not supported"):
        run_available_now(counts, str(tmp_path / "dst"), tmp_path / "ck", output="complete")
