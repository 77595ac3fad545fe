"""Where tables live and how they are written, resolved in one place for both runtimes.

* On Databricks a table is a Unity Catalog name ``<catalog>.<layer>.<table>``; writes go through
  Delta Lake itself (``DeltaTable.merge``, ``txnAppId``/``txnVersion`` for idempotency).
* Locally a table is a folder ``<root>/<layer>/<table>``; writes go through delta-rs
  (:mod:`lakehouse.local.delta_rs`), with the same idempotency per (stream, batch id).

Notebooks only ever see :class:`Lakehouse`, so they never branch on where they run.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.catalog import TableSpec

log = logging.getLogger(__name__)

RUNTIME_CONF = "spark.lakehouse.runtime"


def is_local(spark: SparkSession) -> bool:
    """True on the local runtime (its session factory marks the session); Databricks otherwise."""
    return spark.conf.get(RUNTIME_CONF, "databricks") == "local"


def _looks_like_path(location: str) -> bool:
    return "/" in location or location.startswith((".", "~")) or ":" in location


def stream_id(checkpoint: str) -> str:
    """A stable id for a stream, derived from its checkpoint location (the app id of its idempotent writes)."""
    return hashlib.sha1(checkpoint.rstrip("/").encode()).hexdigest()[:16]


def dedup_on_keys(df: DataFrame, keys: list[str], order_by: list[str] | None = None) -> DataFrame:
    """Keep one row per key (the first by ``order_by``), so a MERGE never inserts a key twice."""
    if order_by:
        window = Window.partitionBy(*keys).orderBy(*order_by)
        return df.withColumn("_key_rank", F.row_number().over(window)).filter("_key_rank = 1").drop("_key_rank")
    return df.dropDuplicates(keys)


class Lakehouse:
    """The lakehouse's tables: a Unity Catalog catalog on Databricks, a folder locally.

    ``location`` is a catalog name (``main``, ``clickstream_dev``) or a folder/URI (``.lakehouse/demo``).
    """

    def __init__(self, spark: SparkSession, location: str, *, checkpoint_root: str | None = None) -> None:
        self.spark = spark
        self.local = is_local(spark)
        if self.local and not _looks_like_path(location):
            location = str(Path(".lakehouse") / location)
        if not self.local and _looks_like_path(location):
            raise ValueError(
                f"lakehouse location {location!r} looks like a path, but on Databricks tables are addressed "
                "by Unity Catalog: pass a catalog name (e.g. 'main') in the 'lakehouse' widget."
            )
        self.location = str(Path(location).resolve()) if self.local else location
        if checkpoint_root:
            self.checkpoint_root = checkpoint_root.rstrip("/")
        elif self.local:
            self.checkpoint_root = f"{self.location}/_checkpoints"
        else:
            raise ValueError("set the 'checkpoint_root' widget (e.g. /Volumes/<catalog>/ops/checkpoints or s3://...)")

    # -- addressing -----------------------------------------------------------------------------

    def path(self, name: str) -> str:
        """The folder of a table (local runtime)."""
        layer, table = name.split(".")
        return f"{self.location}/{layer}/{table}"

    def identifier(self, name: str) -> str:
        """What Spark reads: a path locally, ``catalog.layer.table`` on Databricks."""
        return self.path(name) if self.local else f"`{self.location}`.{name}"

    def checkpoint(self, stream: str) -> str:
        return f"{self.checkpoint_root}/{stream}"

    def schema_location(self, stream: str) -> str:
        return f"{self.checkpoint_root}/{stream}/_schema"

    # -- DDL ------------------------------------------------------------------------------------

    def create_schemas(self) -> None:
        if self.local:
            for layer in catalog.LAYERS:
                Path(self.location, layer).mkdir(parents=True, exist_ok=True)
            return
        # CREATE CATALOG needs a privilege the job's identity may lack; only ask when it is missing.
        if not self.spark.sql(f"SHOW CATALOGS LIKE '{self.location}'").collect():
            self.spark.sql(f"CREATE CATALOG IF NOT EXISTS `{self.location}`")
        for layer in catalog.LAYERS:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{self.location}`.{layer} COMMENT '{layer} layer of the clickstream lakehouse'")

    def create_table(self, spec: TableSpec) -> bool:
        """Create the table if it does not exist, with table and column comments. Returns True if created."""
        if self.local:
            from pyspark.sql.pandas.types import to_arrow_schema

            from lakehouse.local import delta_rs

            arrow_schema = to_arrow_schema(spec.struct(), timezone="UTC")
            fields = [f.with_metadata({"comment": c.comment}) for f, c in zip(arrow_schema, spec.columns, strict=True)]
            import pyarrow as pa

            return delta_rs.create_table(self.path(spec.name), pa.schema(fields), description=spec.comment)
        existed = self.spark.catalog.tableExists(self.identifier(spec.name).replace("`", ""))
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS {self.identifier(spec.name)} ({spec.ddl_columns()}) "
            f"USING DELTA COMMENT '{spec.comment.replace(chr(39), chr(92) + chr(39))}'"
        )
        return not existed

    def exists(self, name: str) -> bool:
        if self.local:
            from lakehouse.local import delta_rs

            return delta_rs.table_exists(self.path(name))
        return self.spark.catalog.tableExists(self.identifier(name).replace("`", ""))

    def drop(self, name: str) -> None:
        """Drop a table (used by a notebook's reset together with its checkpoint)."""
        if self.local:
            shutil.rmtree(self.path(name), ignore_errors=True)
        else:
            self.spark.sql(f"DROP TABLE IF EXISTS {self.identifier(name)}")

    def remove_checkpoint(self, stream: str) -> None:
        target = self.checkpoint(stream)
        if self.local or target.startswith("/") and not target.startswith(("/Volumes", "/dbfs")):
            shutil.rmtree(target, ignore_errors=True)
        else:
            from pyspark.dbutils import DBUtils  # Databricks only

            DBUtils(self.spark).fs.rm(target, True)

    # -- reads ----------------------------------------------------------------------------------

    def read(self, name: str, *, columns: list[str] | None = None) -> DataFrame:
        """Batch read of a table; ``columns`` reads only those (locally straight from the Parquet columns)."""
        if self.local:
            if columns is not None:
                # The Python data source cannot prune columns; delta-rs reads just these, as Arrow.
                from lakehouse.local import delta_rs

                table = delta_rs.read(self.path(name), columns=columns)
                return self.spark.createDataFrame(table) if table.num_rows else self._empty(name, columns)
            return self.spark.read.format("delta").load(self.path(name))
        df = self.spark.read.table(self.identifier(name))
        return df.select(*columns) if columns is not None else df

    def read_matching(self, name: str, keys: DataFrame, key: str, *, columns: list[str]) -> DataFrame:
        """The rows of table ``name`` whose ``key`` is among ``keys[key]``, with ``columns``.

        On Databricks a broadcast join (Delta skips files by statistics). Locally the keys filter the
        delta-rs scan itself, so a lookup holds only the matching rows, however large the table grows.
        """
        if not self.local:
            return self.read(name, columns=columns).join(F.broadcast(keys.select(key).distinct()), key)
        from lakehouse.local import delta_rs

        wanted = keys.select(key).distinct().toArrow().column(key).combine_chunks()
        if len(wanted) == 0:
            return self._empty(name, columns)
        table = delta_rs.read_matching(self.path(name), key, wanted, columns=columns)
        return self.spark.createDataFrame(table) if table.num_rows else self._empty(name, columns)

    def _empty(self, name: str, columns: list[str]) -> DataFrame:
        struct = catalog.spec(name).struct()
        return self.spark.createDataFrame([], struct).select(*columns)

    def read_stream(self, name: str, **options: str) -> DataFrame:
        reader = self.spark.readStream.format("delta").options(**options)
        if self.local:
            return reader.load(self.path(name))
        return reader.table(self.identifier(name))

    # -- writes ---------------------------------------------------------------------------------

    def _select(self, df: DataFrame, name: str) -> DataFrame:
        spec = catalog.spec(name)
        return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in spec.columns])

    def append(self, df: DataFrame, name: str, *, app_id: str, batch_id: int) -> bool:
        """Append ``df`` once per (app_id, batch_id): a replayed batch is skipped. Returns False if skipped."""
        df = self._select(df, name)
        if self.local:
            from lakehouse.local import delta_rs

            return delta_rs.write(self.path(name), df.toArrow(), mode="append", app_id=app_id, version=batch_id)
        (
            df.write.format("delta")
            .option("txnAppId", app_id)
            .option("txnVersion", batch_id)
            .mode("append")
            .saveAsTable(self.identifier(name))
        )
        return True

    def upsert(
        self,
        df: DataFrame,
        name: str,
        *,
        app_id: str,
        batch_id: int,
        when_matched: str = "update",
        replace_where: str | None = None,
        order_by: list[str] | None = None,
    ) -> int:
        """MERGE ``df`` into the table on its keys, once per (app_id, batch_id); returns the source rows.

        ``when_matched``: ``update`` (upsert) or ``ignore`` (insert new keys only).
        ``replace_where``: target rows matching this SQL predicate that the source does not contain are
        deleted, so a recomputed slice (e.g. the days a batch touched) replaces the old one exactly.
        The source is deduplicated on the keys first (first row by ``order_by``).
        """
        spec = catalog.spec(name)
        keys = list(spec.keys)
        if self.local:
            from lakehouse.local import delta_rs

            # Without an order, the first row per key is as good as any: delta-rs keeps it, and Spark
            # need not shuffle to pick one.
            df = self._select(df if order_by is None else dedup_on_keys(df, keys, order_by), name)
            return self._merge_local(delta_rs.dedup_first(df.toArrow(), keys), name, keys, app_id=app_id,
                                     batch_id=batch_id, when_matched=when_matched, replace_where=replace_where)
        df = self._select(dedup_on_keys(df, keys, order_by), name)
        from delta.tables import DeltaTable


        condition = " AND ".join(f"target.`{k}` <=> source.`{k}`" for k in keys)
        # Delta skips a MERGE whose (txnAppId, txnVersion) it has already committed.
        self.spark.conf.set("spark.databricks.delta.write.txnAppId", app_id)
        self.spark.conf.set("spark.databricks.delta.write.txnVersion", str(batch_id))
        df = df.persist()
        rows = df.count()
        try:
            merger = DeltaTable.forName(self.spark, self.identifier(name)).alias("target").merge(df.alias("source"), condition)
            if when_matched == "update":
                merger = merger.whenMatchedUpdateAll()
            merger = merger.whenNotMatchedInsertAll()
            if replace_where:
                merger = merger.whenNotMatchedBySourceDelete(condition=replace_where)
            merger.execute()
            return rows
        finally:
            df.unpersist()
            self.spark.conf.unset("spark.databricks.delta.write.txnAppId")
            self.spark.conf.unset("spark.databricks.delta.write.txnVersion")

    def upsert_rows(self, rows: list[dict], name: str, *, app_id: str, batch_id: int) -> int:
        """:meth:`upsert` of a few Python rows (each a dict with every column of the table)."""
        if self.local:
            import pyarrow as pa
            from pyspark.sql.pandas.types import to_arrow_schema

            from lakehouse.local import delta_rs

            spec = catalog.spec(name)
            schema = to_arrow_schema(spec.struct(), timezone="UTC")
            source = delta_rs.dedup_first(pa.Table.from_pylist(rows, schema=schema), list(spec.keys))
            return self._merge_local(source, name, list(spec.keys), app_id=app_id, batch_id=batch_id)
        df = self.spark.createDataFrame(rows, catalog.spec(name).struct())
        return self.upsert(df, name, app_id=app_id, batch_id=batch_id)

    def _merge_local(self, source, name: str, keys: list[str], *, app_id: str, batch_id: int,
                     when_matched: str = "update", replace_where: str | None = None) -> int:
        from lakehouse.local import delta_rs

        delta_rs.merge(
            self.path(name),
            source,
            keys=keys,
            app_id=app_id,
            version=batch_id,
            when_matched=when_matched,
            delete_unmatched_where=replace_where,
        )
        return source.num_rows
