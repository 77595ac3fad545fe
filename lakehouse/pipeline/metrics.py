"""What every micro-batch shares: who it is (:class:`MicroBatch`) and the ``ops.pipeline_metrics`` row it writes.

Ingest→commit latencies come from the same aggregation as a batch's counts (:func:`ingest_times`),
so recording them costs no extra Spark job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline import spark_internals
from lakehouse.tables import Lakehouse, stream_id

log = logging.getLogger(__name__)

COUNTS = ("rows_in", "rows_written", "quarantined", "duplicates_removed", "late", "files_in", "files_quarantined")


@dataclass(frozen=True)
class MicroBatch:
    """One micro-batch of one layer's stream: the tables it writes (bound to the batch's session),
    the stream's id, the batch id, the event-time watermark Spark ran it with, and when it started."""

    tables: Lakehouse
    layer: str
    stream_id: str
    batch_id: int
    watermark: datetime | None = None
    started: float = field(default_factory=time.time)

    @classmethod
    def start(cls, tables: Lakehouse, layer: str, batch: DataFrame, batch_id: int, *, watermark: bool = False):
        """The micro-batch ``batch_id`` of ``layer``'s stream: its tables bound to the batch's session, its
        stream id (checkpoint and query id), and, with ``watermark``, the event-time watermark it ran with."""
        spark = batch.sparkSession
        checkpoint = tables.checkpoint_location(layer)
        return cls(
            tables.bind(spark), layer, stream_id(checkpoint, spark_internals.query_id(spark, checkpoint)), batch_id,
            watermark=spark_internals.batch_watermark(spark, checkpoint, batch_id) if watermark else None,
        )

    def app_id(self, table: str) -> str:
        """The id of this stream's idempotent writes to ``table``."""
        return f"{table}:{self.stream_id}"

    def record(self, *, ingest=None, **counts: int) -> None:
        """Write this batch's ``ops.pipeline_metrics`` row; ``ingest``: its :func:`ingest_times` row, if it had rows."""
        committed_at = datetime.now(UTC)
        row = {
            "layer": self.layer,
            "stream_id": self.stream_id,
            "batch_id": self.batch_id,
            **dict.fromkeys(COUNTS, 0),
            "late_dropped": 0,
            "watermark": self.watermark,
            "latency_p50_s": None,
            "latency_p95_s": None,
            "latency_max_s": None,
            "duration_s": round(time.time() - self.started, 3),
            "started_at": datetime.fromtimestamp(self.started, UTC).replace(tzinfo=None),
            "committed_at": committed_at.replace(tzinfo=None),
        }
        if ingest is not None:
            row.update(latencies(ingest, committed_at))
        row.update(counts)
        self.tables.upsert_rows(
            [row], "ops.pipeline_metrics", app_id=f"ops:{self.layer}:{self.stream_id}", batch_id=self.batch_id
        )
        log.info("%s batch %s: %s", self.layer, self.batch_id, {k: row[k] for k in COUNTS})


def ingest_times(since_col: str, *, where: str | None = None, weight: str | None = None) -> list[Column]:
    """Aggregates of a batch's ingest times from which its ingest→commit latency follows at commit.

    Latency (commit time − ingest time) falls as ingest time rises, so its p50 / p95 / max are the
    commit time minus the ingest times' p50 / p5 / min. They are computed in the same pass as the
    batch's counts, before the commit time is known. ``where`` (SQL) limits them to some rows;
    ``weight`` (SQL) counts each row as that many (a landed file's record standing for its lines), and
    the quantiles are then exact.
    """
    seconds = f"CAST(`{since_col}` AS DOUBLE)"
    if where is not None:
        seconds = f"IF({where}, {seconds}, NULL)"
    if weight is None:
        # Both quantiles from one digest (two percentile_approx calls would keep two).
        quantiles, earliest = f"percentile_approx({seconds}, array(0.5, 0.05))", f"min({seconds})"
    else:
        quantiles, earliest = f"percentile({seconds}, array(0.5, 0.05), {weight})", f"min(IF({weight} > 0, {seconds}, NULL))"
    return [F.expr(f"{quantiles} AS _ingest_p50_p05"), F.expr(f"{earliest} AS _ingest_min")]


def latencies(stats, committed_at: datetime) -> dict[str, float | None]:
    """``latency_p50_s`` / ``latency_p95_s`` / ``latency_max_s`` from a row of :func:`ingest_times`."""
    committed = committed_at.timestamp()
    p50, p05 = stats["_ingest_p50_p05"] or (None, None)  # null when no row had an ingest time

    def since(value: float | None) -> float | None:
        return None if value is None else committed - value

    return {
        "latency_p50_s": since(p50),
        "latency_p95_s": since(p05),
        "latency_max_s": since(stats["_ingest_min"]),
    }
