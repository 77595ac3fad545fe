"""The output schema of a ``cloudFiles`` read, the role of each of its columns, and filling them.

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

import dataclasses
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakehouse_local import storage
from lakehouse_local.sources.cloudfiles.options import BINARY_FILE, CloudFilesOptions
from lakehouse_local.storage import FileInfo

METADATA_COLUMN = "_metadata"
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
# Spark's binaryFile schema: one row per file, its bytes as they are (no decompression).
BINARY_FILE_SCHEMA = StructType(
    [
        StructField("path", StringType()),
        StructField("modificationTime", TimestampType()),
        StructField("length", LongType()),
        StructField("content", BinaryType()),
    ]
)


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

        if options.file_format == BINARY_FILE:
            if names != [f.name for f in BINARY_FILE_SCHEMA.fields]:
                raise ValueError(
                    f"cloudFiles source: the binaryFile format has the fixed schema {BINARY_FILE_SCHEMA.simpleString()}; "
                    f"got columns {names}."
                )
            return cls(schema, BINARY_FILE, tuple(schema.fields), None, None, None, ())

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


def assemble(
    columns: dict[str, pa.Array | pa.ChunkedArray],
    rows: int,
    rescued: pa.Array | None,
    corrupt: pa.Array | None,
    info: FileInfo,
    layout: OutputLayout,
    arrow_schema: pa.Schema,
) -> pa.Table:
    """One file's rows as a table of exactly ``arrow_schema``: data columns cast, special columns filled."""
    arrays = []
    for field in arrow_schema:
        if field.name == layout.metadata_column:
            arrays.append(pa.repeat(pa.scalar(metadata_value(info, layout.metadata_fields), type=field.type), rows))
        elif field.name == layout.rescued_column:
            arrays.append(rescued if rescued is not None else pa.nulls(rows, pa.string()))
        elif field.name == layout.corrupt_column:
            arrays.append(corrupt if corrupt is not None else pa.nulls(rows, pa.string()))
        else:
            column = columns[field.name]
            arrays.append(column if column.type == field.type else column.cast(field.type))
    arrays = [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a], type=a.type) for a in arrays]
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def metadata_value(info: FileInfo, fields: Sequence[str]) -> dict[str, Any]:
    """The ``_metadata`` struct of a file, with the fields the schema asks for."""
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
