"""The table layer of the local runtime: Delta tables in folders ``<root>/<layer>/<table>``, via delta-rs.

The local session names this class in ``$LAKEHOUSE_TABLES``, so :func:`lakehouse.tables.lakehouse_for`
returns it to the notebooks. Writes are idempotent per (stream, batch id) through delta-rs app
transactions, checked before writing (delta-rs records them but does not skip a repeated write).
"""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from lakehouse import catalog
from lakehouse.catalog import TableSpec
from lakehouse.tables import DELETE, DateRange, Lakehouse, WhenMatched, date_window, dedup_on_keys, looks_like_path
from lakehouse_local import delta_rs

# The Arrow rows a DataFrame returned by FolderLakehouse.reusable was made from.
ROWS_ATTRIBUTE = "_lakehouse_rows"

# A micro-batch's rows of at least this size are handed back to Spark as a Parquet file in the lakehouse's
# ``_scratch`` folder rather than as local rows: Spark scans a file in parallel and column by column, while
# local rows are converted again for every query (and, under Spark Connect, travel inside every plan).
SCRATCH_MIN_BYTES = 1024 * 1024
SCRATCH_FOLDER = "_scratch"
_live_scratch: set[Path] = set()


def _remove_live_scratch() -> None:
    for folder in list(_live_scratch):
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_remove_live_scratch)


# Materialises the sources of the writes given together (FolderLakehouse.together). One pool per process, whose
# threads start on first use and are reused by every batch (each holds a JVM thread in PySpark's pinned-thread mode).
_materialiser = ThreadPoolExecutor(6, thread_name_prefix="lakehouse-materialise")


def _materialise(sources: list[DataFrame | pa.Table]) -> list[pa.Table]:
    """The rows of every source, as Arrow, side by side when there are several: each is a Spark job, and on a
    micro-batch's few rows a job's fixed cost (planning, scheduling, the hand-over) outweighs its work. Rows
    already on the driver (a ``pa.Table``) are taken as they are."""
    frames = [source for source in sources if not isinstance(source, pa.Table)]
    if len(frames) <= 1:
        rows = [frame.toArrow() for frame in frames]
    else:
        rows = [future.result() for future in [_materialiser.submit(frame.toArrow) for frame in frames]]
    collected = iter(rows)
    return [source if isinstance(source, pa.Table) else next(collected) for source in sources]


def _held_rows(df: DataFrame, name: str) -> pa.Table | None:
    """``df``'s rows with exactly table ``name``'s columns, when ``df`` is rows the driver already holds (made by
    :meth:`FolderLakehouse.reusable`) that have every column of the table in the table's type: then a write of
    ``df`` needs no Spark job. None otherwise (the write conforms and collects ``df`` with Spark)."""
    held = vars(df).get(ROWS_ATTRIBUTE)
    schema = _arrow_schema(catalog.spec(name))
    if held is None or not set(schema.names) <= set(held.column_names):
        return None
    rows = held.select(schema.names)
    if rows.schema.types != schema.types:
        return None
    return pa.Table.from_arrays(rows.columns, schema=schema)


