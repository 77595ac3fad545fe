"""The ``cloudFiles`` source: Databricks Auto Loader semantics as a Spark Python data source.

``spark.readStream.format("cloudFiles")`` (and ``spark.read``) over ``s3://`` prefixes and local
folders, so the Bronze notebook runs unchanged on a laptop. This module owns option validation, the
output schema of each format, exactly-once file discovery (the discovery log) and the Arrow-based
readers. Storage access lives in :mod:`lakehouse_local.storage`.

Options (names are case-insensitive, as everywhere in Spark):

``cloudFiles.format``               ``json`` (JSON lines) or ``text``; required.
``cloudFiles.schemaLocation``       required for streams; holds the discovery log (``_discovery/``).
``cloudFiles.maxFilesPerTrigger``   files admitted per micro-batch (default 1000), also under
                                    ``trigger(availableNow=True)``.
``cloudFiles.maxBytesPerTrigger``   soft byte cap per micro-batch (``"10m"``, ``"1g"``, bytes); a batch
                                    always takes at least one file. With both caps, the first reached wins.
``cloudFiles.includeExistingFiles`` ``true`` (default) or ``false``: skip files present when a new
                                    checkpoint starts.
``cloudFiles.schemaEvolutionMode``  ``rescue`` or ``none`` (the schema never evolves here).
``cloudFiles.validateOptions``      accepted; options are always validated.
``path``, ``pathGlobFilter`` (file-name glob), ``rescuedDataColumn``, ``columnNameOfCorruptRecord``,
``recursiveFileLookup`` (listing is always recursive, as Auto Loader's is).

Anything else raises ``ValueError`` naming the option: an option that would be silently ignored here
would make a local run disagree with Databricks without anyone noticing.

Schemas. ``text``: ``value STRING, _metadata STRUCT<...>``. ``json``: the user schema, which is
required (no inference). A Python data source cannot append columns to a user-provided schema, so
the special columns are filled *by name* when the user schema declares them: the rescued-data column
(``_rescued_data`` or ``rescuedDataColumn``), the corrupt-record column (``_corrupt_record`` or
``columnNameOfCorruptRecord``) and ``_metadata`` (any of ``file_path``, ``file_name``, ``file_size``,
``file_modification_time``, ``file_block_start``, ``file_block_length``). Data fields must be
nullable: file sources read every field as nullable (Databricks silently relaxes the schema; a
Python source cannot, and a null in a NOT NULL column corrupts Spark's plan).
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import fnmatch
import gzip
import heapq
import io
import json
import logging
import math
import os
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxBytes,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from lakehouse_local import storage
from lakehouse_local.storage import FileInfo

log = logging.getLogger(__name__)

SOURCE_NAME = "cloudFiles"
SUPPORTED_FORMATS = ("json", "text")
DEFAULT_MAX_FILES_PER_TRIGGER = 1000
METADATA_COLUMN = "_metadata"
DEFAULT_RESCUED_DATA_COLUMN = "_rescued_data"
DEFAULT_CORRUPT_RECORD_COLUMN = "_corrupt_record"
RESCUED_FILE_PATH_KEY = "_file_path"
DISCOVERY_FOLDER = "_discovery"

# Canonical spelling of every accepted option, keyed by the lower-case form Spark hands us.
CLOUD_FILES_OPTIONS = {
    name.lower(): name
    for name in (
        "cloudFiles.format",
        "cloudFiles.schemaLocation",
        "cloudFiles.maxFilesPerTrigger",
        "cloudFiles.maxBytesPerTrigger",
        "cloudFiles.includeExistingFiles",
        "cloudFiles.schemaEvolutionMode",
        "cloudFiles.validateOptions",
    )
}
GENERIC_OPTIONS = {
    name.lower(): name
    for name in ("path", "pathGlobFilter", "rescuedDataColumn", "columnNameOfCorruptRecord", "recursiveFileLookup")
}
SCHEMA_EVOLUTION_MODES = ("rescue", "none")

METADATA_FIELDS: dict[str, DataType] = {
    "file_path": StringType(),
    "file_name": StringType(),
    "file_size": LongType(),
    "file_modification_time": TimestampType(),
    "file_block_start": LongType(),
    "file_block_length": LongType(),
}
METADATA_TYPE = StructType(
    [
        StructField(name, METADATA_FIELDS[name])
        for name in ("file_path", "file_name", "file_size", "file_modification_time")
    ]
)
TEXT_SCHEMA = StructType([StructField("value", StringType()), StructField(METADATA_COLUMN, METADATA_TYPE)])

# Partition planning: about two tasks per core, but no task smaller than this unless files are few.
MIN_PARTITION_BYTES = 8 * 1024 * 1024
# Concurrent object GETs inside one task: S3 latency, not bandwidth, dominates small files.
S3_PREFETCH = 8
JSON_BLOCK_SIZE = 4 * 1024 * 1024


# --------------------------------------------------------------------------------------------------
# Options


@dataclasses.dataclass(frozen=True)
class CloudFilesOptions:
    """Validated options of one ``cloudFiles`` read."""

    path: str
    file_format: str
    schema_location: str | None = None
    max_files_per_trigger: int | None = None
    max_bytes_per_trigger: int | None = None
    include_existing_files: bool = True
    schema_evolution_mode: str | None = None
    path_glob_filter: str | None = None
    rescued_data_column: str = DEFAULT_RESCUED_DATA_COLUMN
    rescued_data_column_requested: bool = False
    corrupt_record_column: str = DEFAULT_CORRUPT_RECORD_COLUMN

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> CloudFilesOptions:
        opts = {key.lower(): value for key, value in options.items()}
        unknown = [key for key in opts if key not in CLOUD_FILES_OPTIONS and key not in GENERIC_OPTIONS]
        if unknown:
            named = ", ".join(f"'{key}'" for key in sorted(unknown))
            raise ValueError(
                f"cloudFiles source: option {named} is not supported by the local cloudFiles source "
                f"(option names arrive lower-cased). Supported options: {', '.join(CLOUD_FILES_OPTIONS.values())}, "
                f"{', '.join(GENERIC_OPTIONS.values())}. Remove the option or implement it in {__name__}."
            )

        file_format = opts.get("cloudfiles.format")
        if not file_format:
            raise ValueError("cloudFiles source: option 'cloudFiles.format' is required (one of: json, text).")
        file_format = file_format.strip().lower()
        if file_format not in SUPPORTED_FORMATS:
            raise ValueError(
                f"cloudFiles source: cloudFiles.format '{file_format}' is not supported locally; "
                f"supported formats: {', '.join(SUPPORTED_FORMATS)}."
            )

        path = opts.get("path")
        if not path:
            raise ValueError(
                "cloudFiles source: no input path; call .load('s3://bucket/prefix') or .load('/local/folder')."
            )
        if any(char in path for char in "*?[{"):
            raise ValueError(
                f"cloudFiles source: glob patterns in the path ({path!r}) are not supported; load the folder "
                "and use the 'pathGlobFilter' option for file names."
            )

        mode = opts.get("cloudfiles.schemaevolutionmode")
        if mode is not None:
            mode = mode.strip().lower()
            if mode not in SCHEMA_EVOLUTION_MODES:
                raise ValueError(
                    f"cloudFiles source: cloudFiles.schemaEvolutionMode '{mode}' is not supported locally "
                    f"(the schema never evolves here); use one of: {', '.join(SCHEMA_EVOLUTION_MODES)}."
                )
        _parse_bool(opts, "cloudfiles.validateoptions", True)
        _parse_bool(opts, "recursivefilelookup", True)

        max_files = opts.get("cloudfiles.maxfilespertrigger")
        if max_files is not None:
            try:
                max_files_value = int(max_files)
            except ValueError:
                max_files_value = 0
            if max_files_value <= 0:
                raise ValueError(
                    f"cloudFiles source: cloudFiles.maxFilesPerTrigger must be a positive integer, got {max_files!r}."
                )
        max_bytes = opts.get("cloudfiles.maxbytespertrigger")

        rescued = opts.get("rescueddatacolumn")
        return cls(
            path=storage.normalize(path),
            file_format=file_format,
            schema_location=storage.normalize(opts["cloudfiles.schemalocation"])
            if opts.get("cloudfiles.schemalocation")
            else None,
            max_files_per_trigger=int(max_files) if max_files is not None else None,
            max_bytes_per_trigger=parse_byte_size(max_bytes, "cloudFiles.maxBytesPerTrigger")
            if max_bytes is not None
            else None,
            include_existing_files=_parse_bool(opts, "cloudfiles.includeexistingfiles", True),
            schema_evolution_mode=mode,
            path_glob_filter=opts.get("pathglobfilter") or None,
            rescued_data_column=rescued or DEFAULT_RESCUED_DATA_COLUMN,
            rescued_data_column_requested=bool(rescued) or mode == "rescue",
            corrupt_record_column=opts.get("columnnameofcorruptrecord") or DEFAULT_CORRUPT_RECORD_COLUMN,
        )


def _parse_bool(opts: Mapping[str, str], key: str, default: bool) -> bool:
    value = opts.get(key)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(
            f"cloudFiles source: option '{CLOUD_FILES_OPTIONS.get(key, GENERIC_OPTIONS.get(key, key))}' "
            f"must be 'true' or 'false', got {value!r}."
        )
    return lowered == "true"


_BYTE_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_byte_size(value: str, option: str = "size") -> int:
    """``"10m"`` → 10485760. Units are powers of 1024, as in Spark's byte strings."""
    match = _BYTE_SIZE.match(value)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"cloudFiles source: {option} must be a positive byte size such as '10m' or '1g', got {value!r}."
        )
    return int(match.group(1)) * 1024 ** "_kmgtp".index(match.group(2).lower() or "_")


