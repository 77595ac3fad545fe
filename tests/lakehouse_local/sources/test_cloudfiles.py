"""The local ``cloudFiles`` source: Auto Loader semantics on open-source Spark.

Streams run with ``trigger(availableNow=True)`` into a ``foreachBatch`` sink that keeps every
micro-batch by batch id, so batch counts and exactly-once delivery are asserted directly.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import types as T

from lakehouse_local.sources.cloudfiles import (
    METADATA_TYPE,
    CloudFilesOptions,
    parse_byte_size,
)
from lakehouse_local.storage import FileInfo

EVENT_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("schema_version", T.IntegerType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("action", T.StringType()),
        T.StructField("_rescued_data", T.StringType()),
        T.StructField("_metadata", METADATA_TYPE),
    ]
)


def event(n: int, **extra) -> dict:
    return {
        "event_id": f"e{n}",
        "schema_version": 1,
        "event_time": f"2024-05-01T10:00:{n:02d}Z",
        "action": "view",
        **extra,
    }


def jsonl(*events: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def write_local(folder: Path, name: str, text: str, *, mtime_s: int | None = None, gz: bool = False) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    if mtime_s is not None:
        os.utime(path, (mtime_s, mtime_s))
    return path


def run_stream(spark, path: str, checkpoint: Path, *, schema=EVENT_SCHEMA, fail_at_batch: int | None = None, **options):
    """Run one availableNow query; returns {batch_id: sorted rows as dicts}."""
    batches: dict[int, list[dict]] = {}

    def sink(df, batch_id: int) -> None:
        batches[batch_id] = sorted((row.asDict(recursive=True) for row in df.collect()), key=_row_key)
        if batch_id == fail_at_batch:
            raise RuntimeError(f"sink failure at batch {batch_id}")

    reader = spark.readStream.format("cloudFiles").option("cloudFiles.schemaLocation", str(checkpoint / "schema"))
    for key, value in options.items():
        reader = reader.option(key.replace("__", "."), value)
    if schema is not None:
        reader = reader.schema(schema)
    query = (
        reader.load(path)
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(checkpoint / "state"))
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination()
    finally:
        query.stop()
    return batches


def _row_key(row: dict):
    return (str(row.get("_metadata", {}).get("file_path")), str(row.get("event_id") or row.get("value")))


def ids(batches: dict[int, list[dict]]) -> list[list[str]]:
    return [[row["event_id"] for row in batches[batch_id]] for batch_id in sorted(batches)]


JSON = {"cloudFiles__format": "json"}


# --------------------------------------------------------------------------------------------------
# Formats, _metadata, gzip


def test_text_batch_read_with_gzip_and_metadata(spark, tmp_path):
    landing = tmp_path / "landing"
    plain = write_local(landing, "dt=2024-05-01/a.txt", "first\r\nsecond\n\nlast", mtime_s=1_714_557_600)
    zipped = write_local(landing, "dt=2024-05-01/b.txt.gz", "zipped one\nzipped two\n", mtime_s=1_714_557_660, gz=True)
    write_local(landing, "_SUCCESS", "")

    df = spark.read.format("cloudFiles").option("cloudFiles.format", "text").load(str(landing))

    assert df.schema == T.StructType(
        [T.StructField("value", T.StringType()), T.StructField("_metadata", METADATA_TYPE)]
    )
    rows = sorted((r.value, r._metadata.asDict()) for r in df.collect())
    meta_a = {
        "file_path": plain.as_uri(),
        "file_name": "a.txt",
        "file_size": plain.stat().st_size,
        "file_modification_time": datetime(2024, 5, 1, 10, 0),
    }
    meta_b = {
        "file_path": zipped.as_uri(),
        "file_name": "b.txt.gz",
        "file_size": zipped.stat().st_size,
        "file_modification_time": datetime(2024, 5, 1, 10, 1),
    }
    assert rows == sorted(
        [
            ("first", meta_a),
            ("second", meta_a),
            ("", meta_a),
            ("last", meta_a),
            ("zipped one", meta_b),
            ("zipped two", meta_b),
        ]
    )


def test_json_stream_from_s3_rescues_unknown_fields_and_type_mismatches(spark, s3, bucket, tmp_path):
    clean = jsonl(event(1), event(2))
    messy = jsonl(event(3, campaign="spring", schema_version="one"), event(4))
    s3.put_object(Bucket=bucket, Key="landing/hr=10/clean.jsonl", Body=clean.encode())
    s3.put_object(Bucket=bucket, Key="landing/hr=10/messy.jsonl.gz", Body=gzip.compress(messy.encode()))
    heads = {
        key: s3.head_object(Bucket=bucket, Key=f"landing/hr=10/{key}") for key in ("clean.jsonl", "messy.jsonl.gz")
    }

    batches = run_stream(spark, f"s3://{bucket}/landing", tmp_path, **JSON)

    assert list(batches) == [0]
    rows = {row["event_id"]: row for row in batches[0]}
    assert sorted(rows) == ["e1", "e2", "e3", "e4"]
    messy_path = f"s3://{bucket}/landing/hr=10/messy.jsonl.gz"
    assert rows["e3"]["schema_version"] is None
    assert json.loads(rows["e3"]["_rescued_data"]) == {
        "campaign": "spring",
        "schema_version": "one",
        "_file_path": messy_path,
    }
    assert rows["e3"]["_rescued_data"] == (
        f'{{"schema_version":"one","campaign":"spring","_file_path":"{messy_path}"}}'
    )
    assert [rows[e]["_rescued_data"] for e in ("e1", "e2", "e4")] == [None, None, None]
    assert rows["e1"]["event_time"] == datetime(2024, 5, 1, 10, 0, 1)
    assert rows["e4"]["schema_version"] == 1
    for key, head in heads.items():
        row = rows["e1"] if key == "clean.jsonl" else rows["e4"]
        assert row["_metadata"] == {
            "file_path": f"s3://{bucket}/landing/hr=10/{key}",
            "file_name": key,
            "file_size": head["ContentLength"],
            "file_modification_time": head["LastModified"].astimezone(UTC).replace(tzinfo=None, microsecond=0),
        }


def test_malformed_lines_go_to_corrupt_record_or_rescued_data(spark, tmp_path):
    landing = tmp_path / "landing"
    write_local(landing, "a.jsonl", '{"event_id": "e1"}\n{not json\n"just a string"\n')
    with_corrupt = T.StructType(
        [
            T.StructField("event_id", T.StringType()),
            T.StructField("_corrupt_record", T.StringType()),
            T.StructField("_rescued_data", T.StringType()),
        ]
    )
    without_corrupt = T.StructType(
        [T.StructField("event_id", T.StringType()), T.StructField("_rescued_data", T.StringType())]
    )

    def read(schema):
        df = spark.read.format("cloudFiles").option("cloudFiles.format", "json").schema(schema).load(str(landing))
        return sorted((tuple(r) for r in df.collect()), key=str)

    assert read(with_corrupt) == sorted(
        [("e1", None, None), (None, "{not json", None), (None, '"just a string"', None)], key=str
    )
    path = (landing / "a.jsonl").as_uri()
    assert read(without_corrupt) == sorted(
        [
            ("e1", None),
            (None, json.dumps({"_corrupt_record": "{not json", "_file_path": path}, separators=(",", ":"))),
            (None, json.dumps({"_corrupt_record": '"just a string"', "_file_path": path}, separators=(",", ":"))),
        ],
        key=str,
    )


# --------------------------------------------------------------------------------------------------
# Exactly-once discovery


def test_key_sorting_before_processed_keys_is_picked_up_after_restart(spark, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="landing/2024-05-01T10-05.jsonl", Body=jsonl(event(5)).encode())
    s3.put_object(Bucket=bucket, Key="landing/2024-05-01T10-09.jsonl", Body=jsonl(event(9)).encode())
    first = run_stream(spark, f"s3://{bucket}/landing", tmp_path, **JSON)

    # A late upload whose key sorts before everything already processed.
    s3.put_object(Bucket=bucket, Key="landing/2024-05-01T10-01.jsonl", Body=jsonl(event(1)).encode())
    second = run_stream(spark, f"s3://{bucket}/landing", tmp_path, **JSON)

    assert ids(first) == [["e5", "e9"]]
    assert ids(second) == [["e1"]]
    assert list(second) == [1]  # the checkpoint continued, nothing re-read


def test_restart_after_failure_mid_stream_delivers_each_file_once(spark, tmp_path):
    landing = tmp_path / "landing"
    for n in range(1, 6):
        write_local(landing, f"f{n}.jsonl", jsonl(event(n)), mtime_s=1_714_557_600 + n)

    with pytest.raises(Exception, match="sink failure at batch 1"):
        run_stream(spark, str(landing), tmp_path, fail_at_batch=1, cloudFiles__maxFilesPerTrigger="2", **JSON)
    # Files land while the stream is down, one of them sorting first.
    write_local(landing, "f0.jsonl", jsonl(event(0)), mtime_s=1_714_557_700)
    write_local(landing, "f6.jsonl", jsonl(event(6)), mtime_s=1_714_557_701)
    resumed = run_stream(spark, str(landing), tmp_path, cloudFiles__maxFilesPerTrigger="2", **JSON)

    # Batch 1 failed before its commit: it is replayed with exactly the files it was planned with.
    assert ids(resumed) == [["e3", "e4"], ["e0", "e5"], ["e6"]]
    assert list(resumed) == [1, 2, 3]


def test_include_existing_files_false_skips_files_present_at_start(spark, tmp_path):
    landing = tmp_path / "landing"
    write_local(landing, "old1.jsonl", jsonl(event(1)))
    write_local(landing, "old2.jsonl", jsonl(event(2)))
    options = dict(JSON, cloudFiles__includeExistingFiles="false")

    first = run_stream(spark, str(landing), tmp_path, **options)
    write_local(landing, "new.jsonl", jsonl(event(3)))
    second = run_stream(spark, str(landing), tmp_path, **options)

    # Spark runs a first, empty micro-batch to record the starting offset of a new checkpoint.
    assert first == {0: []}
    assert second == {1: second[1]} and ids(second) == [["e3"]]


# --------------------------------------------------------------------------------------------------
# Read limits under availableNow


def test_max_files_per_trigger_under_available_now(spark, tmp_path):
    landing = tmp_path / "landing"
    for n in range(1, 6):
        write_local(landing, f"part-{n}.jsonl", jsonl(event(n)), mtime_s=1_714_557_600 + n)

    batches = run_stream(spark, str(landing), tmp_path, cloudFiles__maxFilesPerTrigger="2", **JSON)

    assert ids(batches) == [["e1", "e2"], ["e3", "e4"], ["e5"]]


def test_max_bytes_per_trigger_under_available_now(spark, tmp_path):
    landing = tmp_path / "landing"
    sizes = {}
    for n in range(1, 6):
        path = write_local(
            landing, f"part-{n}.jsonl", jsonl(event(n)) * (3 if n == 3 else 1), mtime_s=1_714_557_600 + n
        )
        sizes[n] = path.stat().st_size
    one = sizes[1]
    assert sizes[3] == 3 * one

    # Room for two small files; the triple-size file is admitted alone (a batch takes at least one file).
    batches = run_stream(spark, str(landing), tmp_path, cloudFiles__maxBytesPerTrigger=str(2 * one + 1), **JSON)

    assert ids(batches) == [["e1", "e2"], ["e3", "e3", "e3"], ["e4", "e5"]]


# --------------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("cloudFiles.foo", "bar", r"cloudfiles\.foo"),
        ("cloudFiles.useNotifications", "true", r"cloudfiles\.usenotifications"),
        ("multiLine", "true", r"multiline"),
        ("cloudFiles.schemaEvolutionMode", "addNewColumns", r"schemaEvolutionMode 'addnewcolumns'"),
        ("cloudFiles.maxFilesPerTrigger", "0", r"maxFilesPerTrigger must be a positive integer"),
        ("recursiveFileLookup", "false", r"recursiveFileLookup 'false' is not supported"),
    ],
)
def test_unsupported_options_are_refused_by_name(spark, tmp_path, option, value, message):
    with pytest.raises(Exception, match=message) as error:
        spark.read.format("cloudFiles").option("cloudFiles.format", "json").option(option, value).schema(
            EVENT_SCHEMA
        ).load(str(tmp_path)).collect()
    if option == "cloudFiles.foo":
        assert "cloudFiles.maxFilesPerTrigger" in str(error.value)  # the supported options are listed


def test_unsupported_format_and_missing_schema_are_refused(spark, tmp_path):
    with pytest.raises(Exception, match=r"cloudFiles.format 'parquet' is not supported.*json, text"):
        spark.readStream.format("cloudFiles").option("cloudFiles.format", "parquet").load(str(tmp_path))
    with pytest.raises(Exception, match=r"needs a schema"):
        spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load(str(tmp_path))
    with pytest.raises(Exception, match=r"NOT NULL"):
        strict = T.StructType([T.StructField("event_id", T.StringType(), nullable=False)])
        spark.read.format("cloudFiles").option("cloudFiles.format", "json").schema(strict).load(str(tmp_path)).collect()


def test_binary_files_come_whole_and_a_file_gone_since_discovery_is_handed_over_empty(tmp_path):
    """``binaryFile``: one row per file, its bytes as they are; with ignoreMissingFiles a file deleted between
    discovery and reading comes with a null content (Bronze records it), without it the read fails naming it."""
    from lakehouse_local.sources.cloudfiles.files import plan_partitions, read_partition
    from lakehouse_local.sources.cloudfiles.layout import BINARY_FILE_SCHEMA, OutputLayout
    from lakehouse_local.sources.cloudfiles.options import CloudFilesOptions
    from lakehouse_local.storage import list_files

    (tmp_path / "a.jsonl.gz").write_bytes(b"\x1f\x8b not really gzip")
    (tmp_path / "b.jsonl").write_bytes(b"x\n")
    options = CloudFilesOptions.from_options({"path": str(tmp_path), "cloudFiles.format": "binaryFile"})
    layout = OutputLayout.for_schema(BINARY_FILE_SCHEMA, options)
    (partition,) = plan_partitions(list_files(options.path))
    (tmp_path / "b.jsonl").unlink()

    rows = [r for batch in read_partition(partition, layout, ignore_missing_files=True) for r in batch.to_pylist()]
    assert [(r["path"].rsplit("/", 1)[-1], r["length"], r["content"]) for r in rows] == [
        ("a.jsonl.gz", 18, b"\x1f\x8b not really gzip"), ("b.jsonl", 2, None),
    ]
    with pytest.raises(FileNotFoundError, match=r"b\.jsonl was discovered but is gone.*ignoreMissingFiles"):
        list(read_partition(partition, layout))


def test_stream_without_schema_location_is_refused(spark, tmp_path):
    df = spark.readStream.format("cloudFiles").option("cloudFiles.format", "text").load(str(tmp_path))
    with pytest.raises(Exception, match=r"cloudFiles\.schemaLocation"):
        query = df.writeStream.format("memory").queryName("no_schema_location").trigger(availableNow=True).start()
        try:
            query.awaitTermination()
        finally:
            query.stop()


def test_option_parsing_units():
    assert [parse_byte_size(v) for v in ("10m", "1g", "512k", "2048", "1MB")] == [
        10 * 1024**2,
        1024**3,
        512 * 1024,
        2048,
        1024**2,
    ]
    parsed = CloudFilesOptions.from_options({"cloudfiles.format": "JSON", "path": "/tmp/x", "rescueddatacolumn": "_r"})
    assert (parsed.file_format, parsed.path, parsed.max_files_per_trigger, parsed.rescued_data_column) == (
        "json",
        "file:///tmp/x",
        None,
        "_r",
    )


def test_stop_mid_stream_and_restart_from_checkpoint(spark, tmp_path):
    landing = tmp_path / "landing"
    for n in range(1, 7):
        write_local(landing, f"f{n}.jsonl", jsonl(event(n)), mtime_s=1_714_557_600 + n)
    before: dict[int, list[dict]] = {}

    def slow_sink(df, batch_id: int) -> None:
        before[batch_id] = sorted((row.asDict(recursive=True) for row in df.collect()), key=_row_key)
        time.sleep(0.3)

    query = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "json")
        .option("cloudFiles.schemaLocation", str(tmp_path / "schema"))
        .option("cloudFiles.maxFilesPerTrigger", "1")
        .schema(EVENT_SCHEMA)
        .load(str(landing))
        .writeStream.foreachBatch(slow_sink)
        .option("checkpointLocation", str(tmp_path / "state"))
        .start()
    )
    deadline = time.monotonic() + 60
    while len(before) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    query.stop()
    write_local(landing, "f0.jsonl", jsonl(event(0)), mtime_s=1_714_557_700)

    after = run_stream(spark, str(landing), tmp_path, cloudFiles__maxFilesPerTrigger="1", **JSON)

    assert 2 <= len(before) < 6, "the first run must stop mid-stream"
    # A batch cut short by stop() is replayed under the same id with the same files.
    for batch_id in before.keys() & after.keys():
        assert before[batch_id] == after[batch_id]
    delivered = ids({**before, **after})
    assert sorted(e for batch in delivered for e in batch) == ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]
    assert all(len(batch) == 1 for batch in delivered)


# --------------------------------------------------------------------------------------------------
# JSON conversion, without Spark


def _json_rows(text: str, schema: T.StructType, *, force_per_line: bool = False) -> list[dict]:
    from lakehouse_local.sources.cloudfiles.json_conversion import json_fast, json_slow
    from lakehouse_local.sources.cloudfiles.layout import OutputLayout, assemble

    options = CloudFilesOptions.from_options({"cloudFiles.format": "json", "path": "/landing"})
    layout = OutputLayout.for_schema(schema, options)
    info = FileInfo("s3://b/landing/f.jsonl", len(text), 0)
    data = text.encode("utf-8")
    parsed = None if force_per_line else json_fast(data, info, layout)
    columns, rows, rescued, corrupt = parsed or json_slow(data, info, layout)
    return assemble(columns, rows, rescued, corrupt, info, layout, layout.arrow_schema).to_pylist()


def test_arrow_and_per_line_parsing_agree_on_unknown_fields():
    schema = T.StructType(EVENT_SCHEMA.fields[:4] + [T.StructField("_rescued_data", T.StringType())])
    text = jsonl(event(1), event(2, campaign={"id": 7, "tags": ["a"]}, note=None), event(3, ref="x")) + "\n"

    fast = _json_rows(text, schema)
    per_line = _json_rows(text, schema, force_per_line=True)

    assert fast == per_line
    assert [row["_rescued_data"] for row in fast] == [
        None,
        '{"campaign":{"id":7,"tags":["a"]},"_file_path":"s3://b/landing/f.jsonl"}',
        '{"ref":"x","_file_path":"s3://b/landing/f.jsonl"}',
    ]


def test_per_line_conversion_follows_spark_json_rules():
    schema = T.StructType(
        [
            T.StructField("s", T.StringType()),
            T.StructField("i", T.IntegerType()),
            T.StructField("d", T.DoubleType()),
            T.StructField("t", T.TimestampType()),
            T.StructField("_rescued_data", T.StringType()),
        ]
    )
    text = (
        '{"s": 5, "i": 2147483648, "d": "NaN", "t": 1714557600}\n'
        '{"s": {"a": 1}, "i": 1.5, "d": 2, "t": "2024-05-01T12:00:00.1234567+02:00"}\n'
    )

    rows = _json_rows(text, schema)

    assert [(r["s"], r["i"], str(r["d"]), r["t"].isoformat()) for r in rows] == [
        ("5", None, "nan", "2024-05-01T10:00:00+00:00"),
        ('{"a":1}', None, "2.0", "2024-05-01T10:00:00.123456+00:00"),
    ]
    assert [json.loads(r["_rescued_data"]) for r in rows] == [
        {"i": 2147483648, "_file_path": "s3://b/landing/f.jsonl"},
        {"i": 1.5, "_file_path": "s3://b/landing/f.jsonl"},
    ]
