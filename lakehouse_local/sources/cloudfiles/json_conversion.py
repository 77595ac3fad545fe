"""JSON lines to the columns of an output layout, with Spark's conversion rules.

A file is parsed whole by Arrow when every line fits the schema (``json_fast``), else line by line
in Python with Spark's JSON rules (``json_slow``): which values fit which Spark type, what goes to
the rescued-data column (unknown fields and values that do not fit, with the file's path) and what
to the corrupt-record column (malformed lines). Per-value conversion is in
:mod:`lakehouse_local.sources.cloudfiles.json_values`. Lines are split as Spark's text source splits them
(``text_lines``), which the text format shares.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    ByteType,
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakehouse_local.sources.cloudfiles.json_values import Mismatched, has_mismatch, struct_converter
from lakehouse_local.sources.cloudfiles.layout import OutputLayout
from lakehouse_local.sources.cloudfiles.options import DEFAULT_CORRUPT_RECORD_COLUMN
from lakehouse_local.storage import FileInfo

RESCUED_FILE_PATH_KEY = "_file_path"
JSON_BLOCK_SIZE = 4 * 1024 * 1024

ParsedJson = tuple[dict[str, pa.Array | pa.ChunkedArray], int, pa.Array | None, pa.Array | None]


def text_lines(data: bytes) -> list[str]:
    """The lines of a file as Spark's text source splits them (on ``\\n``, ``\\r\\n`` and ``\\r``).

    No line follows a final line break. JSON lines are split the same way.
    """
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _arrow_json_friendly(data_type: DataType) -> bool:
    """Types whose Arrow JSON conversion agrees with Spark's; others always take the per-line path."""
    if isinstance(data_type, StructType):
        return all(_arrow_json_friendly(field.dataType) for field in data_type.fields)
    if isinstance(data_type, ArrayType):
        return _arrow_json_friendly(data_type.elementType)
    return isinstance(
        data_type,
        StringType
        | BooleanType
        | ByteType
        | ShortType
        | IntegerType
        | LongType
        | FloatType
        | DoubleType
        | TimestampType,
    )


def json_fast(data: bytes, info: FileInfo, layout: OutputLayout) -> ParsedJson | None:
    """Parse a whole file with Arrow; ``None`` when any line needs the per-line path."""
    if not data.strip():
        return {f.name: pa.nulls(0, _arrow_type(f.dataType)) for f in layout.data_fields}, 0, None, None
    if not all(_arrow_json_friendly(field.dataType) for field in layout.data_fields):
        return None
    parse_schema = to_arrow_schema(layout.data_schema, timezone="UTC")
    rescue = layout.rescued_column is not None
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(block_size=JSON_BLOCK_SIZE, use_threads=False),
            parse_options=pajson.ParseOptions(
                explicit_schema=parse_schema, unexpected_field_behavior="infer" if rescue else "ignore"
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    # More rows than lines means several objects shared a line: Spark sees a malformed line there.
    if table.num_rows > data.count(b"\n") + 1:
        return None
    columns: dict[str, pa.ChunkedArray] = {}
    for field in parse_schema:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            return None  # e.g. an unknown field nested inside a struct: rescued per line
        columns[field.name] = column
    rescued = None
    extras = [name for name in table.column_names if name not in columns]
    if rescue and extras:
        rescued = _rescue_extras(data, table, extras, set(columns), info)
        if rescued is None:
            return None
    return columns, table.num_rows, rescued, None


def _rescue_extras(data: bytes, table: pa.Table, extras: list[str], known: set[str], info: FileInfo) -> pa.Array | None:
    """The rescued-data column for rows that carry fields outside the schema."""
    flagged = pc.is_valid(table.column(extras[0]))
    for name in extras[1:]:
        flagged = pc.or_(flagged, pc.is_valid(table.column(name)))
    rows = pc.indices_nonzero(flagged).to_pylist()
    if not rows:
        return pa.nulls(table.num_rows, pa.string())
    # Rescue the values as written: re-read just the flagged lines (Arrow's inference would retype them).
    lines = [line for line in data.split(b"\n") if line.strip()]
    if len(lines) != table.num_rows:
        return None
    values: list[str | None] = [None] * table.num_rows
    for row in rows:
        record = json.loads(lines[row])
        unknown = {key: value for key, value in record.items() if key not in known and value is not None}
        values[row] = _rescued_json(unknown, info) if unknown else None
    return pa.array(values, pa.string())


def _rescued_json(fields: dict[str, Any], info: FileInfo) -> str:
    return json.dumps(
        {**fields, RESCUED_FILE_PATH_KEY: info.path},
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: value.value if isinstance(value, Mismatched) else str(value),
    )


def _arrow_type(data_type: DataType) -> pa.DataType:
    return to_arrow_schema(StructType([StructField("x", data_type)]), timezone="UTC").field("x").type


def json_slow(data: bytes, info: FileInfo, layout: OutputLayout) -> ParsedJson:
    """Per-line parsing with Spark's JSON conversion rules, for files Arrow cannot take whole."""
    fields = layout.data_fields
    convert = struct_converter(layout.data_schema)
    values: list[list[Any]] = [[] for _ in fields]
    rescued_values: list[str | None] = []
    corrupt_values: list[str | None] = []
    empty_row = [None] * len(fields)

    def emit(row: Sequence[Any], rescued: str | None, corrupt: str | None) -> None:
        for column, value in zip(values, row, strict=True):
            column.append(value)
        rescued_values.append(rescued)
        corrupt_values.append(corrupt)

    def malformed(line: str) -> None:
        if layout.corrupt_column is not None:
            emit(empty_row, None, line)
        elif layout.rescued_column is not None:
            emit(empty_row, _rescued_json({DEFAULT_CORRUPT_RECORD_COLUMN: line}, info), None)
        else:
            emit(empty_row, None, None)

    for line in text_lines(data):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError:
            malformed(line)
            continue
        records = document if isinstance(document, list) and document else [document]
        if not all(isinstance(record, dict) for record in records):
            malformed(line)
            continue
        for record in records:
            row, rescued = convert(record)
            if rescued is None:
                emit([row.get(f.name) for f in fields], None, None)
            elif layout.rescued_column is not None:
                emit([row.get(f.name) for f in fields], _rescued_json(rescued, info), None)
            elif has_mismatch(rescued):
                # No rescue column: Spark turns a record it cannot convert into nulls (or its corrupt column).
                if layout.corrupt_column is not None:
                    emit(empty_row, None, line)
                else:
                    emit(empty_row, None, None)
            else:
                emit([row.get(f.name) for f in fields], None, None)  # only unknown fields: ignored

    columns = {f.name: pa.array(column, _arrow_type(f.dataType)) for f, column in zip(fields, values, strict=True)}
    rows = len(rescued_values)
    rescued_array = pa.array(rescued_values, pa.string()) if layout.rescued_column else None
    corrupt_array = pa.array(corrupt_values, pa.string()) if layout.corrupt_column else None
    return columns, rows, rescued_array, corrupt_array
