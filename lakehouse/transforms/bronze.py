"""Bronze: every landed file opened and split into its lines, exactly as they arrived, with where and when
they came from; and one record per file, read or not.

Auto Loader hands over whole files (``binaryFile``), so opening them is the pipeline's own work, the same
on every runtime: :class:`LandedFiles` (in Spark's Python workers, over Arrow) gunzips ``*.gz`` objects,
decodes UTF-8 strictly and splits lines as Spark's text source does (``\\n``, ``\\r\\n`` or ``\\r``; no line
after a final line break). A file that cannot be opened (a truncated or corrupt gzip stream, bytes that are
not UTF-8, an object gone since it was discovered) yields no lines and a file record with the error:
nothing stops the stream, and every landed file is accounted for (``bronze.files``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

# One row per line, plus one per file (``_line_number`` null) carrying the file's line count or its error.
OPENED = pa.schema(
    [
        ("value", pa.string()),
        ("_source_file", pa.string()),
        ("_file_size", pa.int64()),
        ("_file_modification_time", pa.timestamp("us", tz="UTC")),
        ("_line_number", pa.int64()),
        ("_file_lines", pa.int64()),
        ("_file_error", pa.string()),
        ("_ingested_at", pa.timestamp("us", tz="UTC")),
        ("_record_id", pa.string()),
    ]
)


class UnreadableFileError(ValueError):
    """A landed file whose bytes are not text lines this pipeline can read (it is recorded, not fatal)."""


def split_lines(content: bytes | None, path: str) -> list[str]:
    """The lines of one landed file, or :class:`UnreadableFileError` saying why it has none."""
    if content is None:
        raise UnreadableFileError("the object is gone: it was deleted or expired after it was discovered")
    if path.endswith(".gz"):
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableFileError(f"not a complete gzip stream ({error})") from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(
            f"not UTF-8 text: byte {content[error.start]:#04x} at offset {error.start} ({error.reason})"
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class LandedFiles:
    """The ``mapInArrow`` function that opens landed files: ``binaryFile`` rows in, :data:`OPENED` rows out."""

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for path, modified, length, content in zip(*(batch.column(c).to_pylist() for c in
                                                          ("path", "modificationTime", "length", "content")),
                                                        strict=True):
                yield self._open(path, modified, length, content)

    @staticmethod
    def _open(path: str, modified, length: int, content: bytes | None) -> pa.RecordBatch:
        try:
            lines, error = split_lines(content, path), None
        except UnreadableFileError as unreadable:
            lines, error = [], str(unreadable)
        count = len(lines)
        rows = count + 1
        columns = {
            "value": [*lines, None],
            "_source_file": [path] * rows,
            "_file_size": [length] * rows,
            "_file_modification_time": [modified] * rows,
            "_line_number": [*range(1, count + 1), None],
            "_file_lines": [None] * count + [count],
            "_file_error": [None] * count + [error],
            "_ingested_at": [datetime.now(UTC)] * rows,
            "_record_id": random_uuids(rows),
        }
        return pa.RecordBatch.from_pydict(columns, schema=OPENED)


# Where each of a UUID's 32 hex digits goes in its 36-character text form (8-4-4-4-12).
_UUID_DIGITS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def random_uuids(count: int) -> pa.Array:
    """``count`` random (version 4) UUIDs as text, as Spark's ``uuid()`` makes them, made for all rows at once.

    In the opened rows rather than ``uuid()`` in Spark: Spark writes the random seed it gives ``uuid()`` into the
    code it generates, so every micro-batch compiled its stage again.
    """
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_DIGITS] = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(count, 32)
    offsets = np.arange(0, 36 * (count + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


# Auto Loader's binaryFile columns: one row per landed file.
LANDED_FILE = T.StructType([
    T.StructField("path", T.StringType()),
    T.StructField("modificationTime", T.TimestampType()),
    T.StructField("length", T.LongType()),
    T.StructField("content", T.BinaryType()),
])


def open_files(landed: DataFrame) -> DataFrame:
    """Auto Loader's ``binaryFile`` rows as lines (``_line_number`` set) and one record per file.

    The rows are taken as :data:`LANDED_FILE` (``DataFrame.to``), so a Spark Connect client knows the frame's
    columns without asking Spark for them, which a declarative pipeline's query function may not do.
    """
    return landed.to(LANDED_FILE).mapInArrow(LandedFiles(), from_arrow_schema(OPENED))


def bronze_rows(opened: DataFrame) -> DataFrame:
    """The Bronze table's columns for every line (file records pass through, ``_line_number`` null)."""
    return opened.select(
        "value",
        "_source_file",
        "_file_size",
        "_file_modification_time",
        "_line_number",
        "_file_lines",
        "_file_error",
        # When the file was opened, and a stable identity for the line from here on (Silver and quarantine refer
        # to it), both given by LandedFiles: current_timestamp() and uuid() would put constants of each micro-batch
        # in Spark's generated code, so every batch compiled its stage again.
        "_ingested_at",
        "_record_id",
    )


def lines_of(rows: DataFrame) -> DataFrame:
    return rows.filter(F.col("_line_number").isNotNull())


def file_records(rows: DataFrame) -> DataFrame:
    """``bronze.files`` rows: one per landed file, read (with its line count) or not (with the error)."""
    return rows.filter(F.col("_line_number").isNull()).select(
        F.col("_source_file").alias("file"),
        F.col("_file_size").alias("size"),
        F.col("_file_modification_time").alias("modification_time"),
        F.col("_file_lines").alias("lines"),
        F.col("_file_error").alias("error"),
        F.col("_ingested_at").alias("read_at"),
    )
