"""Writing Delta tables: the batch writer and the streaming (micro-batch) writer, both over delta-rs.

Executors serialise their rows as Arrow IPC in the commit message and nothing reaches the table
until the driver-side ``commit``, where delta-rs writes the Parquet files and then the log entry: a
process killed before the log entry leaves at most data files that no commit refers to, which no
reader sees.

Micro-batch commits carry the app transaction ``(app id, batch id)``. The app id is the streaming
query id that Spark keeps in ``<checkpointLocation>/metadata``: stable across restarts of the same
query and new when the checkpoint is deleted (a new query that must write everything again), which
is what Delta's own sink uses. ``txnAppId`` overrides it. A batch id the table already records is
skipped, so replaying a batch after a crash is a no-op. An empty micro-batch commits nothing (it
only creates a missing table, so downstream readers find it). The crash tests pause a commit
through :mod:`lakehouse_local.sources.delta.fault_injection`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from pyspark.sql.datasource import DataSourceArrowWriter, DataSourceStreamArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

from lakehouse_local import delta_rs
from lakehouse_local.sources.delta import fault_injection
from lakehouse_local.sources.delta.errors import DeltaSourceError

log = logging.getLogger(__name__)


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
        fault_injection.hold_if_asked("before_commit", batchId, self.path)
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
        fault_injection.hold_if_asked("after_commit", batchId, self.path)

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
