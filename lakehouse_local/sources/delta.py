"""The ``delta`` Spark Python data source: Delta tables on a local folder, read and written by delta-rs.

Registered by the local session under the name ``delta``, so the notebooks' ``.format("delta")``
reads and writes work unchanged without the Delta Lake jars:

- ``spark.read.format("delta").load(path)``: the current snapshot (or ``versionAsOf`` /
  ``timestampAsOf``), read file by file with pyarrow.
- ``df.write.format("delta").mode("append" | "overwrite").save(path)``: one Delta commit.
- ``spark.readStream.format("delta").load(path)``: offsets are table versions. The first batch reads
  the snapshot current when the stream starts, later batches read the files added (``dataChange``)
  by each new commit. Rewrites that do not change data (compaction) are skipped; commits that
  update or delete rows stop the stream unless ``skipChangeCommits`` is set, as in Delta.
- ``df.writeStream.format("delta").option("checkpointLocation", ...).start(path)``: append only,
  one atomic Delta commit per micro-batch, idempotent per (query, batch id).

Options (case-insensitive). Anything else raises an error rather than being ignored:

=====================  =======================================================================
batch read             ``versionAsOf``, ``timestampAsOf``
stream read            ``startingVersion`` (a version or ``latest``), ``maxFilesPerTrigger``
                       (default 1000, also honoured by ``trigger(availableNow=True)``),
                       ``skipChangeCommits``
batch write            ``mergeSchema``, ``overwriteSchema`` (with mode ``overwrite``), ``txnAppId`` +
                       ``txnVersion`` (skip a version already written, as Delta does)
stream write           ``checkpointLocation`` (required), ``mergeSchema``, ``txnAppId``
=====================  =======================================================================

Stream offsets are ``{"sourceVersion": 1, "reservoirId": <table id>, "reservoirVersion": v,
"index": i, "isStartingVersion": b}`` like Delta's own: every file up to and including file ``i``
(``-1``: none) of version ``v`` has been read, where the files of a version are the snapshot's
files (sorted by modification time, then path) when ``isStartingVersion`` is true, or the
data-change ``add`` actions of commit ``v`` in log order otherwise. The index lets
``maxFilesPerTrigger`` split a large version across batches. A new query's initial offset leaves
the version open (``reservoirVersion`` -1); the first batch pins it to the version current at that
moment and reads only that snapshot, so replaying that batch after a restart reads the same files.

Micro-batch commits carry the app transaction ``(app id, batch id)``. The app id is the streaming
query id that Spark keeps in ``<checkpointLocation>/metadata``: stable across restarts of the same
query and new when the checkpoint is deleted (a new query that must write everything again), which
is what Delta's own sink uses. ``txnAppId`` overrides it. A batch id the table already records is
skipped, so replaying a batch after a crash is a no-op. Executors serialise their rows as Arrow IPC
in the commit message and nothing reaches the table until the driver-side ``commit``, where delta-rs
writes the Parquet files and then the log entry: a process killed before the log entry leaves at
most data files that no commit refers to, which no reader sees. An empty micro-batch commits
nothing (it only creates a missing table, so downstream readers find it).

Not supported, with an error: ``partitionBy`` (Spark refuses it for Python data sources; create the
table partitioned with :func:`lakehouse_local.delta_rs.create_table` and writes follow the table's
partitioning), the ``complete`` and ``update`` output modes, and tables that use deletion vectors
or column mapping.

Fault injection for the restart tests: ``LAKEHOUSE_DELTA_SINK_HOLD="<table folder name>:<phase>:<batch
id>[;...]"`` (phase ``before_commit`` or ``after_commit``) makes the sink's commit of that batch to
that table write ``<LAKEHOUSE_DELTA_SINK_HOLD_MARKERS>/<table folder name>.held`` and wait there until
the process is killed.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamArrowWriter,
    DataSourceStreamReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

from lakehouse_local import delta_rs

log = logging.getLogger(__name__)

DEFAULT_MAX_FILES_PER_TRIGGER = 1000
MAX_PARTITION_BYTES = 128 * 1024 * 1024
MAX_FILES_PER_PARTITION = 256
HOLD_ENV = "LAKEHOUSE_DELTA_SINK_HOLD"
HOLD_MARKERS_ENV = "LAKEHOUSE_DELTA_SINK_HOLD_MARKERS"

# Options Spark itself adds to every read or write, besides the user's.
_SPARK_OPTIONS = {"path"}
_BATCH_READ_OPTIONS = {"versionasof", "timestampasof"}
_STREAM_READ_OPTIONS = {"startingversion", "maxfilespertrigger", "skipchangecommits"}
_BATCH_WRITE_OPTIONS = {"mergeschema", "overwriteschema", "txnappid", "txnversion"}
_STREAM_WRITE_OPTIONS = {"checkpointlocation", "queryname", "mergeschema", "txnappid"}
# Spark lower-cases option names; errors name them as users write them.
_OPTION_NAMES = {
    name.lower(): name
    for name in [
        "versionAsOf",
        "timestampAsOf",
        "startingVersion",
        "startingTimestamp",
        "maxFilesPerTrigger",
        "maxBytesPerTrigger",
        "skipChangeCommits",
        "ignoreChanges",
        "ignoreDeletes",
        "readChangeFeed",
        "mergeSchema",
        "overwriteSchema",
        "replaceWhere",
        "partitionOverwriteMode",
        "checkpointLocation",
        "queryName",
        "txnAppId",
        "txnVersion",
        "userMetadata",
        "optimizeWrite",
    ]
}

_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}


class DeltaSourceError(ValueError):
    """A ``delta`` read or write that the local runtime cannot do as asked."""


class DeltaChangeCommitError(DeltaSourceError):
    """A streamed table's commit updated or deleted rows, which an append stream cannot follow."""