# --------------------------------------------------------------------------------------------------
# Output layout: which output column is filled from what


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """The output schema and the role of each of its columns."""

    schema: StructType
    file_format: str
    data_fields: tuple[StructField, ...]
    rescued_column: str | None
    corrupt_column: str | None
    metadata_column: str | None
    metadata_fields: tuple[str, ...]

    @property
    def arrow_schema(self) -> pa.Schema:
        # Exactly the conversion Spark applies before comparing a returned batch with the schema.
        return to_arrow_schema(self.schema, timezone="UTC")

    @property
    def data_schema(self) -> StructType:
        return StructType(list(self.data_fields))

    @classmethod
    def for_schema(cls, schema: StructType, options: CloudFilesOptions) -> OutputLayout:
        names = [field.name for field in schema.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"cloudFiles source: the schema names a column twice: {names}.")
        by_name = {field.name: field for field in schema.fields}

        metadata_fields: tuple[str, ...] = ()
        if METADATA_COLUMN in by_name:
            metadata_fields = _metadata_fields(by_name[METADATA_COLUMN].dataType)

        if options.file_format == "text":
            if options.rescued_data_column_requested:
                raise ValueError(
                    "cloudFiles source: rescuedDataColumn/schemaEvolutionMode=rescue apply to json only; "
                    "the text format has no fields to rescue."
                )
            extra = [name for name in names if name not in ("value", METADATA_COLUMN)]
            if extra:
                raise ValueError(
                    f"cloudFiles source: the text format has the fixed schema 'value STRING' (plus {METADATA_COLUMN}); "
                    f"unexpected columns: {extra}."
                )
            if "value" in by_name and not isinstance(by_name["value"].dataType, StringType):
                raise ValueError("cloudFiles source: the text format's 'value' column must be STRING.")
            data = tuple(field for field in schema.fields if field.name == "value")
            return cls(schema, "text", data, None, None, METADATA_COLUMN if metadata_fields else None, metadata_fields)

        rescued = options.rescued_data_column if options.rescued_data_column in by_name else None
        if options.rescued_data_column_requested and rescued is None:
            raise ValueError(
                f"cloudFiles source: rescued data was requested but the schema has no '{options.rescued_data_column}' "
                f"column. Add `{options.rescued_data_column} STRING` to the schema passed to .schema(...): a Spark "
                "Python data source cannot append columns to a user-provided schema."
            )
        corrupt = options.corrupt_record_column if options.corrupt_record_column in by_name else None
        for special in (rescued, corrupt):
            if special is not None and not isinstance(by_name[special].dataType, StringType):
                raise ValueError(f"cloudFiles source: column '{special}' must be STRING.")
        specials = {METADATA_COLUMN, rescued, corrupt}
        data = tuple(field for field in schema.fields if field.name not in specials)
        not_null = [path for field in data for path in _non_nullable_paths(field)]
        if not_null:
            raise ValueError(
                f"cloudFiles source: schema fields {not_null} are declared NOT NULL. File sources read every field "
                "as nullable (a malformed or incomplete line yields nulls); pass a schema whose fields are all "
                "nullable."
            )
        return cls(
            schema, "json", data, rescued, corrupt, METADATA_COLUMN if metadata_fields else None, metadata_fields
        )


