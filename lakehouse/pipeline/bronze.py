"""Bronze micro-batch: the landed lines of a batch, appended once to ``bronze.events``."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.metrics import MicroBatch, ingest_times
from lakehouse.tables import Lakehouse


@dataclass(frozen=True)
class BronzeBatch:
    """The ``foreachBatch`` function of the Bronze stream."""

    tables: Lakehouse

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        run = MicroBatch.start(self.tables, "bronze", batch, batch_id)
        batch = run.tables.reusable(batch)
        stats = batch.agg(F.count(F.lit(1)).alias("rows"), *ingest_times("_file_modification_time")).first()
        if stats["rows"]:
            run.tables.append(batch, "bronze.events", app_id=run.app_id("bronze.events"), batch_id=batch_id)
        run.record(rows_in=stats["rows"], rows_written=stats["rows"], ingest=stats if stats["rows"] else None)
