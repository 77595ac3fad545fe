"""Opening landed files: lines exactly as Spark's text source splits them, and a reason for every file that
cannot be opened."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from lakehouse.transforms.bronze import LandedFiles, UnreadableFileError, split_lines


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        (b"a\nb\n", ["a", "b"]),
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"a\rb", ["a", "b"]),
        (b"a\n\n  \n", ["a", "", "  "]),
        (b"", []),
        ("caf\u00e9\n".encode(), ["caf\u00e9"]),
        (b"\xef\xbb\xbf{}\n", ["\ufeff{}"]),  # a byte order mark stays: the line is not JSON as it arrived
    ],
)
def test_lines_are_split_as_sparks_text_source_splits_them(content, lines):
    assert split_lines(content, "s3://b/f.jsonl") == lines
    assert split_lines(gzip.compress(content), "s3://b/f.jsonl.gz") == lines


@pytest.mark.parametrize(
    ("content", "path", "reason"),
    [
        (None, "s3://b/f.jsonl", "the object is gone"),
        (gzip.compress(b"a\n")[:-4], "s3://b/f.jsonl.gz", "not a complete gzip stream"),
        (b"a\n", "s3://b/f.jsonl.gz", "not a complete gzip stream"),
        (b"ok\n\xff\n", "s3://b/f.jsonl", "not UTF-8 text: byte 0xff at offset 3"),
    ],
)
def test_a_file_that_cannot_be_opened_says_why(content, path, reason):
    with pytest.raises(UnreadableFileError, match=reason):
        split_lines(content, path)


def test_each_file_gives_its_lines_then_one_record_with_its_count_or_its_error():
    when = datetime(2026, 11, 20, tzinfo=UTC)
    files = pa.RecordBatch.from_pydict(
        {"path": ["s3://b/1.jsonl", "s3://b/2.jsonl.gz"], "modificationTime": [when, when], "length": [4, 3],
         "content": [b"x\ny\n", b"bad"]},
        schema=pa.schema([("path", pa.string()), ("modificationTime", pa.timestamp("us", tz="UTC")),
                          ("length", pa.int64()), ("content", pa.binary())]),
    )
    rows = pa.Table.from_batches(list(LandedFiles()([files]))).to_pylist()
    assert [(r["value"], r["_source_file"], r["_line_number"], r["_file_lines"]) for r in rows] == [
        ("x", "s3://b/1.jsonl", 1, None),
        ("y", "s3://b/1.jsonl", 2, None),
        (None, "s3://b/1.jsonl", None, 2),
        (None, "s3://b/2.jsonl.gz", None, 0),
    ]
    assert [r["_file_error"] is None for r in rows] == [True, True, True, False]
    ids = [uuid.UUID(r["_record_id"]) for r in rows]
    assert len(set(ids)) == 4 and {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}
    assert [str(i) for i in ids] == [r["_record_id"] for r in rows], "in the form Spark's uuid() gives"
    assert all(abs(r["_ingested_at"] - datetime.now(UTC)).total_seconds() < 60 for r in rows)


def test_a_micro_batchs_constants_stay_out_of_bronzes_generated_code(spark):
    """Spark writes the seed of ``uuid()`` and the time of ``current_timestamp()`` into the code it generates for a
    query, so a query with either compiles again every micro-batch: the opened rows carry both instead."""
    from lakehouse.transforms.bronze import LANDED_FILE, bronze_rows, open_files

    landed = spark.createDataFrame([("s3://b/1.jsonl", datetime(2026, 11, 20, tzinfo=UTC), 2, b"x\n")], LANDED_FILE)
    rows = bronze_rows(open_files(landed))
    plan = rows._jdf.queryExecution().analyzed().toString().lower()
    assert "uuid(" not in plan and "current_timestamp" not in plan, plan
    assert rows.filter("_line_number = 1").select("value").first()["value"] == "x"
