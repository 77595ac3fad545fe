"""What the pipeline reads from Spark beyond its public API, in one place, each pinned by a test
(tests/lakehouse/pipeline/test_spark_internals.py) so a Spark upgrade that changes it fails there first.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def query_id(spark: SparkSession, checkpoint: str) -> str | None:
    """The id Spark gave the streaming query at ``checkpoint`` when it first started it.

    Spark writes ``<checkpoint>/metadata`` (a JSON object with ``id``) once, before the first batch; the
    id stays across restarts and is new for a new checkpoint.
    """
    metadata = f"{checkpoint}/metadata"
    try:
        if Path(metadata).is_file():
            text = Path(metadata).read_text()
        else:
            text = "\n".join(r.value for r in spark.read.text(metadata).collect())
        return json.loads(text.splitlines()[0])["id"]
    except Exception:  # noqa: BLE001 - a checkpoint without metadata (not started yet) has no id
        log.debug("no query id in %s", checkpoint)
        return None


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
