"""Reading a Delta table's data files: grouping them into Spark partitions, Parquet into Arrow, batch reads.

Like Spark's own file sources, a read of fewer files than cores splits the large ones: a file of several
Parquet row groups is read by as many tasks as there are cores, each taking a run of its row groups, so a
micro-batch of one large file (a Bronze batch, say) still uses every core.

A streaming read cuts a file larger than ``CUT_FILES_OVER_BYTES`` (a compacted one, up to 128 MiB) into pieces
of consecutive row groups of about ``PIECE_BYTES``, and counts each piece as a file (``pieces``): a micro-batch
then never holds a whole compacted file, which locally would pass through the driver in one batch. Files a
stream writes batch by batch are smaller, and stay whole.

Each file is read with pyarrow and returned as record batches of exactly the Spark schema's Arrow
type: partition columns are restored from the log's partition values, columns the table gained after
a file was written are null.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from urllib.parse import unquote, urlparse

import pyarrow as pa
from pyspark.sql.datasource import DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from lakehouse_local import storage
from lakehouse_local.sources.delta.errors import DeltaSourceError
from lakehouse_local.sources.delta.log import DataFile, snapshot_files
from lakehouse_local.sources.options import SourceOptions

MAX_PARTITION_BYTES = 128 * 1024 * 1024
# What opening a file costs, counted as bytes when files are packed (Spark's spark.sql.files.openCostInBytes).
OPEN_COST_BYTES = 4 * 1024 * 1024
# A file smaller than this is read whole by one task, however few files a read has.
MIN_SPLIT_BYTES = 4 * 1024 * 1024
# A streaming read counts a file larger than the first as runs of row groups of about the second (see ``pieces``).
CUT_FILES_OVER_BYTES = 64 * 1024 * 1024
PIECE_BYTES = 16 * 1024 * 1024


class DeltaFilesPartition(InputPartition):
    """A group of data files read by one Spark task, or some row groups of one file (``row_groups``)."""

    def __init__(self, table: str, files: list[DataFile], row_groups: tuple[int, ...] | None = None) -> None:
        super().__init__(None)
        self.table = table
        self.files = files
        self.row_groups = row_groups

    def __repr__(self) -> str:
        groups = f", row groups {list(self.row_groups)}" if self.row_groups is not None else ""
        return f"DeltaFilesPartition({self.table}, {len(self.files)} files{groups})"


def group_files(table: str, files: Sequence[DataFile], *, cores: int | None = None) -> list[DeltaFilesPartition]:
    """Files in order, in partitions of about equal bytes (each file counted with ``OPEN_COST_BYTES`` more):
    one per core (``cores``, default: this machine's), or more where a partition would exceed 128 MiB, so a
    read of many small files gives every core a task, as Spark's file sources do. When there are fewer files
    than cores, each file of at least 4 MiB is split by row group into up to ``cores`` partitions."""
    cores = cores or os.cpu_count() or 1
    if 0 < len(files) < cores:
        return [part for data_file in files for part in _split(table, data_file, cores)]
    costs = [data_file.size + OPEN_COST_BYTES for data_file in files]
    total = sum(costs)
    count = max(cores, math.ceil(total / MAX_PARTITION_BYTES))
    width = total / count
    groups: list[list[DataFile]] = [[] for _ in range(count)]
    before = 0
    for data_file, cost in zip(files, costs, strict=True):
        # A file goes to the partition its middle falls in: partitions stay contiguous and about equal.
        groups[min(count - 1, int((before + cost / 2) // width))].append(data_file)
        before += cost
    return [DeltaFilesPartition(table, group) for group in groups if group]


def pieces(
    table: str, files: Sequence[DataFile], *, over_bytes: int | None = None, piece_bytes: int | None = None
) -> list[DataFile]:
    """``files`` in order, each file larger than ``over_bytes`` (default ``CUT_FILES_OVER_BYTES``) cut into
    pieces: runs of consecutive row groups whose compressed size stays within ``piece_bytes`` (default
    ``PIECE_BYTES``; at least one row group each).

    A file's row groups never change, so the same files always give the same pieces: offsets that count
    pieces point at the same rows after a restart.
    """
    import pyarrow.parquet as pq

    over = over_bytes or CUT_FILES_OVER_BYTES
    limit = piece_bytes or PIECE_BYTES
    cut: list[DataFile] = []
    for data_file in files:
        if data_file.size <= over or data_file.row_groups is not None:
            cut.append(data_file)
            continue
        metadata = pq.ParquetFile(_data_file_path(table, data_file.path)).metadata
        sizes = [
            sum(group.column(c).total_compressed_size for c in range(group.num_columns))
            for group in (metadata.row_group(i) for i in range(metadata.num_row_groups))
        ]
        runs: list[list[int]] = []
        run_bytes = 0
        for index, size in enumerate(sizes):
            if not runs or run_bytes + size > limit:
                runs.append([])
                run_bytes = 0
            runs[-1].append(index)
            run_bytes += size
        if len(runs) < 2:
            cut.append(data_file)
            continue
        total = sum(sizes) or 1
        for run in runs:
            share = data_file.size * sum(sizes[i] for i in run) // total
            cut.append(dataclasses.replace(data_file, row_groups=tuple(run), size=share))
    return cut


def _row_groups(table: str, data_file: DataFile) -> tuple[int, ...]:
    """The row groups of ``data_file``: all of the file's, or the piece's."""
    import pyarrow.parquet as pq

    if data_file.row_groups is not None:
        return data_file.row_groups
    return tuple(range(pq.ParquetFile(_data_file_path(table, data_file.path)).metadata.num_row_groups))


def _split(table: str, data_file: DataFile, parts: int) -> list[DeltaFilesPartition]:
    """``data_file`` as up to ``parts`` partitions of consecutive row groups (whole when small or one group)."""
    if data_file.size < MIN_SPLIT_BYTES:
        return [DeltaFilesPartition(table, [data_file])]
    groups = _row_groups(table, data_file)
    parts = min(parts, len(groups))
    if parts < 2:
        return [DeltaFilesPartition(table, [data_file])]
    bounds = [round(i * len(groups) / parts) for i in range(parts + 1)]
    return [
        DeltaFilesPartition(table, [data_file], groups[bounds[i] : bounds[i + 1]]) for i in range(parts)
    ]


def read_files(partition: DeltaFilesPartition, schema: StructType) -> Iterator[pa.RecordBatch]:
    """The rows of ``partition``'s files as record batches of exactly ``schema``'s Arrow type."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow_schema = to_arrow_schema(schema, timezone="UTC")
    # Spark plans one empty partition of its own when a snapshot has no files.
    for data_file in getattr(partition, "files", []):
        partition_values = dict(data_file.partition_values)
        parquet = pq.ParquetFile(_data_file_path(partition.table, data_file.path))
        in_file = set(parquet.schema_arrow.names)
        columns = [f.name for f in arrow_schema if f.name in in_file and f.name not in partition_values]
        row_groups = getattr(partition, "row_groups", None)
        if row_groups is None:
            row_groups = data_file.row_groups
        if columns:
            batches = parquet.iter_batches(columns=columns, row_groups=row_groups, use_threads=False)
        else:  # only partition columns are read: the file (or its row groups) gives the row count
            metadata = parquet.metadata
            counted = range(metadata.num_row_groups) if row_groups is None else row_groups
            batches = iter([_row_count_batch(sum(metadata.row_group(i).num_rows for i in counted))])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            arrays = []
            for field in arrow_schema:
                if field.name in partition_values:
                    arrays.append(_partition_array(partition_values[field.name], field.type, batch.num_rows))
                elif field.name in batch.schema.names:
                    arrays.append(_cast(batch.column(field.name), field.type))
                else:  # a column added to the table after this file was written
                    arrays.append(pa.nulls(batch.num_rows, field.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def _row_count_batch(num_rows: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.nulls(num_rows, pa.null())], names=["__rows__"])


def _data_file_path(table: str, path: str) -> str:
    """The local file of a data file the log names: relative to the table (URL-encoded) or a ``file:`` URI."""
    scheme = urlparse(path).scheme
    if scheme == "file":
        return str(storage.local_path(path))
    if scheme:
        raise DeltaSourceError(f"Delta table at {table} refers to a non-local data file {path}")
    return os.path.join(table, unquote(path))


def _cast(array: pa.Array, data_type: pa.DataType) -> pa.Array:
    if array.type.equals(data_type):
        return array
    return array.cast(data_type, safe=False)


def _partition_array(value: str | None, data_type: pa.DataType, length: int) -> pa.Array:
    if value is None:
        return pa.nulls(length, data_type)
    text = pa.array([value], pa.string())
    if pa.types.is_timestamp(data_type):
        # Delta writes "2026-11-20 13:00:00[.ffffff]"; a zone-less value is UTC for TIMESTAMP columns.
        try:
            parsed = text.cast(data_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed = text.cast(pa.timestamp("us")).cast(data_type)
    elif pa.types.is_binary(data_type):
        parsed = pa.array([value.encode()], data_type)
    else:
        parsed = text.cast(data_type)
    return pa.repeat(parsed[0], length)


class DeltaBatchReader(DataSourceReader):
    """A snapshot of the table: its data files grouped into Spark partitions."""

    def __init__(self, path: str, schema: StructType, options: dict[str, str]) -> None:
        self.path = path
        self.schema = schema
        opts = SourceOptions(options, context=f"delta read of {path}", error=DeltaSourceError)
        timestamp = opts.get("timestampAsOf")
        if opts.get("versionAsOf") is not None and timestamp is not None:
            raise DeltaSourceError(f"delta read of {path}: give versionAsOf or timestampAsOf, not both")
        version = opts.integer("versionAsOf")
        self.version: int | str | None = version if version is not None else timestamp

    def partitions(self) -> Sequence[InputPartition]:
        _, _, files = snapshot_files(self.path, self.version)
        return group_files(self.path, files)

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_files(partition, self.schema)