def _metadata_fields(data_type: DataType) -> tuple[str, ...]:
    if not isinstance(data_type, StructType) or not data_type.fields:
        raise ValueError(f"cloudFiles source: column '{METADATA_COLUMN}' must be a struct of {list(METADATA_FIELDS)}.")
    for field in data_type.fields:
        expected = METADATA_FIELDS.get(field.name)
        if expected is None or expected != field.dataType:
            raise ValueError(
                f"cloudFiles source: {METADATA_COLUMN}.{field.name} ({field.dataType.simpleString()}) is not a "
                f"supported metadata field; supported: "
                + ", ".join(f"{name} {dtype.simpleString()}" for name, dtype in METADATA_FIELDS.items())
            )
    return tuple(field.name for field in data_type.fields)


def _non_nullable_paths(field: StructField, prefix: str = "") -> list[str]:
    path = prefix + field.name
    found = [path] if not field.nullable else []
    dtype = field.dataType
    while isinstance(dtype, ArrayType | MapType):
        if isinstance(dtype, ArrayType):
            if not dtype.containsNull:
                found.append(path + "[]")
            dtype = dtype.elementType
        else:
            if not dtype.valueContainsNull:
                found.append(path + "{}")
            dtype = dtype.valueType
    if isinstance(dtype, StructType):
        for child in dtype.fields:
            found.extend(_non_nullable_paths(child, path + "."))
    return found


# --------------------------------------------------------------------------------------------------
# Reading files into Arrow


class FilesPartition(InputPartition):
    """The files one Spark task reads: ``(path, size, modification_time_ms)`` tuples in discovery order."""

    def __init__(self, files: Sequence[tuple[str, int, int]]) -> None:
        super().__init__(None)
        self.files = list(files)

    def __repr__(self) -> str:
        return f"FilesPartition({len(self.files)} files)"


