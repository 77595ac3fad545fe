"""Bronze micro-batch: the lines of a batch's landed files appended once to ``bronze.events``, and a record
of every file, read or quarantined, to ``bronze.files``."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.metrics import MicroBatch, ingest_times
from lakehouse.tables import Lakehouse
from lakehouse.transforms import bronze as bronze_t


@dataclass(frozen=True)
class BronzeBatch:
    """The ``foreachBatch`` function of the Bronze stream."""

    tables: Lakehouse

    def __call__(self, batch: DataFrame, batch_id: int) -> dict:
        run = MicroBatch.start(self.tables, "bronze", batch, batch_id)
        batch = run.tables.reusable(batch)
        # Over the file records only: each says how many lines its file gave (a batch's lines may be millions).
        stats = batch.filter("_line_number IS NULL").agg(
            F.expr("count(1) AS files"),
            F.expr("coalesce(sum(_file_lines), 0) AS lines"),
            F.expr("count_if(_file_error IS NOT NULL) AS unreadable"),
            *ingest_times("_file_modification_time", weight="_file_lines"),
        ).first()
        if stats["files"]:
            with run.tables.together() as writes:
                writes.append(bronze_t.lines_of(batch), "bronze.events", app_id=run.app_id("bronze.events"),
                              batch_id=batch_id)
                writes.append(bronze_t.file_records(batch), "bronze.files", app_id=run.app_id("bronze.files"),
                              batch_id=batch_id)
        counts = {
            "rows_in": stats["lines"], "rows_written": stats["lines"],
            "files_in": stats["files"], "files_quarantined": stats["unreadable"],
        }
        run.record(ingest=stats if stats["lines"] else None, **counts)
        return counts
