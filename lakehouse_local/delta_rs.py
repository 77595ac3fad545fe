"""Delta tables on a local folder through delta-rs: create, write, merge, read.

This module is the local half of the project's table-write interface (delta-spark is the other half
on Databricks). Every write is one atomic Delta commit. Writes that carry an application id and a
version (a streaming query and its batch id) are idempotent: delta-rs records the app transaction
in the commit but does not skip a repeated write by itself, so the version is compared here first.

Spark reads a Delta ``timestamp`` column as TIMESTAMP (UTC instants, microseconds); Arrow data
with naive or nanosecond timestamps is normalised to ``timestamp[us, tz=UTC]`` before writing, so
a table never gains an accidental TIMESTAMP_NTZ column.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Literal, get_args
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

from lakehouse.tables import WhenMatched
from lakehouse_local import storage

log = logging.getLogger(__name__)

WriteMode = Literal["append", "overwrite"]
SchemaChange = Literal["merge", "overwrite"]
WRITE_MODES: tuple[str, ...] = get_args(WriteMode)
SCHEMA_MODES: tuple[str | None, ...] = (None, *get_args(SchemaChange))
WHEN_MATCHED: tuple[str, ...] = get_args(WhenMatched)
SPARK_TIMESTAMP = pa.timestamp("us", tz="UTC")
# Rows per Parquet row group of an appended file: a large micro-batch's file can then be read by several
# tasks at once (the local ``delta`` source splits files by row group).
ROW_GROUP_ROWS = 16_384


class DeltaTableNotFoundError(FileNotFoundError):
    """No Delta table (no ``_delta_log``) at the given path."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"Delta table not found at {path}: no _delta_log there. "
            "Run the upstream notebook (or the pipeline step that creates this table) first, "
            "or check the lakehouse root in the project configuration."
        )
        self.path = path


def table_path(path: str | os.PathLike[str]) -> str:
    """The absolute local folder of a table given as a path or a ``file://`` URI.

    :func:`lakehouse_local.storage.local_path` with a check first: only local tables are supported by
    the local runtime, so other schemes fail with the fix.
    """
    text = os.fspath(path)
    scheme = urlparse(text).scheme
    if scheme != "file" and len(scheme) > 1:  # one letter is a Windows drive
        raise ValueError(
            f"Delta table path {text!r} uses the {scheme}:// scheme; the local runtime keeps "
            "tables in a local folder. Point the lakehouse root at a local directory."
        )
    return str(storage.local_path(text))


def table_exists(path: str) -> bool:
    """True when a Delta table (a ``_delta_log`` with at least one commit) exists at ``path``."""
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(table_path(path))