# --------------------------------------------------------------------------- data source


class DeltaDataSource(DataSource):
    """``format("delta")`` over delta-rs: batch and streaming reads and writes of local tables."""

    @classmethod
    def name(cls) -> str:
        return "delta"

    def schema(self) -> StructType:
        return table_spark_schema(self._path())

    def reader(self, schema: StructType) -> DataSourceReader:
        _check_options(self.options, _BATCH_READ_OPTIONS, "batch read")
        return DeltaBatchReader(self._path(), schema, dict(self.options))

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        _check_options(self.options, _STREAM_READ_OPTIONS, "streaming read")
        return DeltaStreamReader(self._path(), schema, dict(self.options))

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceArrowWriter:
        _check_options(self.options, _BATCH_WRITE_OPTIONS, "batch write")
        path = self._path()
        merge_schema = _bool_option(self.options, "mergeSchema")
        overwrite_schema = _bool_option(self.options, "overwriteSchema")
        if overwrite_schema and not overwrite:
            raise DeltaSourceError(f"delta write to {path}: overwriteSchema needs mode('overwrite')")
        if merge_schema and overwrite_schema:
            raise DeltaSourceError(f"delta write to {path}: give mergeSchema or overwriteSchema, not both")
        schema_mode = "overwrite" if overwrite_schema else "merge" if merge_schema else None
        app_id, version = self.options.get("txnAppId"), self.options.get("txnVersion")
        if (app_id is None) != (version is None):
            raise DeltaSourceError(f"delta write to {path}: give txnAppId and txnVersion together, or neither")
        return DeltaBatchWriter(
            path,
            schema,
            overwrite=overwrite,
            schema_mode=schema_mode,
            app_id=app_id,
            version=None if version is None else _int_option(version, "txnVersion", path),
        )

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamArrowWriter:
        _check_options(self.options, _STREAM_WRITE_OPTIONS, "streaming write")
        path = self._path()
        if overwrite:
            raise DeltaSourceError(
                f"delta streaming write to {path}: the complete output mode is not supported locally; "
                "use outputMode('append'), or foreachBatch with lakehouse_local.delta_rs.merge for upserts."
            )
        return DeltaStreamWriter(
            path,
            schema,
            checkpoint_location=self.options.get("checkpointLocation"),
            txn_app_id=self.options.get("txnAppId"),
            merge_schema=_bool_option(self.options, "mergeSchema"),
        )

    def _path(self) -> str:
        if "paths" in self.options:
            raise DeltaSourceError("format('delta') reads one table: pass a single path to load()")
        path = self.options.get("path")
        if not path:
            raise DeltaSourceError("format('delta') needs the table's path: .load(path) / .save(path) / .start(path)")
        return delta_rs.table_path(path)


