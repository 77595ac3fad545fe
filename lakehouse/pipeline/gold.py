"""Gold micro-batch: recompute every Gold table for the days a batch of Silver inserts touched.

Each table is MERGEd replacing those days, so Gold is exact (late events included) and a replayed
batch changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.metrics import MicroBatch, ingest_times
from lakehouse.tables import Lakehouse, stream_id
from lakehouse.transforms import gold as gold_t

# The Silver columns the Gold metrics read.
GOLD_INPUT_COLUMNS = [
    "event_id", "event_time", "event_date", "user_id", "session_id", "action", "page", "device_type", "country", "source",
]


@dataclass(frozen=True)
class GoldBatch:
    """The ``foreachBatch`` function of the Gold stream."""

    tables: Lakehouse

    def __call__(self, batch: DataFrame, batch_id: int) -> list:
        run = MicroBatch(self.tables.bind(batch.sparkSession), "gold", stream_id(self.tables.checkpoint("gold")), batch_id)
        return process(run, batch)


def _dates_predicate(dates: list) -> str:
    return ", ".join(f"CAST('{d.isoformat()}' AS DATE)" for d in dates)


def process(run: MicroBatch, batch: DataFrame) -> list:
    """Recompute the Gold tables for the days ``batch`` touched; returns those days."""
    stats = batch.agg(
        F.collect_set("event_date").alias("dates"), F.count(F.lit(1)).alias("rows"), *ingest_times("ingest_time")
    ).first()
    dates = sorted(d for d in stats["dates"] if d)
    if dates:
        in_dates = _dates_predicate(dates)
        silver = run.tables.read("silver.events", columns=GOLD_INPUT_COLUMNS).filter(f"event_date IN ({in_dates})")
        for name, metric in gold_t.GOLD_METRICS.items():
            run.tables.upsert(
                metric(silver), name, app_id=run.app_id(name), batch_id=run.batch_id,
                replace_where=f"target.event_date IN ({in_dates})",
            )
    run.record(rows_in=stats["rows"], rows_written=stats["rows"], ingest=stats)
    return dates