class _Write(NamedTuple):
    """A write of the local runtime: the Spark frame whose rows it writes (or those rows, when the driver holds
    them already), and the delta-rs commit of those rows."""

    source: DataFrame | pa.Table
    commit: Callable[[pa.Table], Any]


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # signal 0 is not a probe there: treat every owner as alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class FolderLakehouse(Lakehouse):
    """Tables in folders under ``location``; checkpoints default to ``<location>/_checkpoints``.

    A bare name (``demo``, as a catalog would be given) becomes the folder ``.lakehouse/<name>``.
    """

    def __init__(self, spark, location: str, *, checkpoint_root: str | None = None) -> None:
        if not looks_like_path(location):
            location = str(Path(".lakehouse") / location)
        location = str(Path(location).resolve())
        super().__init__(spark, location, checkpoint_root=checkpoint_root or f"{location}/_checkpoints")
        # The scratch folders of the batches bound from this lakehouse (shared with the bound copies).
        self._scratch: list[Path] = []
        # The writes given inside a together() block, committed when it ends (None: each write runs as called).
        self._deferred: list[_Write] | None = None

    def bind(self, spark):
        # A new micro-batch: the rows the earlier ones handed to Spark are no longer read.
        self.release_scratch()
        return super().bind(spark)

    def release_scratch(self) -> None:
        """Delete the scratch files of the micro-batches bound from this lakehouse, and those left by
        processes that have ended (a Spark Connect ``foreachBatch`` worker is stopped, not exited)."""
        while self._scratch:
            folder = self._scratch.pop()
            shutil.rmtree(folder, ignore_errors=True)
            _live_scratch.discard(folder)
        root = Path(self.location, SCRATCH_FOLDER)
        if root.is_dir():
            for folder in root.iterdir():
                pid = folder.name.partition("-")[0]
                if pid.isdigit() and not _process_alive(int(pid)):
                    shutil.rmtree(folder, ignore_errors=True)

    def path(self, name: str) -> str:
        """The folder of table ``name`` (``<layer>.<table>``)."""
        layer, table = name.split(".")
        return f"{self.location}/{layer}/{table}"

    # -- DDL ------------------------------------------------------------------------------------

    def create_schemas(self) -> None:
        for layer in catalog.LAYERS:
            Path(self.location, layer).mkdir(parents=True, exist_ok=True)

    def create_table(self, spec: TableSpec) -> bool:
        arrow_schema = _arrow_schema(spec)
        fields = [f.with_metadata({"comment": c.comment}) for f, c in zip(arrow_schema, spec.columns, strict=True)]
        return delta_rs.create_table(
            self.path(spec.name), pa.schema(fields), description=spec.comment, partition_by=list(spec.partitioned_by),
            properties=catalog.TABLE_PROPERTIES,
        )

    def exists(self, name: str) -> bool:
        return delta_rs.table_exists(self.path(name))

    def drop(self, name: str) -> None:
        shutil.rmtree(self.path(name), ignore_errors=True)

    def delete_where(self, name: str, predicate: str) -> None:
        delta_rs.delete(self.path(name), predicate)

    def update_where(self, name: str, values: dict[str, str], predicate: str) -> None:
        delta_rs.update(self.path(name), values, predicate)

    def vacuum(self, name: str) -> None:
        delta_rs.vacuum(self.path(name))

    def remove_checkpoint(self, stream: str) -> None:
        shutil.rmtree(self.checkpoint_location(stream), ignore_errors=True)

    # -- reads ----------------------------------------------------------------------------------

    def read(self, name: str, *, columns: list[str] | None = None) -> DataFrame:
        if columns is None:
            return self.session.read.format("delta").load(self.path(name))
        # The Python data source cannot prune columns; delta-rs reads just these, as Arrow.
        return self._frame(name, delta_rs.read(self.path(name), columns=columns), columns)

    def read_matching(
        self,
        name: str,
        keys: DataFrame,
        key: str,
        *,
        columns: list[str],
        within_days: int | None = None,
        dates: DateRange | None = None,
    ) -> DataFrame:
        # The keys filter the delta-rs scan itself, so a lookup holds only the matching rows,
        # however large the table grows; ``within_days`` and ``dates`` read only those partitions.
        partition = catalog.spec(name).partitioned_by[0] if within_days is not None or dates is not None else None
        wanted_columns = [key, *([partition] if within_days is not None else [])]
        # The instance's own attributes only: a Spark Connect DataFrame answers any other name with a column.
        held = vars(keys).get(ROWS_ATTRIBUTE)
        # Keys that are a micro-batch's rows already on the driver need no Spark job to fetch them.
        keys = held.select(wanted_columns) if held is not None else keys.select(*wanted_columns).toArrow()
        if keys.num_rows == 0:
            return self.empty(name, columns)
        partitions = (partition, *dates) if dates is not None else None
        if within_days is not None:
            span = pc.min_max(keys.column(partition))
            partitions = (partition, *date_window(span["min"].as_py(), span["max"].as_py(), within_days))
        wanted = pc.unique(keys.column(key))
        rows = delta_rs.read_matching(self.path(name), key, wanted, columns=columns, partitions=partitions)
        return self._frame(name, rows, columns, for_batch=True)

    def reusable(self, batch: DataFrame) -> DataFrame:
        # One Spark job runs the micro-batch; its rows come to the driver, where delta-rs writes from
        # anyway, and every read after that starts from them.
        rows = batch.toArrow()
        frame = self._batch_frame(rows) if rows.num_rows else self.session.createDataFrame([], batch.schema)
        setattr(frame, ROWS_ATTRIBUTE, rows)  # read_matching takes its keys from here
        return frame

    def known_empty(self, frame: DataFrame) -> bool:
        held = vars(frame).get(ROWS_ATTRIBUTE)
        return held is not None and held.num_rows == 0

    def read_stream(self, name: str, **options: str) -> DataFrame:
        return self.session.readStream.format("delta").options(**options).load(self.path(name))

    def _frame(self, name: str, table: pa.Table, columns: list[str], *, for_batch: bool = False) -> DataFrame:
        make = self._batch_frame if for_batch else self._dataframe
        frame = make(table) if table.num_rows else self.empty(name, columns)
        setattr(frame, ROWS_ATTRIBUTE, table)
        return frame

    def _dataframe(self, table: pa.Table) -> DataFrame:
        # One chunk per column: createDataFrame sends each record batch as a partition, and the
        # empty ones a filtered scan leaves behind lose rows on the way (pyspark 4.2).
        return self.session.createDataFrame(table.combine_chunks())

    def _batch_frame(self, table: pa.Table) -> DataFrame:
        """``table`` as a DataFrame for the rest of this micro-batch: small tables as local rows, larger
        ones as a Parquet file in the batch's scratch folder (removed when the next batch binds)."""
        if table.nbytes < SCRATCH_MIN_BYTES:
            return self._dataframe(table)
        file = self._scratch_folder() / f"{uuid.uuid4().hex}.parquet"
        pq.write_table(table, file, row_group_size=delta_rs.ROW_GROUP_ROWS, compression="none")
        # The rows' own schema, as createDataFrame would derive it (not the one Parquet inference gives).
        return self.session.read.schema(from_arrow_schema(table.schema)).parquet(str(file))

    def _scratch_folder(self) -> Path:
        if not self._scratch:
            folder = Path(self.location, SCRATCH_FOLDER, f"{os.getpid()}-{uuid.uuid4().hex}")
            folder.mkdir(parents=True)
            _live_scratch.add(folder)
            self._scratch.append(folder)
        return self._scratch[-1]

    # -- writes ---------------------------------------------------------------------------------

    @contextmanager
    def together(self) -> Iterator[FolderLakehouse]:
        deferred = copy.copy(self)  # a copy leaves the session out (see Lakehouse.__getstate__)
        deferred.spark, deferred._deferred = self.spark, []
        yield deferred
        writes = deferred._deferred
        deferred._deferred = None  # a write given after the block runs as it is called
        for write, rows in zip(writes, _materialise([w.source for w in writes]), strict=True):
            write.commit(rows)

    def _write(self, source: DataFrame | pa.Table, commit: Callable[[pa.Table], Any]) -> Any:
        if self._deferred is not None:
            self._deferred.append(_Write(source, commit))
            return None
        return commit(source if isinstance(source, pa.Table) else source.toArrow())

    def append(self, df: DataFrame, name: str, *, app_id: str, batch_id: int) -> bool:
        def commit(rows: pa.Table) -> bool:
            written = delta_rs.write(self.path(name), rows, mode="append", app_id=app_id, version=batch_id)
            delta_rs.auto_compact(self.path(name))
            return written

        held = _held_rows(df, name)
        return self._write(self.conform(df, name) if held is None else held, commit)

    def upsert(
        self,
        df: DataFrame,
        name: str,
        *,
        app_id: str,
        batch_id: int,
        when_matched: WhenMatched = "update",
        order_by: list[str] | None = None,
        within: DateRange | None = None,
    ) -> None:
        keys = list(catalog.spec(name).keys)
        # Without an order, the first row per key is as good as any: delta-rs keeps it, and Spark
        # need not shuffle to pick one.
        source = self.conform(df if order_by is None else dedup_on_keys(df, keys, order_by), name)

        def commit(rows: pa.Table) -> None:
            self._merge(rows, name, app_id=app_id, version=batch_id, when_matched=when_matched,
                        target_filter=self.partition_filter(name, within) if within else None)

        self._write(source, commit)

    def apply_changes(
        self, df: DataFrame, name: str, *, app_id: str, batch_id: int, within: DateRange | None = None
    ) -> None:
        def commit(rows: pa.Table) -> None:
            self._merge(rows, name, app_id=app_id, version=batch_id, delete_column=DELETE,
                        target_filter=self.partition_filter(name, within) if within else None)

        self._write(self.conform(df, name, keep=(DELETE,)), commit)

    def accumulate(
        self, df: DataFrame, name: str, *, add: list[str], derive: dict[str, str] | None = None, batch_id: int
    ) -> None:
        when, updates = self.accumulation(add, derive)

        def commit(rows: pa.Table) -> None:
            # The batch id joins the rows here, not as a constant of the Spark query: Spark writes a number's
            # constant into the code it generates, so each batch would compile every stage of its query again.
            column = rows.schema.get_field_index("_batch_id")
            rows = rows.set_column(column, rows.schema.field(column), pa.array([batch_id] * rows.num_rows, pa.int64()))
            self._merge(rows, name, matched_updates=updates, matched_when=when)

        self._write(self.conform(df.selectExpr("*", "CAST(NULL AS BIGINT) AS _batch_id"), name), commit)

    def upsert_rows(self, rows: list[dict], name: str, *, app_id: str, batch_id: int) -> None:
        source = pa.Table.from_pylist(rows, schema=_arrow_schema(catalog.spec(name)))
        self._merge(source, name, app_id=app_id, version=batch_id)

    def _merge(self, source: pa.Table, name: str, **options: Any) -> None:
        """:func:`delta_rs.merge` of ``source`` into table ``name`` on its keys (``options`` as there)."""
        if source.num_rows == 0:  # a MERGE of nothing changes nothing: no commit
            return
        delta_rs.merge(self.path(name), source, keys=list(catalog.spec(name).keys), **options)
        delta_rs.auto_compact(self.path(name))


def _arrow_schema(spec: TableSpec) -> pa.Schema:
    return to_arrow_schema(spec.struct(), timezone="UTC")