def plan_partitions(files: Sequence[FileInfo], *, max_partitions: int | None = None) -> list[FilesPartition]:
    """Bin-pack files into a few tasks of similar byte size (largest first into the lightest task)."""
    if not files:
        return []
    total = sum(f.size for f in files)
    max_partitions = max_partitions or max(1, 2 * (os.cpu_count() or 1))
    count = max(1, min(len(files), max_partitions, math.ceil(total / MIN_PARTITION_BYTES)))
    bins: list[tuple[int, int]] = [(0, index) for index in range(count)]
    members: list[list[int]] = [[] for _ in range(count)]
    for order in sorted(range(len(files)), key=lambda i: -files[i].size):
        load, index = heapq.heappop(bins)
        members[index].append(order)
        heapq.heappush(bins, (load + files[order].size, index))
    return [
        FilesPartition([(files[i].path, files[i].size, files[i].modification_time_ms) for i in sorted(group)])
        for group in members
        if group
    ]


def read_partition(partition: InputPartition, layout: OutputLayout) -> Iterator[pa.RecordBatch]:
    """Arrow record batches for every file of ``partition``, in order, matching ``layout.schema`` exactly."""
    files = [FileInfo(*entry) for entry in getattr(partition, "files", None) or ()]
    if not files:
        return
    arrow_schema = layout.arrow_schema
    for info, raw in _fetch(files):
        data = gzip.decompress(raw) if info.path.endswith(".gz") else raw
        try:
            table = _file_table(data, info, layout, arrow_schema)
        except Exception as error:
            raise RuntimeError(f"cloudFiles source: cannot read {info.path}: {error}") from error
        yield from table.to_batches()


def _fetch(files: Sequence[FileInfo]) -> Iterator[tuple[FileInfo, bytes]]:
    """File contents in order; S3 objects are fetched a few at a time ahead of the consumer."""
    if len(files) == 1 or not any(storage.is_s3(f.path) for f in files):
        for info in files:
            yield info, storage.read_bytes(info.path)
        return
    with ThreadPoolExecutor(max_workers=S3_PREFETCH, thread_name_prefix="cloudfiles-get") as pool:
        pending: deque = deque()
        queue = iter(files)
        for info in queue:
            pending.append((info, pool.submit(storage.read_bytes, info.path)))
            if len(pending) >= S3_PREFETCH:
                break
        while pending:
            info, future = pending.popleft()
            next_info = next(queue, None)
            if next_info is not None:
                pending.append((next_info, pool.submit(storage.read_bytes, next_info.path)))
            yield info, future.result()


def _file_table(data: bytes, info: FileInfo, layout: OutputLayout, arrow_schema: pa.Schema) -> pa.Table:
    if layout.file_format == "text":
        values = {"value": pa.array(_text_lines(data), pa.string())} if layout.data_fields else {}
        rows = len(values["value"]) if values else _count_text_lines(data)
        return _assemble(values, rows, None, None, info, layout, arrow_schema)
    parsed = _json_fast(data, info, layout)
    if parsed is None:
        parsed = _json_slow(data, info, layout)
    columns, rows, rescued, corrupt = parsed
    return _assemble(columns, rows, rescued, corrupt, info, layout, arrow_schema)


def _text_lines(data: bytes) -> list[str]:
    # Spark's text source splits on \n, \r\n and \r and yields no row after a final line break.
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _count_text_lines(data: bytes) -> int:
    return len(_text_lines(data))


def _assemble(
    columns: dict[str, pa.Array | pa.ChunkedArray],
    rows: int,
    rescued: pa.Array | None,
    corrupt: pa.Array | None,
    info: FileInfo,
    layout: OutputLayout,
    arrow_schema: pa.Schema,
) -> pa.Table:
    arrays = []
    for field in arrow_schema:
        if field.name == layout.metadata_column:
            arrays.append(pa.repeat(pa.scalar(_metadata_value(info, layout.metadata_fields), type=field.type), rows))
        elif field.name == layout.rescued_column:
            arrays.append(rescued if rescued is not None else pa.nulls(rows, pa.string()))
        elif field.name == layout.corrupt_column:
            arrays.append(corrupt if corrupt is not None else pa.nulls(rows, pa.string()))
        else:
            column = columns[field.name]
            arrays.append(column if column.type == field.type else column.cast(field.type))
    arrays = [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a], type=a.type) for a in arrays]
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _metadata_value(info: FileInfo, fields: Sequence[str]) -> dict[str, Any]:
    name = storage.local_path(info.path).name if info.path.startswith("file:") else info.name
    values = {
        "file_path": info.path,
        "file_name": name,
        "file_size": info.size,
        "file_modification_time": info.modification_time_ms * 1000,
        "file_block_start": 0,
        "file_block_length": info.size,
    }
    return {field: values[field] for field in fields}


# JSON -----------------------------------------------------------------------------------------------

ParsedJson = tuple[dict[str, pa.Array | pa.ChunkedArray], int, pa.Array | None, pa.Array | None]


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


def _json_fast(data: bytes, info: FileInfo, layout: OutputLayout) -> ParsedJson | None:
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
        default=lambda value: value.value if isinstance(value, _Mismatched) else str(value),
    )


def _arrow_type(data_type: DataType) -> pa.DataType:
    return to_arrow_schema(StructType([StructField("x", data_type)]), timezone="UTC").field("x").type


def _json_slow(data: bytes, info: FileInfo, layout: OutputLayout) -> ParsedJson:
    """Per-line parsing with Spark's JSON conversion rules, for files Arrow cannot take whole."""
    fields = layout.data_fields
    convert = _struct_converter(layout.data_schema)
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

    for line in _text_lines(data):
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
            elif _has_mismatch(rescued):
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