def create_table(
    path: str,
    schema: pa.Schema,
    *,
    description: str | None = None,
    partition_by: list[str] | None = None,
    properties: dict[str, str] | None = None,
) -> bool:
    """Create an empty table with ``schema`` unless one exists (``CREATE TABLE IF NOT EXISTS``).

    Column comments come from the field metadata ``{"comment": ...}`` of ``schema``; they are kept
    in the Delta schema, where Databricks reads them. ``properties``: the table's properties
    (``TBLPROPERTIES``). Returns True if this call created the table.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    location = table_path(path)
    if table_exists(location):
        return False
    _check_partition_columns(location, schema, partition_by)
    try:
        DeltaTable.create(
            location,
            normalise_schema(schema),
            mode="error",
            partition_by=partition_by or None,
            description=description,
            configuration=properties or None,
        )
    except DeltaError:
        if table_exists(location):  # created concurrently by someone else: IF NOT EXISTS holds
            return False
        raise
    log.info("created Delta table at %s", location)
    return True


def write(
    path: str,
    data: pa.Table,
    *,
    mode: WriteMode = "append",
    app_id: str | None = None,
    version: int | None = None,
    partition_by: list[str] | None = None,
    schema_mode: SchemaChange | None = None,
) -> bool:
    """Append ``data`` to (or overwrite) the table at ``path`` in one atomic commit.

    With ``app_id`` and ``version`` the write is idempotent: when the table already records
    ``version`` (or a later one) for ``app_id``, nothing is written and False is returned;
    otherwise the app transaction is recorded in the same commit as the data. Creates the table
    when it does not exist. ``schema_mode="merge"`` adds new columns; ``"overwrite"`` (only with
    ``mode="overwrite"``) replaces the schema.
    """
    from deltalake import write_deltalake

    location = table_path(path)
    if mode not in WRITE_MODES:
        raise ValueError(f"write to {location}: mode must be one of {WRITE_MODES}, got {mode!r}")
    if schema_mode not in SCHEMA_MODES:
        raise ValueError(f"write to {location}: schema_mode must be one of {SCHEMA_MODES}, got {schema_mode!r}")
    _check_app_transaction(location, app_id, version)

    def attempt() -> bool:
        table = _open(location)  # one snapshot for the checks and the write
        if app_id is not None and table is not None and _committed(table, app_id, version):
            log.info("skip write to %s: %s already committed version %s", location, app_id, version)
            return False
        exists = table is not None
        if exists and partition_by and schema_mode != "overwrite":
            _check_same_partitioning(location, table, partition_by)
        rows = normalise_table(data, existing=pa.schema(table.schema().to_arrow()) if exists else None)
        if not exists:
            _check_partition_columns(location, rows.schema, partition_by)
        write_deltalake(
            table if exists else location,
            rows,
            mode=mode,
            partition_by=(partition_by or None) if not exists or schema_mode == "overwrite" else None,
            schema_mode=schema_mode,
            writer_properties=_writer_properties(),
            commit_properties=_commit_properties(app_id, version),
        )
        return True

    return _retry_conflicts(f"write to {location}", attempt)


def merge(
    path: str,
    source: pa.Table,
    *,
    keys: list[str],
    app_id: str | None = None,
    version: int | None = None,
    when_matched: WhenMatched = "update",
    matched_updates: dict[str, str] | None = None,
    matched_when: str | None = None,
    target_filter: str | None = None,
    delete_column: str | None = None,
) -> dict | None:
    """Upsert ``source`` into the table at ``path`` on ``keys`` in one atomic commit.

    - ``source`` is deduplicated on ``keys`` first, keeping the FIRST row of each key (delta-rs
      would otherwise insert two rows for a new key that appears twice).
    - Keys match null-safely (``<=>`` in Spark SQL): a null key is one key, so re-running a MERGE
      never inserts a null-keyed row twice.
    - ``when_matched="update"`` overwrites every column of matched rows; ``"ignore"`` leaves them
      as they are (insert-only MERGE: first arrival wins).
    - ``matched_updates`` (column -> SQL over ``target`` and ``source``), with ``matched_when`` (an SQL
      predicate), replaces ``when_matched``: matched rows that satisfy it get those columns set.
    - ``target_filter`` (SQL over ``target``) is added to the match: only target rows that satisfy it can
      match, and only the files that can hold them are read (a partition range, say).
    - ``delete_column``: a boolean source column; a source row where it is true deletes the row it
      matches and is never inserted. The column itself is not written.
    - Idempotent per ``(app_id, version)`` like :func:`write`; returns the delta-rs merge metrics,
      or None when the version was already committed.

    Creates the table from the source schema when it does not exist.
    """
    from deltalake import DeltaTable

    location = table_path(path)
    if when_matched not in WHEN_MATCHED:
        raise ValueError(f"merge into {location}: when_matched must be one of {WHEN_MATCHED}, got {when_matched!r}")
    if not keys:
        raise ValueError(f"merge into {location}: give at least one key column in keys=[...]")
    missing = [k for k in keys if k not in source.column_names]
    if missing:
        raise ValueError(
            f"merge into {location}: key columns {missing} are not in the source (columns: {source.column_names})"
        )
    _check_app_transaction(location, app_id, version)
    source = dedup_first(source, keys)
    predicate = " AND ".join(f"(target.{_quote(k)} IS NOT DISTINCT FROM source.{_quote(k)})" for k in keys)
    if target_filter:
        predicate += f" AND ({target_filter})"

    def attempt() -> dict | None:
        table = _open(location)  # one snapshot for the checks and the MERGE
        if app_id is not None and table is not None and _committed(table, app_id, version):
            log.info("skip merge into %s: %s already committed version %s", location, app_id, version)
            return None
        if table is None:
            create_table(location, source.schema if delete_column is None else source.drop([delete_column]))
            table = DeltaTable(location)
        merger = table.merge(
            normalise_table(source, existing=pa.schema(table.schema().to_arrow())),
            predicate,
            source_alias="source",
            target_alias="target",
            commit_properties=_commit_properties(app_id, version),
        )
        if delete_column is not None:
            values = {c: f"source.{_quote(c)}" for c in source.column_names if c != delete_column}
            flag = f"source.{_quote(delete_column)}"
            merger = merger.when_matched_delete(predicate=flag).when_matched_update(updates=values)
            return merger.when_not_matched_insert(updates=values, predicate=f"NOT {flag}").execute()
        if matched_updates is not None:
            merger = merger.when_matched_update(updates=matched_updates, predicate=matched_when)
        elif when_matched == "update":
            merger = merger.when_matched_update_all()
        return merger.when_not_matched_insert_all().execute()

    return _retry_conflicts(f"merge into {location}", attempt)


AUTO_COMPACT = "delta.autoOptimize.autoCompact"
# Databricks' defaults for auto compaction (spark.databricks.delta.autoCompact.minNumFiles and maxFileSize).
AUTO_COMPACT_MIN_FILES = 50
AUTO_COMPACT_MAX_FILE_SIZE = 128 * 1024 * 1024


def auto_compact(
    path: str, *, min_files: int = AUTO_COMPACT_MIN_FILES, max_file_size: int = AUTO_COMPACT_MAX_FILE_SIZE
) -> int:
    """Auto compaction after a write, for a table whose ``delta.autoOptimize.autoCompact`` property enables it.

    Each partition (the whole table when it has none) holding at least ``min_files`` files smaller than
    ``max_file_size`` has them rewritten into files of up to that size, one commit per partition that
    changes no data: streaming readers skip it and app transactions stay. delta-rs packs the files largest
    first, so a compacted file does not keep the order its rows were written in; a stream that starts
    from the table's snapshot reads them in that order.
    A compaction that loses a race with another writer's commit is left to the next write. Returns the
    number of files removed.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    location = table_path(path)
    table = DeltaTable(location)
    metadata = table.metadata()
    if metadata.configuration.get(AUTO_COMPACT, "false").lower() == "false":
        return 0
    removed = 0
    for partition in _crowded_partitions(table, list(metadata.partition_columns), min_files, max_file_size):
        try:
            metrics = table.optimize.compact(
                partition_filters=partition, target_size=max_file_size, writer_properties=_writer_properties()
            )
        except CommitFailedError as exc:
            log.info("compaction of %s %s left to a later write: %s", location, partition, exc)
            break
        removed += metrics["numFilesRemoved"]
        log.info("compacted %s %s: %s files into %s", location, partition or "", metrics["numFilesRemoved"],
                 metrics["numFilesAdded"])
    return removed