# --------------------------------------------------------------------------- table metadata


def table_spark_schema(path: str) -> StructType:
    """The Spark schema of the Delta table at ``path``, column comments kept as field metadata.

    Delta serialises its schema in Spark's own JSON form, so the conversion is exact.
    """
    from deltalake import DeltaTable

    _require_table(path)
    return StructType.fromJson(json.loads(DeltaTable(path).schema().to_json()))


def _require_table(path: str) -> None:
    if not delta_rs.table_exists(path):
        raise delta_rs.DeltaTableNotFoundError(path)


def _check_readable(path: str, table) -> None:
    protocol = table.protocol()
    features = set(protocol.reader_features or []) & _UNSUPPORTED_READER_FEATURES
    if features:
        raise DeltaSourceError(
            f"Delta table at {path} uses the reader features {sorted(features)}, which the local "
            "delta source does not read. Recreate the table locally without them "
            "(delta.enableDeletionVectors=false, no column mapping), or read it on Databricks."
        )


@dataclass(frozen=True)
class DataFile:
    """One data file of a table version: its path relative to the table and partition values."""

    path: str
    partition_values: tuple[tuple[str, str | None], ...]
    size: int
    modification_time: int


def snapshot_files(path: str, version: int | str | None = None) -> tuple[int, str, list[DataFile]]:
    """(version, table id, files) of a snapshot, files sorted by modification time then path."""
    from deltalake import DeltaTable

    _require_table(path)
    table = DeltaTable(path)
    if version is not None:
        table.load_as_version(version)
    _check_readable(path, table)
    partition_columns = list(table.metadata().partition_columns)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    files = []
    for action in actions:
        values = []
        for column in partition_columns:
            value = action.get(f"partition.{column}")
            values.append((column, None if value is None else _partition_string(value)))
        files.append(
            DataFile(
                path=action["path"],
                partition_values=tuple(values),
                size=int(action["size_bytes"]),
                modification_time=int(action["modification_time"]),
            )
        )
    files.sort(key=lambda f: (f.modification_time, f.path))
    return table.version(), str(table.metadata().id), files


def _partition_string(value) -> str:
    # get_add_actions returns typed partition values; the reader parses strings like the log's.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- reading files


class DeltaFilesPartition(InputPartition):
    """A group of data files read by one Spark task."""

    def __init__(self, table: str, files: list[DataFile]) -> None:
        super().__init__(None)
        self.table = table
        self.files = files

    def __repr__(self) -> str:
        return f"DeltaFilesPartition({self.table}, {len(self.files)} files)"


def group_files(table: str, files: Sequence[DataFile]) -> list[DeltaFilesPartition]:
    """Files packed in order into partitions of at most 128 MiB (and 256 files) each."""
    partitions: list[DeltaFilesPartition] = []
    current: list[DataFile] = []
    size = 0
    for data_file in files:
        if current and (size + data_file.size > MAX_PARTITION_BYTES or len(current) >= MAX_FILES_PER_PARTITION):
            partitions.append(DeltaFilesPartition(table, current))
            current, size = [], 0
        current.append(data_file)
        size += data_file.size
    if current:
        partitions.append(DeltaFilesPartition(table, current))
    return partitions


