"""What the pipeline reads from Spark beyond its public API, in one place, each pinned by a test
(tests/lakehouse/pipeline/test_spark_internals.py) so a Spark upgrade that changes it fails there first.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def batch_watermark(spark: SparkSession, checkpoint: str, batch_id: int) -> datetime | None:
    """The event-time watermark Spark used for micro-batch ``batch_id``, from the checkpoint's offset log.

    Spark writes ``<checkpoint>/offsets/<batch id>`` before it runs the batch: a version line, then a
    JSON line whose ``batchWatermarkMs`` is the watermark (0 before the first one). ``foreachBatch``
    gets no other view of it.
    """
    offsets = f"{checkpoint}/offsets/{batch_id}"
    try:
        if Path(offsets).is_file():
            lines = Path(offsets).read_text().splitlines()
        else:
            lines = [r.value for r in spark.read.text(offsets).collect()]
        ms = int(json.loads(lines[1]).get("batchWatermarkMs", 0))
    except Exception:  # noqa: BLE001 - the watermark is informational; never fail a batch on it
        log.debug("no watermark recorded for batch %s in %s", batch_id, checkpoint)
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None) if ms else None


def materialize(batch: DataFrame) -> DataFrame:
    """The micro-batch's rows behind a one-node plan.

    Every job in a batch would otherwise re-analyse the streaming plan, validation expression
    included, before finding a cached copy; an eager local checkpoint computes the rows once and
    plans everything after it over a plain scan.
    """
    return batch.localCheckpoint(eager=True)


def release(checkpointed: DataFrame) -> None:
    """Free a local checkpoint's blocks now.

    Left to Spark's context cleaner they stay until the driver JVM collects garbage, and a long run
    of micro-batches fills the storage memory that joins and aggregations need. (Spark Connect
    releases checkpointed relations itself; it has no ``_jdf``.)
    """
    jdf = getattr(checkpointed, "_jdf", None)
    if jdf is None:
        return
    plan = jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)