def _crowded_partitions(table, columns: list[str], min_files: int, max_file_size: int) -> list:
    """The partitions (as delta-rs partition filters; None for a table without partitions) holding at
    least ``min_files`` files smaller than ``max_file_size``."""
    actions = pa.table(table.get_add_actions(flatten=True))
    small = actions.filter(pc.less(actions.column("size_bytes"), max_file_size))
    if not columns:
        return [None] if small.num_rows >= min_files else []
    keys = [f"partition.{c}" for c in columns]
    counts = small.group_by(keys).aggregate([("path", "count")])
    crowded = counts.filter(pc.greater_equal(counts.column("path_count"), min_files)).select(keys).to_pylist()
    # A null partition value cannot be named in a partition filter; its files stay as they are.
    return [
        [(c, "=", _partition_text(row[k])) for c, k in zip(columns, keys, strict=True)]
        for row in crowded if None not in row.values()
    ]


def _partition_text(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def delete(path: str, predicate: str) -> None:
    """Delete the rows that satisfy the SQL ``predicate``, in one commit (nothing when the table does not exist)."""
    from deltalake import DeltaTable

    location = table_path(path)
    if table_exists(location):
        _retry_conflicts(f"delete from {location}", lambda: DeltaTable(location).delete(predicate))


def vacuum(path: str, *, retention_hours: int | None = None) -> list[str]:
    """Delete the data files the table no longer uses that were removed more than ``retention_hours`` ago
    (the table's ``delta.deletedFileRetentionDuration``, 7 days by default, when None); returns them."""
    from deltalake import DeltaTable

    location = table_path(path)
    if not table_exists(location):
        return []
    return DeltaTable(location).vacuum(
        retention_hours=retention_hours, dry_run=False, enforce_retention_duration=retention_hours is None
    )


def update(path: str, values: dict[str, str], predicate: str) -> None:
    """Set ``values`` (column -> SQL expression) on the rows that satisfy ``predicate``, in one commit."""
    from deltalake import DeltaTable

    location = table_path(path)
    if table_exists(location):
        _retry_conflicts(
            f"update of {location}", lambda: DeltaTable(location).update(updates=values, predicate=predicate)
        )


def read(path: str, *, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
    """The table's rows as Arrow (the current snapshot, or ``version``)."""
    from deltalake import DeltaTable

    location = table_path(path)
    if not table_exists(location):
        raise DeltaTableNotFoundError(location)
    # pyarrow's own local filesystem: delta-rs's Python filesystem handler can abort the
    # interpreter at exit (std::terminate) once it has served a read.
    filesystem = SubTreeFileSystem(location, LocalFileSystem())
    return DeltaTable(location, version=version).to_pyarrow_table(columns=columns, filesystem=filesystem)


def read_matching(
    path: str, key: str, values: pa.Array, *, columns: list[str] | None = None, partitions: tuple | None = None
) -> pa.Table:
    """The rows whose ``key`` is one of ``values``, filtered while scanning: only matching rows are held.

    ``partitions`` (column, first, last) reads only the partitions whose value lies in that range.
    """
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    location = table_path(path)
    if not table_exists(location):
        raise DeltaTableNotFoundError(location)
    table = DeltaTable(location)
    filters = None
    if partitions is not None:
        column, first, last = partitions
        filters = f"{column} >= '{first.isoformat()}' AND {column} <= '{last.isoformat()}'"
    files = [table_path(uri) for uri in table.file_uris(file_pruning_predicate=filters)]
    if not files:
        return table.to_pyarrow_table(columns=columns, filesystem=SubTreeFileSystem(location, LocalFileSystem()))
    # The snapshot's data files as a plain Parquet dataset, text read as string: pyarrow's kernels
    # do not all take the string_view type the files (and delta-rs's own dataset) carry.
    stored = ds.dataset(files, format="parquet", filesystem=LocalFileSystem()).schema
    schema = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in stored])
    wanted = pa.table({key: values.cast(schema.field(key).type)})
    # Partition columns are not in the files: their values come from the log, file by file.
    full = pa.schema(table.schema().to_arrow())
    partition_columns = [c for c in table.metadata().partition_columns if c in (columns or full.names)]
    read = sorted({key, *(c for c in (columns or full.names) if c not in partition_columns)})
    values_of = _partition_values(table, location, partition_columns, full) if partition_columns else {}
    # The files of each partition, scanned together (an unpartitioned table is one group).
    groups: dict[tuple, list[str]] = {}
    for file in files:
        groups.setdefault(tuple(values_of[file][c] for c in partition_columns), []).append(file)
    kept = []
    # A semi join per partition: the keys' hash table is built once (a filter per row group would build it
    # again for every row group), and the files are scanned a row group at a time with a bounded read-ahead,
    # so only the matching rows are held however large the table grows.
    for values, paths in groups.items():
        part = ds.dataset(paths, format="parquet", filesystem=LocalFileSystem(), schema=schema)
        matched = _semi_join(part, read, wanted, key)
        for column, value in zip(partition_columns, values, strict=True):
            matched = matched.append_column(full.field(column), pa.array([value] * matched.num_rows, value.type))
        kept.append(matched)
    if not kept:
        return full.empty_table().select(columns or full.names)
    return pa.concat_tables([rows.select(columns or full.names) for rows in kept])


