"""Gold micro-batch: a batch of Silver inserts, added to every Gold table.

Counts of events add up directly. Distinct counts (active users, sessions, converted sessions, unique
users of a page, ...) grow by the members the batch brings that were not counted yet: the batch's member
keys are looked up in ``ops.gold_keys`` (only the days it touched are read), the new ones are counted
and recorded there. A batch therefore costs what it holds, not what the day or Silver holds, and Gold
stays exact, late events included. Replays add nothing twice: new keys are the ones this batch recorded
(or records), and each Gold row remembers the batch that last added to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.metrics import MicroBatch, ingest_times
from lakehouse.tables import Lakehouse
from lakehouse.transforms import gold as gold_t

# The Silver columns the Gold metrics read.
GOLD_INPUT_COLUMNS = [
    "event_id", "event_time", "event_date", "user_id", "session_id", "action", "page", "device_type", "country", "source",
    "ingest_time",
]


@dataclass(frozen=True)
class GoldBatch:
    """The ``foreachBatch`` function of the Gold stream."""

    tables: Lakehouse

    def __call__(self, batch: DataFrame, batch_id: int) -> list:
        run = MicroBatch.start(self.tables, "gold", batch, batch_id)
        return process(run, batch)


def process(run: MicroBatch, batch: DataFrame) -> list:
    """Add a batch of Silver inserts to the Gold tables; returns the days it touched."""
    rows = run.tables.reusable(batch.select(*GOLD_INPUT_COLUMNS))
    stats = rows.agg(
        F.collect_set("event_date").alias("dates"), F.count(F.lit(1)).alias("rows"), *ingest_times("ingest_time")
    ).first()
    if stats["rows"]:
        candidates = run.tables.reusable(gold_t.member_keys(rows))
        counted = run.tables.read_matching("ops.gold_keys", candidates, "key", columns=["key", "batch_id"], within_days=0)
        # New: not counted before, or counted by this very batch in an attempt that did not finish.
        new_keys = run.tables.reusable(
            candidates.join(counted, "key", "left")
            .filter(F.col("batch_id").isNull() | (F.col("batch_id") == run.batch_id))
            .withColumn("batch_id", F.lit(run.batch_id))
        )
        # The keys are recorded first: a replay then finds them under this batch's id and adds the same increments.
        with run.tables.together() as writes:
            writes.append(new_keys, "ops.gold_keys", app_id=run.app_id("ops.gold_keys"), batch_id=run.batch_id)
            for name, increment in gold_t.increments(rows, new_keys).items():
                writes.accumulate(
                    increment, name, add=gold_t.ADDITIVE[name], derive=gold_t.DERIVED.get(name), batch_id=run.batch_id
                )
    run.record(rows_in=stats["rows"], rows_written=stats["rows"], ingest=stats if stats["rows"] else None)
    return sorted(d for d in stats["dates"] if d)