def _has_mismatch(rescued: dict[str, Any]) -> bool:
    """Whether ``rescued`` holds a value that did not fit its type (not only unknown fields)."""
    return any(isinstance(value, _Mismatched) for value in _walk(rescued))


class _Mismatched:
    """Marks, inside a rescued dict, a value that did not fit its declared type."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _walk(rescued: dict[str, Any]) -> Iterator[Any]:
    for value in rescued.values():
        if isinstance(value, dict):
            yield from _walk(value)
        else:
            yield value


class _Mismatch(Exception):
    pass


_TIMESTAMP = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NON_NUMERIC = {
    "nan": math.nan,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
}
_INT_RANGES = {ByteType: 7, ShortType: 15, IntegerType: 31, LongType: 63}


def _timestamp_micros(value: str, *, with_zone: bool) -> int:
    match = _TIMESTAMP.match(value)
    if not match:
        raise _Mismatch
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
        )
    except ValueError as error:
        raise _Mismatch from error
    micros = (moment - _EPOCH) // timedelta(microseconds=1) + int((fraction or "0").ljust(9, "0")[:6])
    if with_zone and zone and zone.upper() not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        micros -= sign * offset_minutes * 60_000_000
    return micros


def _converter(data_type: DataType) -> Callable[[Any], Any]:
    """A function from a parsed JSON value to the Arrow-ready value of ``data_type``; raises _Mismatch."""
    if isinstance(data_type, StringType):
        return lambda v: v if type(v) is str else json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    for int_type, bits in _INT_RANGES.items():
        if isinstance(data_type, int_type):
            low, high = -(1 << bits), (1 << bits) - 1

            def to_int(v: Any, low: int = low, high: int = high) -> int:
                if type(v) is not int or not low <= v <= high:
                    raise _Mismatch
                return v

            return to_int
    if isinstance(data_type, FloatType | DoubleType):

        def to_float(v: Any) -> float:
            if type(v) in (int, float):
                return float(v)
            if type(v) is str and v.lower() in _NON_NUMERIC:
                return _NON_NUMERIC[v.lower()]
            raise _Mismatch

        return to_float
    if isinstance(data_type, BooleanType):

        def to_bool(v: Any) -> bool:
            if type(v) is not bool:
                raise _Mismatch
            return v

        return to_bool
    if isinstance(data_type, TimestampType | TimestampNTZType):
        with_zone = isinstance(data_type, TimestampType)

        def to_timestamp(v: Any) -> int:
            if type(v) is str:
                return _timestamp_micros(v, with_zone=with_zone)
            if type(v) is int:
                return v * 1_000_000  # Spark reads a JSON integer as seconds since the epoch
            raise _Mismatch

        return to_timestamp
    if isinstance(data_type, DateType):

        def to_date(v: Any) -> int:
            if type(v) is not str:
                raise _Mismatch
            return _timestamp_micros(v, with_zone=False) // 86_400_000_000

        return to_date
    if isinstance(data_type, DecimalType):
        quantum = decimal.Decimal(1).scaleb(-data_type.scale)

        def to_decimal(v: Any) -> decimal.Decimal:
            if type(v) not in (int, float, str):
                raise _Mismatch
            try:
                number = decimal.Decimal(str(v)).quantize(quantum, rounding=decimal.ROUND_HALF_UP)
            except decimal.InvalidOperation as error:
                raise _Mismatch from error
            if len(number.as_tuple().digits) > data_type.precision:
                raise _Mismatch
            return number

        return to_decimal
    if isinstance(data_type, BinaryType):

        def to_binary(v: Any) -> bytes:
            if type(v) is not str:
                raise _Mismatch
            try:
                return base64.b64decode(v, validate=True)
            except ValueError as error:
                raise _Mismatch from error

        return to_binary
    if isinstance(data_type, ArrayType):
        element = _nullable(_converter(data_type.elementType))

        def to_list(v: Any) -> list[Any]:
            if type(v) is not list:
                raise _Mismatch
            return [element(item) for item in v]

        return to_list
    if isinstance(data_type, MapType):
        if not isinstance(data_type.keyType, StringType):
            raise ValueError(f"cloudFiles source: JSON maps need STRING keys, got {data_type.simpleString()}.")
        value_converter = _nullable(_converter(data_type.valueType))

        def to_map(v: Any) -> list[tuple[str, Any]]:
            if type(v) is not dict:
                raise _Mismatch
            return [(key, value_converter(item)) for key, item in v.items()]

        return to_map
    if isinstance(data_type, StructType):
        struct = _struct_converter(data_type)

        def to_struct(v: Any) -> dict[str, Any]:
            if type(v) is not dict:
                raise _Mismatch
            row, rescued = struct(v)
            if rescued:
                # Inside arrays and maps a partial struct cannot be rescued field by field.
                raise _Mismatch
            return row

        return to_struct
    raise ValueError(f"cloudFiles source: JSON fields of type {data_type.simpleString()} are not supported.")


def _nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else convert(v)


def _struct_converter(struct: StructType) -> Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any] | None]]:
    """Converts a JSON object; returns the row and what to rescue (unknown fields, mismatched values)."""
    plain: dict[str, Callable[[Any], Any]] = {}
    nested: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    for field in struct.fields:
        if isinstance(field.dataType, StructType):
            nested[field.name] = _struct_converter(field.dataType)
        else:
            plain[field.name] = _converter(field.dataType)

    def convert(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        row: dict[str, Any] = {}
        rescued: dict[str, Any] | None = None
        for key, value in record.items():
            if value is None:
                continue
            if key in plain:
                try:
                    row[key] = plain[key](value)
                except _Mismatch:
                    rescued = rescued or {}
                    rescued[key] = _Mismatched(value)
            elif key in nested:
                if type(value) is not dict:
                    rescued = rescued or {}
                    rescued[key] = _Mismatched(value)
                    continue
                child, child_rescued = nested[key](value)
                row[key] = child
                if child_rescued:
                    rescued = rescued or {}
                    rescued[key] = child_rescued
            else:
                rescued = rescued or {}
                rescued[key] = value
        return row, rescued

    return convert


# --------------------------------------------------------------------------------------------------
# Exactly-once discovery


class DiscoveryLog:
    """The durable, append-only record of every file a stream has discovered, in discovery order.

    Each discovered file gets the next sequence number (1, 2, ...); stream offsets are sequence
    numbers. The log lives under ``<schemaLocation>/_discovery/`` as numbered segment files written
    atomically (``<last seq>.jsonl``), periodically folded into one ``<last seq>.compact.jsonl``.
    An ``id`` file names the log and its source path, so offsets from another log are refused; an
    ``owner`` file names the one reader allowed to append (the latest opened), so a second stream on
    the same schemaLocation fails instead of corrupting it; a ``start`` file keeps the offset a new
    checkpoint starts from.
    """

    SEGMENTS_PER_COMPACTION = 100

    def __init__(self, schema_location: str, source_path: str) -> None:
        self.location = storage.join(schema_location, DISCOVERY_FOLDER)
        self.source_path = source_path
        self.run_id = uuid.uuid4().hex
        self.log_id = ""
        self._files: list[FileInfo] = []
        self._cumulative_bytes: list[int] = [0]
        self._known: set[str] = set()
        self._segments: list[str] = []  # segment URIs written since the last compaction
        self.start_seq: int | None = None  # where a new checkpoint starts (includeExistingFiles)

    @classmethod
    def open(cls, schema_location: str, source_path: str) -> DiscoveryLog:
        discovery = cls(schema_location, source_path)
        discovery._load()
        return discovery

    @property
    def last_seq(self) -> int:
        return len(self._files)

    def files(self, start_seq: int, end_seq: int) -> list[FileInfo]:
        """Files with sequence numbers in ``(start_seq, end_seq]``."""
        return self._files[start_seq:end_seq]

    def end_within_bytes(self, start_seq: int, ceiling: int, max_bytes: int) -> int:
        """The largest end ≤ ``ceiling`` whose files after ``start_seq`` fit in ``max_bytes`` (≥ one file)."""
        budget = self._cumulative_bytes[start_seq] + max_bytes
        low, high = start_seq + 1, ceiling
        if low > high:
            return ceiling
        while low < high:
            middle = (low + high + 1) // 2
            if self._cumulative_bytes[middle] <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def bytes_between(self, start_seq: int, end_seq: int) -> int:
        return self._cumulative_bytes[end_seq] - self._cumulative_bytes[start_seq]

    def record(self, listing: Sequence[FileInfo]) -> int:
        """Append the files of ``listing`` not seen before; returns how many were new.

        One hash-set lookup per listed file, whatever the size of the history. New files are
        ordered by modification time (then path) so the oldest are processed first.
        """
        new = [info for info in listing if info.path not in self._known]
        if not new:
            return 0
        new.sort(key=lambda info: (info.modification_time_ms, info.path))
        first = self.last_seq + 1
        segment = storage.join(self.location, f"{first + len(new) - 1:020d}.jsonl")
        owner = json.loads(storage.read_bytes(storage.join(self.location, "owner")))["run"]
        try:
            if owner != self.run_id:
                raise FileExistsError(segment)
            storage.write_bytes(segment, _encode_entries(new, first), exclusive=True)
        except FileExistsError as error:
            raise RuntimeError(
                f"cloudFiles source: another stream is writing the discovery log {self.location}. "
                "Each stream needs its own cloudFiles.schemaLocation."
            ) from error
        self._append(new)
        self._segments.append(segment)
        if len(self._segments) >= self.SEGMENTS_PER_COMPACTION:
            self._compact()
        log.info("cloudFiles discovered %d new files (seq %d..%d) in %s", len(new), first, self.last_seq, self.location)
        return len(new)

    def set_start(self, seq: int) -> None:
        storage.write_bytes(storage.join(self.location, "start"), json.dumps({"seq": seq}).encode("utf-8"))
        self.start_seq = seq

    def _append(self, files: Sequence[FileInfo]) -> None:
        total = self._cumulative_bytes[-1]
        for info in files:
            self._files.append(info)
            self._known.add(info.path)
            total += info.size
            self._cumulative_bytes.append(total)

    def _compact(self) -> None:
        compacted = storage.join(self.location, f"{self.last_seq:020d}.compact.jsonl")
        storage.write_bytes(compacted, _encode_entries(self._files, 1))
        obsolete = [f.path for f in storage.list_files(self.location) if _segment_seq(f.name) is not None]
        storage.delete(path for path in obsolete if path.rsplit("/", 1)[-1] != compacted.rsplit("/", 1)[-1])
        self._segments = []

    def _load(self) -> None:
        listing = {info.name: info.path for info in storage.list_files(self.location)}
        if "id" in listing:
            identity = json.loads(storage.read_bytes(listing["id"]))
        elif any(_segment_seq(name) is not None for name in listing):
            raise RuntimeError(f"cloudFiles source: discovery log {self.location} has segments but no 'id' file.")
        else:
            identity = {"id": uuid.uuid4().hex, "source": self.source_path}
            storage.write_bytes(storage.join(self.location, "id"), json.dumps(identity).encode("utf-8"))
        self.log_id = identity["id"]
        if identity["source"] != self.source_path:
            raise RuntimeError(
                f"cloudFiles source: the schemaLocation's discovery log {self.location} belongs to a stream reading "
                f"{identity['source']}, not {self.source_path}. Each stream needs its own cloudFiles.schemaLocation."
            )
        # The most recently opened reader owns the log; a stale one is refused at its next append.
        storage.write_bytes(storage.join(self.location, "owner"), json.dumps({"run": self.run_id}).encode("utf-8"))
        if "start" in listing:
            self.start_seq = int(json.loads(storage.read_bytes(listing["start"]))["seq"])
        compactions = sorted(
            (seq, name)
            for name in listing
            if name.endswith(".compact.jsonl") and (seq := _segment_seq(name)) is not None
        )
        base = 0
        if compactions:
            base, name = compactions[-1]
            self._load_segment(listing[name], expected_last=base)
        segments = sorted(
            (seq, name)
            for name in listing
            if name.endswith(".jsonl")
            and not name.endswith(".compact.jsonl")
            and (seq := _segment_seq(name)) is not None
            and seq > base
        )
        for seq, name in segments:
            self._load_segment(listing[name], expected_last=seq)
            self._segments.append(listing[name])

    def _load_segment(self, uri: str, *, expected_last: int) -> None:
        entries = [json.loads(line) for line in storage.read_bytes(uri).splitlines() if line.strip()]
        if entries and entries[0]["seq"] <= self.last_seq:
            # A compaction that crashed before deleting older segments: skip what is already loaded.
            entries = [entry for entry in entries if entry["seq"] > self.last_seq]
        for offset, entry in enumerate(entries):
            if entry["seq"] != self.last_seq + 1 + offset:
                raise RuntimeError(
                    f"cloudFiles source: discovery log {self.location} is not contiguous at {uri} "
                    f"(expected seq {self.last_seq + 1 + offset}, found {entry['seq']})."
                )
        self._append([FileInfo(entry["path"], entry["size"], entry["mtime"]) for entry in entries])
        if self.last_seq != expected_last:
            raise RuntimeError(
                f"cloudFiles source: discovery log segment {uri} ends at {self.last_seq}, expected {expected_last}."
            )


def _segment_seq(name: str) -> int | None:
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() and name.endswith(".jsonl") else None


def _encode_entries(files: Sequence[FileInfo], first_seq: int) -> bytes:
    return "".join(
        json.dumps({"seq": first_seq + index, "path": f.path, "size": f.size, "mtime": f.modification_time_ms}) + "\n"
        for index, f in enumerate(files)
    ).encode("utf-8")


def list_source_files(options: CloudFilesOptions) -> list[FileInfo]:
    """One listing of the source path, filtered by ``pathGlobFilter``."""
    files = storage.list_files(options.path)
    if options.path_glob_filter:
        matches = _glob_matcher(options.path_glob_filter)
        files = [info for info in files if matches(info.name)]
    return files


def _glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Hadoop-style file-name glob: ``*``, ``?``, ``[abc]`` and ``{a,b}`` alternatives."""
    alternatives = _expand_braces(pattern)
    return lambda name: any(fnmatch.fnmatchcase(name, alternative) for alternative in alternatives)