def _semi_join(dataset, columns: list[str], keys: pa.Table, key: str) -> pa.Table:
    """The rows of ``dataset`` (its ``columns``) whose ``key`` is in ``keys``: an Acero left semi join."""
    import pyarrow.acero as acero

    scan = acero.Declaration.from_sequence([
        acero.Declaration("scan", acero.ScanNodeOptions(dataset, columns=columns, batch_readahead=1, fragment_readahead=1)),
        # The scan adds its own fields (__filename, ...): keep the columns asked for.
        acero.Declaration("project", acero.ProjectNodeOptions([pc.field(c) for c in columns], columns)),
    ])
    wanted = acero.Declaration("table_source", acero.TableSourceNodeOptions(keys))
    join = acero.Declaration("hashjoin", acero.HashJoinNodeOptions("left semi", [key], [key]), inputs=[scan, wanted])
    return join.to_table(use_threads=True)


def _partition_values(table, location: str, columns: list[str], schema: pa.Schema) -> dict[str, dict[str, pa.Scalar]]:
    """File path -> {partition column: its value in that file, typed as in ``schema``}."""
    actions = pa.table(table.get_add_actions(flatten=True))
    found: dict[str, dict[str, pa.Scalar]] = {}
    paths = actions.column("path").to_pylist()
    for column in columns:
        typed = actions.column(f"partition.{column}").cast(schema.field(column).type)
        for path, value in zip(paths, typed, strict=True):
            found.setdefault(table_path(os.path.join(location, unquote(path))), {})[column] = value
    return found


