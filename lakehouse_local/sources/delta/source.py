"""The ``delta`` data source class: checks each operation's options and hands out readers and writers.

Options (case-insensitive). Anything else raises an error rather than being ignored:

=====================  =======================================================================
batch read             ``versionAsOf``, ``timestampAsOf``
stream read            ``startingVersion`` (a version or ``latest``), ``maxFilesPerTrigger``
                       (default 1000), ``maxBytesPerTrigger`` (a soft limit: ``"64m"``, ``"1g"``,
                       bytes), both also honoured by ``trigger(availableNow=True)``;
                       ``skipChangeCommits``
batch write            ``mergeSchema``, ``overwriteSchema`` (with mode ``overwrite``), ``txnAppId`` +
                       ``txnVersion`` (skip a version already written, as Delta does)
stream write           ``checkpointLocation`` (required), ``mergeSchema``, ``txnAppId``
=====================  =======================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamArrowWriter,
    DataSourceStreamReader,
)
from pyspark.sql.types import StructType

from lakehouse_local import delta_rs
from lakehouse_local.sources.delta.errors import DeltaSourceError
from lakehouse_local.sources.delta.log import table_spark_schema
from lakehouse_local.sources.delta.read import DeltaBatchReader
from lakehouse_local.sources.delta.stream import DeltaStreamReader
from lakehouse_local.sources.delta.write import DeltaBatchWriter, DeltaStreamWriter
from lakehouse_local.sources.options import SourceOptions

BATCH_READ_OPTIONS = ("versionAsOf", "timestampAsOf")
STREAM_READ_OPTIONS = ("startingVersion", "maxFilesPerTrigger", "maxBytesPerTrigger", "skipChangeCommits")
BATCH_WRITE_OPTIONS = ("mergeSchema", "overwriteSchema", "txnAppId", "txnVersion")
STREAM_WRITE_OPTIONS = ("checkpointLocation", "mergeSchema", "txnAppId")
# Options Spark itself adds to every read or write, besides the user's.
SPARK_OPTIONS = ("path",)
# Delta options the local source does not implement: errors spell them as users write them.
UNSUPPORTED_OPTIONS = (
    "startingTimestamp",
    "ignoreChanges",
    "ignoreDeletes",
    "readChangeFeed",
    "replaceWhere",
    "partitionOverwriteMode",
    "userMetadata",
    "optimizeWrite",
)
KNOWN_OPTIONS = (
    *BATCH_READ_OPTIONS,
    *STREAM_READ_OPTIONS,
    *BATCH_WRITE_OPTIONS,
    *STREAM_WRITE_OPTIONS,
    "queryName",
    *UNSUPPORTED_OPTIONS,
)


class DeltaDataSource(DataSource):
    """``format("delta")`` over delta-rs: batch and streaming reads and writes of local tables."""

    @classmethod
    def name(cls) -> str:
        return "delta"

    def schema(self) -> StructType:
        return table_spark_schema(self._path())

    def reader(self, schema: StructType) -> DataSourceReader:
        self._options("batch read", BATCH_READ_OPTIONS)
        return DeltaBatchReader(self._path(), schema, dict(self.options))

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        self._options("streaming read", STREAM_READ_OPTIONS)
        return DeltaStreamReader(self._path(), schema, dict(self.options))

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceArrowWriter:
        opts = self._options("batch write", BATCH_WRITE_OPTIONS)
        path = self._path()
        merge_schema = opts.flag("mergeSchema")
        overwrite_schema = opts.flag("overwriteSchema")
        if overwrite_schema and not overwrite:
            raise DeltaSourceError(f"delta write to {path}: overwriteSchema needs mode('overwrite')")
        if merge_schema and overwrite_schema:
            raise DeltaSourceError(f"delta write to {path}: give mergeSchema or overwriteSchema, not both")
        schema_mode = "overwrite" if overwrite_schema else "merge" if merge_schema else None
        app_id, version = opts.get("txnAppId"), opts.get("txnVersion")
        if (app_id is None) != (version is None):
            raise DeltaSourceError(f"delta write to {path}: give txnAppId and txnVersion together, or neither")
        return DeltaBatchWriter(
            path,
            schema,
            overwrite=overwrite,
            schema_mode=schema_mode,
            app_id=app_id,
            version=opts.integer("txnVersion"),
        )

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamArrowWriter:
        opts = self._options("streaming write", STREAM_WRITE_OPTIONS, unlisted=("queryName",))
        path = self._path()
        if overwrite:
            raise DeltaSourceError(
                f"delta streaming write to {path}: the complete output mode is not supported locally; "
                "use outputMode('append'), or foreachBatch with lakehouse_local.delta_rs.merge for upserts."
            )
        return DeltaStreamWriter(
            path,
            schema,
            checkpoint_location=opts.get("checkpointLocation"),
            txn_app_id=opts.get("txnAppId"),
            merge_schema=opts.flag("mergeSchema"),
        )

    def _options(self, what: str, accepted: Sequence[str], *, unlisted: Sequence[str] = ()) -> SourceOptions:
        """The options of one operation, refused unless ``accepted`` (or ``unlisted``) for it."""
        opts = SourceOptions(self.options, context=f"format('delta') {what}", error=DeltaSourceError)
        opts.check(
            accepted,
            source="delta",
            remedy="Remove them, or run this step on Databricks.",
            unlisted=(*SPARK_OPTIONS, *unlisted),
            spellings=KNOWN_OPTIONS,
        )
        return opts

    def _path(self) -> str:
        if "paths" in self.options:
            raise DeltaSourceError("format('delta') reads one table: pass a single path to load()")
        path = self.options.get("path")
        if not path:
            raise DeltaSourceError("format('delta') needs the table's path: .load(path) / .save(path) / .start(path)")
        return delta_rs.table_path(path)