def read_files(partition: DeltaFilesPartition, schema: StructType) -> Iterator[pa.RecordBatch]:
    """The rows of ``partition``'s files as record batches of exactly ``schema``'s Arrow type."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow_schema = to_arrow_schema(schema, timezone="UTC")
    # Spark plans one empty partition of its own when a snapshot has no files.
    for data_file in getattr(partition, "files", []):
        partition_values = dict(data_file.partition_values)
        parquet = pq.ParquetFile(_local_file(partition.table, data_file.path))
        in_file = set(parquet.schema_arrow.names)
        columns = [f.name for f in arrow_schema if f.name in in_file and f.name not in partition_values]
        if columns:
            batches = parquet.iter_batches(columns=columns, use_threads=False)
        else:  # only partition columns are read: the file gives the row count
            batches = iter([_row_count_batch(parquet.metadata.num_rows)])
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


def _local_file(table: str, path: str) -> str:
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme:
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


# --------------------------------------------------------------------------- batch read


class DeltaBatchReader(DataSourceReader):
    """A snapshot of the table: its data files grouped into Spark partitions."""

    def __init__(self, path: str, schema: StructType, options: dict[str, str]) -> None:
        self.path = path
        self.schema = schema
        options = {k.lower(): v for k, v in options.items()}
        self.version: int | str | None = None
        if "versionasof" in options and "timestampasof" in options:
            raise DeltaSourceError(f"delta read of {path}: give versionAsOf or timestampAsOf, not both")
        if "versionasof" in options:
            self.version = _int_option(options["versionasof"], "versionAsOf", path)
        elif "timestampasof" in options:
            self.version = options["timestampasof"]

    def partitions(self) -> Sequence[InputPartition]:
        _, _, files = snapshot_files(self.path, self.version)
        return group_files(self.path, files)

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_files(partition, self.schema)


# --------------------------------------------------------------------------- stream read


@dataclass(frozen=True)
class _Offset:
    table_id: str | None
    version: int
    index: int
    starting: bool

    @classmethod
    def from_json(cls, offset: dict) -> _Offset:
        return cls(
            table_id=offset.get("reservoirId"),
            version=int(offset["reservoirVersion"]),
            index=int(offset["index"]),
            starting=bool(offset["isStartingVersion"]),
        )

    def to_json(self) -> dict:
        return {
            "sourceVersion": 1,
            "reservoirId": self.table_id,
            "reservoirVersion": self.version,
            "index": self.index,
            "isStartingVersion": self.starting,
        }

    @property
    def pinned(self) -> bool:
        """False for a new query's initial offset, whose snapshot version is not chosen yet."""
        return self.version >= 0


class DeltaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batches of a Delta table's new data files, version after version."""

    def __init__(self, path: str, schema: StructType, options: dict[str, str]) -> None:
        self.path = path
        self.schema = schema
        options = {k.lower(): v for k, v in options.items()}
        self.starting_version = options.get("startingversion")
        if self.starting_version is not None and self.starting_version != "latest":
            self.starting_version = _int_option(self.starting_version, "startingVersion", path)
        self.max_files = _int_option(
            options.get("maxfilespertrigger", DEFAULT_MAX_FILES_PER_TRIGGER), "maxFilesPerTrigger", path
        )
        if self.max_files < 1:
            raise DeltaSourceError(f"delta stream from {path}: maxFilesPerTrigger must be at least 1")
        self.skip_change_commits = _bool_option(options, "skipchangecommits")
        self._target_version: int | None = None
        self._files_cache: dict[tuple[int, bool], list[DataFile]] = {}
        self._table_id: str | None = None

    # Offsets ------------------------------------------------------------------------------

    def initialOffset(self) -> dict:
        table_id = self._id()
        if self.starting_version is None:
            return _Offset(table_id, -1, -1, True).to_json()
        if self.starting_version == "latest":
            return _Offset(table_id, self._latest_version() + 1, -1, False).to_json()
        return _Offset(table_id, self.starting_version, -1, False).to_json()

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxFiles(self.max_files)

    def prepareForTriggerAvailableNow(self) -> None:
        self._target_version = self._latest_version()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        begin = _Offset.from_json(start)
        self._check_same_table(begin)
        latest = self._target_version if self._target_version is not None else self._latest_version()
        budget = limit.max_files if isinstance(limit, ReadMaxFiles) else None
        if not isinstance(limit, (ReadMaxFiles, ReadAllAvailable)):
            raise DeltaSourceError(f"delta stream from {self.path}: unsupported read limit {limit}")
        if not begin.pinned:
            # First batch of a new query: the snapshot current now, and nothing after it.
            snapshot = self._files(latest, True)
            taken = len(snapshot) if budget is None else min(budget, len(snapshot))
            return _Offset(begin.table_id, latest, taken - 1, True).to_json()
        end = begin
        version, index, starting = begin.version, begin.index, begin.starting
        while version <= latest:
            try:
                files = self._files(version, starting)
            except DeltaChangeCommitError:
                if end != begin:  # deliver the data before the change first, then fail on it
                    break
                raise
            remaining = len(files) - (index + 1)
            if remaining > 0:
                taken = remaining if budget is None else min(budget, remaining)
                index += taken
                end = _Offset(begin.table_id, version, index, starting)
                if budget is not None:
                    budget -= taken
                    if budget == 0:
                        break
            version, index, starting = version + 1, -1, False
        return end.to_json()

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        begin, stop = _Offset.from_json(start), _Offset.from_json(end)
        if not stop.pinned:
            return []
        if not begin.pinned:
            if not stop.starting:
                raise DeltaSourceError(
                    f"delta stream from {self.path}: the checkpoint's first batch ends at {end}, which is not "
                    "the starting snapshot; the checkpoint does not belong to this source. Use a new checkpoint."
                )
            begin = _Offset(stop.table_id, stop.version, -1, True)
        files: list[DataFile] = []
        version, index, starting = begin.version, begin.index, begin.starting
        # A starting snapshot of version v comes after the commits up to v and before commit v + 1.
        while (version, starting) <= (stop.version, stop.starting):
            version_files = self._files(version, starting)
            last = stop.index if (version, starting) == (stop.version, stop.starting) else len(version_files) - 1
            files.extend(version_files[index + 1 : last + 1])
            version, index, starting = version + 1, -1, False
        return group_files(self.path, files)

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_files(partition, self.schema)

    def commit(self, end: dict) -> None:
        done = _Offset.from_json(end)
        for key in [k for k in self._files_cache if k[0] < done.version]:
            del self._files_cache[key]

    # Table log ----------------------------------------------------------------------------

    def _log_dir(self) -> Path:
        return Path(self.path) / "_delta_log"

    def _latest_version(self) -> int:
        _require_table(self.path)
        versions = [int(p.name[:20]) for p in self._log_dir().glob("*.json") if p.name[:20].isdigit()]
        if not versions:
            raise delta_rs.DeltaTableNotFoundError(self.path)
        return max(versions)

    def _id(self) -> str:
        if self._table_id is None:
            from deltalake import DeltaTable

            _require_table(self.path)
            self._table_id = str(DeltaTable(self.path).metadata().id)
        return self._table_id

    def _check_same_table(self, offset: _Offset) -> None:
        if offset.table_id is not None and offset.table_id != self._id():
            raise DeltaSourceError(
                f"delta stream from {self.path}: the table was replaced (id {self._id()}, the checkpoint "
                f"was written for id {offset.table_id}). Delete the query's checkpoint to read the new table "
                "from the start."
            )

    def _files(self, version: int, starting: bool) -> list[DataFile]:
        key = (version, starting)
        if key not in self._files_cache:
            if starting:
                snapshot_version, _, files = snapshot_files(self.path, version)
                assert snapshot_version == version
            else:
                files = self._commit_files(version)
            self._files_cache[key] = files
        return self._files_cache[key]

    def _commit_files(self, version: int) -> list[DataFile]:
        """The data files that commit ``version`` added, in log order (empty for a rewrite)."""
        commit = self._log_dir() / f"{version:020d}.json"
        try:
            lines = commit.read_text().splitlines()
        except FileNotFoundError:
            raise DeltaSourceError(
                f"delta stream from {self.path}: commit {version} is no longer in _delta_log (log retention "
                "removed it). Restart the stream with a new checkpoint (and startingVersion if needed)."
            ) from None
        adds: list[DataFile] = []
        changes = False
        for line in lines:
            if not line.strip():
                continue
            action = json.loads(line)
            if "protocol" in action:
                features = set(action["protocol"].get("readerFeatures") or []) & _UNSUPPORTED_READER_FEATURES
                if features:
                    raise DeltaSourceError(
                        f"delta stream from {self.path}: commit {version} enables {sorted(features)}, which the "
                        "local delta source does not read."
                    )
            add = action.get("add")
            if add is not None and add.get("dataChange", True):
                if add.get("deletionVector"):
                    raise DeltaSourceError(
                        f"delta stream from {self.path}: commit {version} uses deletion vectors, which the "
                        "local delta source does not read."
                    )
                adds.append(
                    DataFile(
                        path=add["path"],
                        partition_values=tuple(sorted((add.get("partitionValues") or {}).items())),
                        size=int(add.get("size") or 0),
                        modification_time=int(add.get("modificationTime") or 0),
                    )
                )
            remove = action.get("remove")
            if remove is not None and remove.get("dataChange", True):
                changes = True
        if changes:
            if self.skip_change_commits:
                log.info("delta stream from %s: skipping change commit %d", self.path, version)
                return []
            raise DeltaChangeCommitError(
                f"delta stream from {self.path}: commit {version} updated or deleted existing rows (it removes "
                "data files), which a streaming read of appends cannot follow. Set "
                "option('skipChangeCommits', 'true') to ignore such commits, or restart the stream from a new "
                "checkpoint."
            )
        return adds