def committed_version(path: str, app_id: str) -> int | None:
    """The last version recorded by ``app_id`` in the table (None if none, or no table)."""
    from deltalake import DeltaTable

    location = table_path(path)
    if not table_exists(location):
        return None
    return DeltaTable(location).transaction_version(app_id)


def dedup_first(table: pa.Table, keys: list[str]) -> pa.Table:
    """``table`` with one row per ``keys`` value: the first in row order (nulls form one group)."""
    if table.num_rows == 0:
        return table
    position = "__row_position__"
    indexed = table.append_column(position, pa.array(range(table.num_rows), pa.int64()))
    first = indexed.group_by(keys, use_threads=False).aggregate([(position, "min")])
    take = pc.sort_indices(first.column(f"{position}_min"))
    rows = pc.take(first.column(f"{position}_min"), take)
    return table.take(rows)


def normalise_type(data_type: pa.DataType) -> pa.DataType:
    """``data_type`` with every timestamp (at any depth) as ``timestamp[us, tz=UTC]``."""
    if pa.types.is_timestamp(data_type):
        return SPARK_TIMESTAMP
    if pa.types.is_struct(data_type):
        return pa.struct([_normalise_field(data_type.field(i)) for i in range(data_type.num_fields)])
    if pa.types.is_large_list(data_type):
        return pa.large_list(_normalise_field(data_type.value_field))
    if pa.types.is_list(data_type):
        return pa.list_(_normalise_field(data_type.value_field))
    if pa.types.is_map(data_type):
        return pa.map_(_normalise_field(data_type.key_field), _normalise_field(data_type.item_field))
    return data_type


