"""The table layer the notebooks see: where a table lives and how a micro-batch writes it.

:class:`Lakehouse` is the interface. Each runtime has one implementation, each in its own module:

* :class:`lakehouse.unity_catalog.UnityCatalogLakehouse` (Databricks, the default): tables are Unity
  Catalog names ``<catalog>.<layer>.<table>``, written by Delta Lake itself.
* ``lakehouse_local.tables.FolderLakehouse`` (the local runtime): tables are folders
  ``<root>/<layer>/<table>``, written by delta-rs.

:func:`lakehouse_for` returns the runtime's implementation. The local session bootstrap names its
implementation in ``$LAKEHOUSE_TABLES`` (``module:Class``); on Databricks the variable is unset. This
package therefore never imports the local runtime, and notebooks never branch on where they run.

Every write is idempotent per (stream, batch id), so a micro-batch replayed after a crash changes
nothing twice. A :class:`Lakehouse` pickles without its Spark session (``foreachBatch`` functions
are pickled into their own process under Spark Connect); :meth:`Lakehouse.bind` attaches one.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Literal, Self

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.catalog import TableSpec

TABLES_ENV = "LAKEHOUSE_TABLES"
WhenMatched = Literal["update", "ignore"]
DateRange = tuple[date, date]  # (first, last) partition dates, both included
DELETE = "_delete"  # apply_changes: the source column that marks a key to delete


def date_window(first: date, last: date, days: int) -> tuple[date, date]:
    """``days`` before ``first`` to ``days`` after ``last``, within the calendar (years 1 to 9999)."""
    return (
        first - timedelta(days=min(days, (first - date.min).days)),
        last + timedelta(days=min(days, (date.max - last).days)),
    )


def looks_like_path(location: str) -> bool:
    """True when a lakehouse location is a folder or URI rather than a catalog name."""
    return "/" in location or location.startswith((".", "~")) or ":" in location


def stream_id(checkpoint: str, query_id: str | None = None) -> str:
    """The id of a stream's idempotent writes: its checkpoint location and the query id Spark keeps there.

    The query id is new whenever the checkpoint is, so after a reset (tables and checkpoint cleared, batch
    ids starting at 0 again) no write is mistaken for one the previous stream already made.
    """
    return hashlib.sha1(f"{checkpoint.rstrip('/')}|{query_id or ''}".encode()).hexdigest()[:16]


def dedup_on_keys(df: DataFrame, keys: list[str], order_by: list[str] | None = None) -> DataFrame:
    """Keep one row per key (the first by ``order_by``), so a MERGE never inserts a key twice."""
    if order_by:
        window = Window.partitionBy(*keys).orderBy(*order_by)
        return df.withColumn("_key_rank", F.row_number().over(window)).filter("_key_rank = 1").drop("_key_rank")
    return df.dropDuplicates(keys)


class Lakehouse(ABC):
    """The lakehouse's tables and the checkpoints of the streams that write them.

    ``location`` is what the runtime addresses tables by (a catalog name, a folder);
    ``checkpoint_root`` holds one folder per stream.
    """

    location: str
    checkpoint_root: str

    def __init__(self, spark: SparkSession | None, location: str, *, checkpoint_root: str | None = None) -> None:
        self.spark = spark
        self.location = location
        self.checkpoint_root = checkpoint_root.rstrip("/") if checkpoint_root else ""

    # -- sessions -------------------------------------------------------------------------------

    def bind(self, spark: SparkSession) -> Self:
        """This lakehouse on ``spark`` (a ``foreachBatch`` function binds the batch's own session)."""
        bound = copy.copy(self)
        bound.spark = spark
        return bound

    def __getstate__(self) -> dict:
        return {**self.__dict__, "spark": None}

    @property
    def session(self) -> SparkSession:
        if self.spark is None:
            raise RuntimeError(f"{type(self).__name__} has no Spark session: call .bind(spark) first")
        return self.spark

    # -- addressing -----------------------------------------------------------------------------

    def checkpoint_location(self, stream: str) -> str:
        """The checkpoint folder of a stream (its ``checkpointLocation``)."""
        return f"{self.checkpoint_root}/{stream}"

    def schema_location(self, stream: str) -> str:
        """Auto Loader's ``cloudFiles.schemaLocation`` of a stream (inside its checkpoint)."""
        return f"{self.checkpoint_root}/{stream}/_schema"

    # -- DDL ------------------------------------------------------------------------------------

    @abstractmethod
    def create_schemas(self) -> None:
        """Create the layer schemas (``bronze``, ``silver``, ``gold``, ``ops``) if they do not exist."""

    @abstractmethod
    def create_table(self, spec: TableSpec) -> bool:
        """Create the table if it does not exist, with table and column comments. True if created."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """True when table ``name`` (``<layer>.<table>``) exists."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Drop a table (a notebook's reset, together with its checkpoint)."""

    @abstractmethod
    def remove_checkpoint(self, stream: str) -> None:
        """Delete a stream's checkpoint folder."""

    @abstractmethod
    def delete_where(self, name: str, predicate: str) -> None:
        """Delete the rows of table ``name`` that satisfy the SQL ``predicate``."""

    @abstractmethod
    def update_where(self, name: str, values: dict[str, str], predicate: str) -> None:
        """Set ``values`` (column -> SQL expression) on the rows of table ``name`` that satisfy ``predicate``."""

    @abstractmethod
    def vacuum(self, name: str) -> None:
        """Delete the files of table ``name`` that its current version no longer uses and that left it longer
        ago than the table's retention of removed files (Delta's ``VACUUM``, 7 days by default)."""

    # -- reads ----------------------------------------------------------------------------------

    @abstractmethod
    def read(self, name: str, *, columns: list[str] | None = None) -> DataFrame:
        """Batch read of a table; ``columns`` reads only those."""

    @abstractmethod
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
        """The rows of table ``name`` whose ``key`` is among ``keys[key]``, with ``columns``.

        ``within_days``: only rows whose partition date (the table's partition column, which ``keys`` also
        carries) lies within that many days of the keys' own dates, so only those partitions are read.
        ``dates``: only rows whose partition date lies in this (first, last) range.
        """

    @abstractmethod
    def read_stream(self, name: str, **options: str) -> DataFrame:
        """The table's appends as a stream (``readStream.format("delta")``)."""

    # -- writes ---------------------------------------------------------------------------------

    @abstractmethod
    def reusable(self, batch: DataFrame) -> DataFrame:
        """A micro-batch's rows, for the several reads and writes of one ``foreachBatch`` call.

        No caching is involved (Spark Connect and serverless refuse it): each runtime does what suits it.
        """

    def known_empty(self, frame: DataFrame) -> bool:
        """True when ``frame`` (from :meth:`reusable`) is known to hold no rows without running a Spark job.

        A runtime that cannot tell for free answers False, and the caller goes on as with rows.
        """
        return False

    @contextmanager
    def together(self) -> Iterator[Self]:
        """For writes of one micro-batch that read none of each other's results: they are given as calls on the
        lakehouse this yields, and a runtime may compute their rows side by side.

        Here each write runs as it is called (on Databricks, Delta's writer and MERGE do the work in the
        cluster). The local runtime defers them to the end of the block, materialises their rows at once and
        commits them in the order given; none commits when the block raises. Either way every write stays
        idempotent per batch, so a batch that fails part-way is replayed safely. Callers do not use what a
        write returns inside the block.
        """
        yield self

    @abstractmethod
    def append(self, df: DataFrame, name: str, *, app_id: str, batch_id: int) -> bool:
        """Append ``df`` once per (app_id, batch_id): a replayed batch is skipped. False if skipped."""

    @abstractmethod
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
        """MERGE ``df`` into the table on its keys; replaying (app_id, batch_id) changes nothing.

        ``when_matched``: ``update`` (upsert) or ``ignore`` (insert new keys only).
        The source is deduplicated on the keys first (first row by ``order_by``).
        ``within``: the (first, last) partition dates the rows it matches lie in, so only those partitions are
        read and rewritten (an update may move a row to another partition).
        """

    @abstractmethod
    def apply_changes(
        self, df: DataFrame, name: str, *, app_id: str, batch_id: int, within: DateRange | None = None
    ) -> None:
        """MERGE ``df`` into the table on its keys in one commit: a row whose ``_delete`` is true deletes its key's
        row, the others replace theirs or are inserted. Replaying (app_id, batch_id) changes nothing.

        ``within`` as for :meth:`upsert`.
        """

    @abstractmethod
    def accumulate(
        self, df: DataFrame, name: str, *, add: list[str], derive: dict[str, str] | None = None, batch_id: int
    ) -> None:
        """MERGE ``df`` into the table on its keys, adding its ``add`` columns to the rows it matches (new keys
        are inserted); ``derive`` recomputes columns from the sums (SQL over ``target`` and ``source``).

        Once per batch on every compute: each row records in ``_batch_id`` the batch that last added to it,
        and a row that already carries ``batch_id`` is left alone, so a replayed batch adds nothing twice.
        """

    @staticmethod
    def accumulation(add: list[str], derive: dict[str, str] | None, batch_column: str = "_batch_id") -> tuple[str, dict]:
        """The MERGE clause of :meth:`accumulate`: (condition for matched rows, column -> SQL to set)."""
        updates = {column: f"target.`{column}` + source.`{column}`" for column in add}
        updates.update(derive or {})
        updates[batch_column] = f"source.`{batch_column}`"
        return f"target.`{batch_column}` IS DISTINCT FROM source.`{batch_column}`", updates

    @abstractmethod
    def upsert_rows(self, rows: list[dict], name: str, *, app_id: str, batch_id: int) -> None:
        """:meth:`upsert` of a few Python rows (each a dict with every column of the table)."""

    # -- shared by the implementations ----------------------------------------------------------

    @staticmethod
    def partition_filter(name: str, within: DateRange | None, alias: str = "target") -> str:
        """SQL that keeps ``alias``'s rows in the partitions ``within`` names (``TRUE`` without a range)."""
        if within is None:
            return "TRUE"
        (partition,) = catalog.spec(name).partitioned_by
        first, last = within
        return f"{alias}.`{partition}` >= '{first.isoformat()}' AND {alias}.`{partition}` <= '{last.isoformat()}'"

    @staticmethod
    def conform(df: DataFrame, name: str, *, keep: tuple[str, ...] = ()) -> DataFrame:
        """``df`` with exactly the table's columns, in its order and types (then the ``keep`` columns as they are)."""
        # One expression list (a single call into Spark, not several per column).
        casts = [f"CAST(`{c.name}` AS {c.type}) AS `{c.name}`" for c in catalog.spec(name).columns]
        return df.selectExpr(*casts, *[f"`{k}`" for k in keep])

    def empty(self, name: str, columns: list[str]) -> DataFrame:
        return self.session.createDataFrame([], catalog.spec(name).struct()).select(*columns)


def lakehouse_for(spark: SparkSession, location: str, *, checkpoint_root: str | None = None) -> Lakehouse:
    """The runtime's :class:`Lakehouse`: the class named in ``$LAKEHOUSE_TABLES``, else Unity Catalog's."""
    named = os.environ.get(TABLES_ENV, "").strip()
    if named:
        module, _, cls = named.partition(":")
        try:
            implementation = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(
                f"${TABLES_ENV}={named!r} does not name a Lakehouse class ('package.module:Class'): {exc}. "
                f"Unset it on Databricks; the local runtime sets it itself."
            ) from exc
    else:
        from lakehouse.unity_catalog import UnityCatalogLakehouse as implementation
    return implementation(spark, location, checkpoint_root=checkpoint_root)