# --------------------------------------------------------------------------- writing


@dataclass
class ArrowRowsMessage(WriterCommitMessage):
    """One task's rows, as an Arrow IPC stream, carried to the driver-side commit."""

    ipc: bytes
    num_rows: int


def _rows_message(iterator: Iterator[pa.RecordBatch]) -> ArrowRowsMessage:
    sink = pa.BufferOutputStream()
    writer = None
    rows = 0
    for batch in iterator:
        if writer is None:
            writer = pa.ipc.new_stream(sink, batch.schema)
        writer.write_batch(batch)
        rows += batch.num_rows
    if writer is None:
        return ArrowRowsMessage(ipc=b"", num_rows=0)
    writer.close()
    return ArrowRowsMessage(ipc=sink.getvalue().to_pybytes(), num_rows=rows)


def rows_of(messages: Sequence[WriterCommitMessage | None], schema: StructType) -> pa.Table:
    """The rows of all tasks' messages as one table of ``schema`` (column comments as metadata)."""
    target = delta_arrow_schema(schema)
    tables = []
    for message in messages:
        if message is None:
            raise DeltaSourceError("a write task sent no commit message; the write cannot be committed")
        if message.num_rows:
            tables.append(pa.ipc.open_stream(message.ipc).read_all())
    if not tables:
        return target.empty_table()
    # The cast also swaps Spark's own field metadata for the comments Delta keeps.
    return pa.concat_tables([t.cast(target) for t in tables])


def delta_arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema to write for a Spark schema; a column's comment becomes ``{"comment": ...}``.

    Every column is nullable, as in tables Delta creates from DataFrame writes: a NOT NULL column
    that ``mergeSchema`` adds would contradict the existing rows, which have no value for it.
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow = to_arrow_schema(schema.toNullable(), timezone="UTC")
    fields = []
    for spark_field, field in zip(schema.fields, arrow, strict=True):
        comment = (spark_field.metadata or {}).get("comment")
        fields.append(field.with_metadata({"comment": str(comment)} if comment else None))
    return pa.schema(fields)


class DeltaBatchWriter(DataSourceArrowWriter):
    """``df.write.format("delta")``: tasks ship Arrow rows, the driver makes one commit.

    With ``txnAppId``/``txnVersion`` the write is skipped when the table already records that
    version for that app id, as in Delta.
    """

    def __init__(
        self,
        path: str,
        schema: StructType,
        *,
        overwrite: bool,
        schema_mode: str | None,
        app_id: str | None = None,
        version: int | None = None,
    ) -> None:
        self.path = path
        self.schema = schema
        self.overwrite = overwrite
        self.schema_mode = schema_mode
        self.app_id = app_id
        self.version = version

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ArrowRowsMessage:
        return _rows_message(iterator)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        data = rows_of(messages, self.schema)
        delta_rs.write(
            self.path,
            data,
            mode="overwrite" if self.overwrite else "append",
            schema_mode=self.schema_mode,
            app_id=self.app_id,
            version=self.version,
        )

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        log.warning("delta write to %s aborted: nothing was committed", self.path)