def normalise_schema(schema: pa.Schema, *, existing: pa.Schema | None = None) -> pa.Schema:
    """``schema`` with Spark-compatible timestamps; columns the ``existing`` table stores as
    TIMESTAMP_NTZ (naive) keep that type."""
    fields = []
    for field in schema:
        if existing is not None and field.name in existing.names:
            target = existing.field(field.name).type
            if pa.types.is_timestamp(target) and target.tz is None and pa.types.is_timestamp(field.type):
                fields.append(field.with_type(pa.timestamp("us")))
                continue
        fields.append(_normalise_field(field))
    return pa.schema(fields, metadata=schema.metadata)


def normalise_table(table: pa.Table, *, existing: pa.Schema | None = None) -> pa.Table:
    """``table`` cast to :func:`normalise_schema` (naive timestamps are read as UTC)."""
    target = normalise_schema(table.schema, existing=existing)
    if target.equals(table.schema, check_metadata=True):
        return table
    # Nanoseconds cannot be stored in a Spark TIMESTAMP: truncating them is the intended cast.
    return table.cast(target, safe=False)


def _normalise_field(field: pa.Field) -> pa.Field:
    return field.with_type(normalise_type(field.type))


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _open(location: str):
    """The table's current snapshot (a ``DeltaTable``), or None when there is no table."""
    from deltalake import DeltaTable

    return DeltaTable(location) if table_exists(location) else None


def _committed(table, app_id: str, version: int | None) -> bool:
    committed = table.transaction_version(app_id)
    return committed is not None and version is not None and committed >= version


# A commit that loses a race with another writer of the same table (two streams writing
# ops.pipeline_metrics, say) is retried against the new snapshot; the app-transaction check at the
# start of every attempt keeps a retried write idempotent.
COMMIT_ATTEMPTS = 8


def _retry_conflicts(what: str, attempt):
    from deltalake.exceptions import CommitFailedError

    for number in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return attempt()
        except CommitFailedError as exc:
            if number == COMMIT_ATTEMPTS:
                raise CommitFailedError(
                    f"{what}: gave up after {COMMIT_ATTEMPTS} attempts, each losing to a concurrent commit "
                    f"({exc}). Another process keeps writing this table; stop it or retry later."
                ) from exc
            pause = min(2.0, 0.05 * 2**number) * (0.5 + random.random())
            log.info("%s: concurrent commit (%s); retry %d in %.2f s", what, exc, number, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _check_app_transaction(location: str, app_id: str | None, version: int | None) -> None:
    if (app_id is None) != (version is None):
        raise ValueError(
            f"write to {location}: give both app_id and version for an idempotent write, or neither "
            f"(got app_id={app_id!r}, version={version!r})"
        )
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise ValueError(f"write to {location}: version must be a non-negative integer, got {version!r}")


def _writer_properties():
    from deltalake import WriterProperties

    return WriterProperties(max_row_group_size=ROW_GROUP_ROWS, compression="SNAPPY")


def _commit_properties(app_id: str | None, version: int | None):
    from deltalake import CommitProperties, Transaction

    if app_id is None or version is None:
        return None
    return CommitProperties(app_transactions=[Transaction(app_id=app_id, version=version)])


def _check_partition_columns(location: str, schema: pa.Schema, partition_by: list[str] | None) -> None:
    missing = [c for c in partition_by or [] if c not in schema.names]
    if missing:
        raise ValueError(f"table {location}: partition columns {missing} are not in the schema ({schema.names})")


def _check_same_partitioning(location: str, table, partition_by: list[str]) -> None:
    existing = table.metadata().partition_columns
    if list(existing) != list(partition_by):
        raise ValueError(
            f"table {location} is partitioned by {existing}, not {partition_by}: write without "
            "partition_by (the table's own partitioning applies), or overwrite it with schema_mode='overwrite'."
        )