def _expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [expanded for part in match.group(1).split(",") for expanded in _expand_braces(head + part + tail)]


# --------------------------------------------------------------------------------------------------
# Spark readers


class CloudFilesStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batches of newly discovered files; offsets are ``{"seq": N, "log": <log id>}``.

    Spark keeps one instance alive in a planner process for the whole query run (initialOffset,
    latestOffset, partitions, commit); ``read`` runs on a pickled copy in the executors, which
    never touches the discovery log.
    """

    def __init__(self, options: CloudFilesOptions, layout: OutputLayout) -> None:
        self.options = options
        self.layout = layout
        self._log: DiscoveryLog | None = None
        self._target_seq: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_log"] = None
        return state

    def _discovery(self) -> DiscoveryLog:
        if self._log is None:
            assert self.options.schema_location is not None
            self._log = DiscoveryLog.open(self.options.schema_location, self.options.path)
        return self._log

    def _discover(self) -> None:
        self._discovery().record(list_source_files(self.options))

    def _offset(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, "log": self._discovery().log_id}

    def _seq(self, offset: dict[str, Any]) -> int:
        discovery = self._discovery()
        seq = int(offset["seq"])
        if offset.get("log") != discovery.log_id or seq > discovery.last_seq:
            raise RuntimeError(
                f"cloudFiles source: the checkpoint's offset {offset} does not belong to the discovery log at "
                f"{discovery.location} (id {discovery.log_id}, {discovery.last_seq} files). The schemaLocation was "
                "cleared or changed while the checkpoint was kept: reset both together, or restore the schemaLocation."
            )
        return seq

    def initialOffset(self) -> dict[str, Any]:
        discovery = self._discovery()
        if discovery.start_seq is None:
            # Fixed the first time a stream starts on this schemaLocation, so a restart before the
            # first micro-batch (which leaves no offset in the checkpoint) starts from the same place.
            if self.options.include_existing_files:
                discovery.set_start(0)
            else:
                # Files present now are recorded as discovered and skipped: the stream starts after them.
                self._discover()
                discovery.set_start(discovery.last_seq)
        return self._offset(discovery.start_seq)

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.options.max_bytes_per_trigger is not None and self.options.max_files_per_trigger is None:
            return ReadMaxBytes(self.options.max_bytes_per_trigger)
        return ReadMaxFiles(self.options.max_files_per_trigger or DEFAULT_MAX_FILES_PER_TRIGGER)

    def _caps(self, limit: ReadLimit) -> tuple[int | None, int | None]:
        if isinstance(limit, ReadAllAvailable):
            return None, None
        if isinstance(limit, ReadMaxFiles):
            return limit.max_files, self.options.max_bytes_per_trigger
        if isinstance(limit, ReadMaxBytes):
            return self.options.max_files_per_trigger, limit.max_bytes
        default = self.getDefaultReadLimit()
        return self._caps(default)

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        discovery = self._discovery()
        start_seq = self._seq(start)
        max_files, max_bytes = self._caps(limit)
        if self._target_seq is None:
            backlog_files = discovery.last_seq - start_seq
            backlog_full = (max_files is not None and backlog_files >= max_files) or (
                max_bytes is not None
                and backlog_files > 0
                and discovery.bytes_between(start_seq, discovery.last_seq) >= max_bytes
            )
            if not backlog_full:
                # List only when the files already discovered do not fill this batch.
                self._discover()
            ceiling = discovery.last_seq
        else:
            ceiling = self._target_seq
        end = ceiling
        if max_files is not None:
            end = min(end, start_seq + max_files)
        if max_bytes is not None and end > start_seq:
            end = min(end, discovery.end_within_bytes(start_seq, end, max_bytes))
        return self._offset(max(end, start_seq))

    def prepareForTriggerAvailableNow(self) -> None:
        self._discover()
        self._target_seq = self._discovery().last_seq

    def reportLatestOffset(self) -> dict[str, Any] | None:
        return self._offset(self._log.last_seq) if self._log is not None else None

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        return plan_partitions(self._discovery().files(self._seq(start), self._seq(end)))

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_partition(partition, self.layout)

    def commit(self, end: dict[str, Any]) -> None:
        """Nothing to do: the discovery log is written before an offset is handed out."""


class CloudFilesBatchReader(DataSourceReader):
    """``spark.read.format("cloudFiles")``: every file listed now, once."""

    def __init__(self, options: CloudFilesOptions, layout: OutputLayout) -> None:
        self.options = options
        self.layout = layout

    def partitions(self) -> list[InputPartition]:
        return plan_partitions(list_source_files(self.options)) or [FilesPartition([])]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_partition(partition, self.layout)


class CloudFilesDataSource(DataSource):
    """Registered as ``cloudFiles``; options are validated as soon as ``.load()`` is called."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self.cloud_files = CloudFilesOptions.from_options(options)

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> StructType:
        if self.cloud_files.file_format == "text":
            return TEXT_SCHEMA
        raise ValueError(
            "cloudFiles source: cloudFiles.format 'json' needs a schema (schema inference is not implemented "
            "locally). Pass one with .schema(...); add `_rescued_data STRING` and "
            f"`_metadata {METADATA_TYPE.simpleString()}` to it to get those columns."
        )

    def reader(self, schema: StructType) -> CloudFilesBatchReader:
        return CloudFilesBatchReader(self.cloud_files, OutputLayout.for_schema(schema, self.cloud_files))

    def streamReader(self, schema: StructType) -> CloudFilesStreamReader:
        if self.cloud_files.schema_location is None:
            raise ValueError(
                "cloudFiles source: streams need option 'cloudFiles.schemaLocation' (a folder this stream owns; "
                "it keeps the discovery log that makes file discovery exactly-once across restarts)."
            )
        return CloudFilesStreamReader(self.cloud_files, OutputLayout.for_schema(schema, self.cloud_files))