class DeltaStreamWriter(DataSourceStreamArrowWriter):
    """``writeStream.format("delta")``: one idempotent Delta commit per micro-batch."""

    def __init__(
        self,
        path: str,
        schema: StructType,
        *,
        checkpoint_location: str | None,
        txn_app_id: str | None,
        merge_schema: bool,
    ) -> None:
        self.path = path
        self.schema = schema
        self.checkpoint_location = checkpoint_location
        self.txn_app_id = txn_app_id
        self.merge_schema = merge_schema
        if not txn_app_id and not checkpoint_location:
            raise DeltaSourceError(
                f"delta streaming write to {path}: set option('checkpointLocation', ...) so that each "
                "micro-batch is committed exactly once (or option('txnAppId', ...) with a stable id)."
            )

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ArrowRowsMessage:
        return _rows_message(iterator)

    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        app_id = self.app_id()
        _hold_if_asked("before_commit", batchId, self.path)
        data = rows_of(messages, self.schema)
        if data.num_rows == 0:
            # Nothing to record, but downstream readers need the table to exist.
            if delta_rs.create_table(self.path, data.schema):
                log.info("delta stream to %s: created the table at empty batch %d", self.path, batchId)
            return
        written = delta_rs.write(
            self.path,
            data,
            mode="append",
            app_id=app_id,
            version=batchId,
            schema_mode="merge" if self.merge_schema else None,
        )
        if not written:
            log.info("delta stream to %s: batch %d of %s was already committed", self.path, batchId, app_id)
        _hold_if_asked("after_commit", batchId, self.path)

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        log.warning("delta stream to %s: batch %d aborted, nothing was committed", self.path, batchId)

    def app_id(self) -> str:
        """The app transaction id of this query: ``txnAppId``, else the query id in the checkpoint."""
        if self.txn_app_id:
            return self.txn_app_id
        metadata = Path(delta_rs.table_path(self.checkpoint_location)) / "metadata"
        try:
            return str(json.loads(metadata.read_text().splitlines()[0])["id"])
        except (OSError, ValueError, KeyError, IndexError) as error:
            raise DeltaSourceError(
                f"delta streaming write to {self.path}: cannot read the query id from {metadata} ({error}); "
                "the checkpoint location must be a local folder Spark writes, or set option('txnAppId', ...)."
            ) from error


def _hold_if_asked(phase: str, batch_id: int, table: str) -> None:
    """Fault injection for restart tests: wait at ``phase`` of ``batch_id`` until killed."""
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    name = Path(table).name
    if f"{name}:{phase}:{batch_id}" not in spec.split(";"):
        return
    log.warning("delta stream to %s: holding at %s of batch %d (%s)", table, phase, batch_id, HOLD_ENV)
    Path(os.environ[HOLD_MARKERS_ENV], name + ".held").write_text(str(os.getpid()))
    parent = os.getppid()
    deadline = time.monotonic() + 600
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(1)


# --------------------------------------------------------------------------- options


def _check_options(options, allowed: set[str], what: str) -> None:
    unknown = sorted(k for k in (key.lower() for key in options) if k not in allowed | _SPARK_OPTIONS)
    if unknown:
        named = ", ".join(_OPTION_NAMES.get(k, k) for k in unknown)
        supported = ", ".join(sorted(_OPTION_NAMES.get(k, k) for k in allowed - {"queryname"}))
        raise DeltaSourceError(
            f"format('delta') {what}: option(s) {named} not supported by the local delta source "
            f"(supported: {supported}). Remove them, or run this step on Databricks."
        )


def _bool_option(options, name: str) -> bool:
    value = str(options.get(name, options.get(name.lower(), "false"))).strip().lower()
    if value not in ("true", "false"):
        raise DeltaSourceError(f"format('delta'): option {name} must be true or false, got {value!r}")
    return value == "true"


def _int_option(value, name: str, path: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise DeltaSourceError(f"delta {path}: option {name} must be an integer, got {value!r}") from None
