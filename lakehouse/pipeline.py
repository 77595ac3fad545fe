"""The medallion streams: what each notebook starts, and what each micro-batch does.

* Bronze: Auto Loader (``cloudFiles``, text) → ``bronze.events``, every line verbatim.
* Silver: ``bronze.events`` stream → parse against the contract → quarantine invalid lines →
  ``withWatermark`` + ``dropDuplicatesWithinWatermark(["event_id"])`` bounds the dedup state →
  look up the batch's ``event_id``s in Silver → idempotent append of the new ones. Rows the
  watermark drops are recovered, flagged ``is_late``; Silver itself is the long-term dedup memory,
  so duplicates hours apart are still caught.
* Gold: ``silver.events`` stream → recompute the days each batch touched → MERGE (replace those days).

Every micro-batch also writes one ``ops.pipeline_metrics`` row. All writes are idempotent per
(stream, batch id), so a batch replayed after a crash changes nothing twice.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from lakehouse import catalog
from lakehouse.config import AVAILABLE_NOW, PipelineConfig
from lakehouse.tables import Lakehouse, stream_id
from lakehouse.transforms import bronze as bronze_t
from lakehouse.transforms import gold as gold_t
from lakehouse.transforms import silver as silver_t

log = logging.getLogger(__name__)

LAYER_TABLES = {
    "bronze": (catalog.BRONZE_EVENTS,),
    "silver": (catalog.SILVER_EVENTS, catalog.QUARANTINE),
    "gold": catalog.GOLD_TABLES,
}


def lakehouse_for(spark: SparkSession, cfg: PipelineConfig) -> Lakehouse:
    return Lakehouse(spark, cfg.lakehouse, checkpoint_root=cfg.checkpoint_root or None)


def setup(spark: SparkSession, cfg: PipelineConfig) -> dict[str, bool]:
    """Create the layer schemas and every table (IF NOT EXISTS). Returns {table: created}."""
    lakehouse = lakehouse_for(spark, cfg)
    lakehouse.create_schemas()
    return {spec.name: lakehouse.create_table(spec) for spec in catalog.ALL_TABLES}


def reset_layer(lakehouse: Lakehouse, layer: str) -> None:
    """Drop a layer's tables *and* its checkpoint together, then recreate the tables empty."""
    for spec in LAYER_TABLES[layer]:
        lakehouse.drop(spec.name)
    lakehouse.remove_checkpoint(layer)
    for spec in LAYER_TABLES[layer]:
        lakehouse.create_table(spec)
    log.warning("reset %s: tables and checkpoint cleared", layer)


def _prepare(spark: SparkSession, cfg: PipelineConfig, layer: str) -> Lakehouse:
    lakehouse = lakehouse_for(spark, cfg)
    if cfg.reset:
        reset_layer(lakehouse, layer)
    for spec in (*LAYER_TABLES[layer], catalog.PIPELINE_METRICS):
        if not lakehouse.exists(spec.name):
            raise RuntimeError(
                f"table {spec.name} does not exist in {lakehouse.location}: run 00_setup first"
            )
    return lakehouse


def _start(df: DataFrame, batch_fn, lakehouse: Lakehouse, cfg: PipelineConfig, layer: str) -> StreamingQuery:
    return (
        df.writeStream.foreachBatch(batch_fn)
        .option("checkpointLocation", lakehouse.checkpoint(layer))
        .queryName(f"clickstream_{layer}")
        .trigger(**cfg.trigger_kwargs())
        .start()
    )


def await_stream(query: StreamingQuery, cfg: PipelineConfig) -> None:
    """Block until an availableNow stream has drained its input (or forever for a processing-time trigger)."""
    query.awaitTermination()
    if cfg.trigger == AVAILABLE_NOW:
        log.info("%s finished: %s", query.name, json.dumps(query.lastProgress or {}, default=str)[:500])


# -- ops metrics ----------------------------------------------------------------------------------


def ingest_times(since_col: str, *, where: F.Column | None = None) -> list[F.Column]:
    """Aggregates of a batch's ingest times from which its ingest→commit latency follows at commit.

    Latency (commit time − ingest time) falls as ingest time rises, so its p50 / p95 / max are the
    commit time minus the ingest times' p50 / p5 / min. They are computed in the same pass as the
    batch's counts, before the commit time is known. ``where`` limits them to some rows.
    """
    seconds = F.col(since_col).cast("double")
    if where is not None:
        seconds = F.when(where, seconds)
    return [
        F.percentile_approx(seconds, 0.5).alias("_ingest_p50"),
        F.percentile_approx(seconds, 0.05).alias("_ingest_p05"),
        F.min(seconds).alias("_ingest_min"),
    ]


def latencies(stats, committed_at: datetime) -> dict[str, float | None]:
    """``latency_p50_s`` / ``latency_p95_s`` / ``latency_max_s`` from a row of :func:`ingest_times`."""
    committed = committed_at.timestamp()

    def since(value: float | None) -> float | None:
        return None if value is None else committed - value

    return {
        "latency_p50_s": since(stats["_ingest_p50"]),
        "latency_p95_s": since(stats["_ingest_p05"]),
        "latency_max_s": since(stats["_ingest_min"]),
    }


def _record_metrics(lakehouse: Lakehouse, layer: str, sid: str, batch_id: int, started: float, *, ingest=None,
                    **values) -> None:
    """One ``ops.pipeline_metrics`` row; ``ingest``: the batch's :func:`ingest_times` row, if it has rows."""
    committed_at = datetime.now(UTC)
    row = {
        "layer": layer,
        "stream_id": sid,
        "batch_id": batch_id,
        "rows_in": 0,
        "rows_written": 0,
        "quarantined": 0,
        "duplicates_removed": 0,
        "late": 0,
        "late_dropped": 0,
        "watermark": None,
        "latency_p50_s": None,
        "latency_p95_s": None,
        "latency_max_s": None,
        "duration_s": round(time.time() - started, 3),
        "started_at": datetime.fromtimestamp(started, UTC).replace(tzinfo=None),
        "committed_at": committed_at.replace(tzinfo=None),
    }
    if ingest is not None:
        row.update(latencies(ingest, committed_at))
    row.update(values)
    lakehouse.upsert_rows([row], "ops.pipeline_metrics", app_id=f"ops:{layer}:{sid}", batch_id=batch_id)
    log.info("%s batch %s: %s", layer, batch_id, {k: row[k] for k in ("rows_in", "rows_written", "quarantined", "duplicates_removed", "late")})


def _batch_watermark(spark: SparkSession, checkpoint: str, batch_id: int) -> datetime | None:
    """The event-time watermark Spark used for this batch, from the checkpoint's offset log."""
    offsets = f"{checkpoint}/offsets/{batch_id}"
    try:
        if Path(offsets).is_file():
            lines = Path(offsets).read_text().splitlines()
        else:
            lines = [r.value for r in spark.read.text(offsets).collect()]
        meta = json.loads(lines[1])
        ms = int(meta.get("batchWatermarkMs", 0))
    except Exception:  # noqa: BLE001 - the watermark is informational; never fail a batch on it
        log.debug("no watermark recorded for batch %s in %s", batch_id, checkpoint)
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None) if ms else None


# -- Bronze ---------------------------------------------------------------------------------------


def landed_lines(spark: SparkSession, cfg: PipelineConfig, lakehouse: Lakehouse) -> DataFrame:
    """Auto Loader over the landing area: one row per line, verbatim, with ``_metadata``."""
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "text")  # keep each line exactly as it arrived
        .option("cloudFiles.schemaLocation", lakehouse.schema_location("bronze"))
        .option("cloudFiles.maxFilesPerTrigger", str(cfg.max_files_per_trigger))
        .option("cloudFiles.includeExistingFiles", "true")
        .load(cfg.landing_path)
    )


def start_bronze(spark: SparkSession, cfg: PipelineConfig) -> StreamingQuery:
    lakehouse = _prepare(spark, cfg, "bronze")
    sid = stream_id(lakehouse.checkpoint("bronze"))

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        started = time.time()
        batch = batch.persist()
        try:
            stats = batch.agg(F.count(F.lit(1)).alias("rows"), *ingest_times("_file_modification_time")).first()
            lakehouse.append(batch, "bronze.events", app_id=f"bronze:{sid}", batch_id=batch_id)
            _record_metrics(
                lakehouse, "bronze", sid, batch_id, started, rows_in=stats["rows"], rows_written=stats["rows"],
                ingest=stats,
            )
        finally:
            batch.unpersist()

    stream = bronze_t.bronze_rows(landed_lines(spark, cfg, lakehouse))
    return _start(stream, write_batch, lakehouse, cfg, "bronze")


# -- Silver ---------------------------------------------------------------------------------------

BRANCH = "_branch"


def silver_input(bronze_stream: DataFrame, cfg: PipelineConfig) -> DataFrame:
    """Parsed Bronze rows, plus the event_ids the watermark-bounded dedup kept, in one stream.

    Two branches of the same input are unioned: ``all`` (every line, parsed) and ``kept`` (valid
    event_ids that ``dropDuplicatesWithinWatermark`` emitted). Each micro-batch thus sees both the
    full input and Spark's verdict, and can recover what the watermark dropped.
    """
    parsed = silver_t.apply_lateness_rules(
        silver_t.parse(bronze_stream),
        max_lateness_hours=cfg.max_lateness_hours,
        future_tolerance_minutes=cfg.future_tolerance_minutes,
    )
    kept = (
        silver_t.valid_events(parsed)
        .select("event_id", "event_time")
        .withWatermark("event_time", cfg.watermark_delay)
        .dropDuplicatesWithinWatermark(["event_id"])
        .select("event_id", F.lit("kept").alias(BRANCH))
    )
    everything = parsed.withColumn(BRANCH, F.lit("all"))
    return everything.unionByName(kept, allowMissingColumns=True)


def _materialize(batch: DataFrame) -> DataFrame:
    """The micro-batch's rows behind a one-node plan.

    Every job in a batch would otherwise re-analyse the streaming plan, validation expression
    included, before finding a cached copy; an eager local checkpoint computes the rows once and
    plans everything after it over a plain scan.
    """
    return batch.localCheckpoint(eager=True)


def _release(checkpointed: DataFrame) -> None:
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


def process_silver_batch(lakehouse: Lakehouse, batch: DataFrame, batch_id: int, *, sid: str, watermark=None) -> dict:
    """One Silver micro-batch: quarantine, dedup against Silver, append the new rows, metrics. Returns the counts."""
    started = time.time()
    batch = _materialize(batch)
    try:
        if batch.isEmpty():  # a no-data batch: Spark advanced the watermark and evicted state
            _record_metrics(lakehouse, "silver", sid, batch_id, started, watermark=watermark)
            return dict.fromkeys(("rows_in", "rows_written", "quarantined", "duplicates_removed", "late"), 0)
        return _silver_batch(lakehouse, batch, batch_id, sid=sid, watermark=watermark, started=started)
    finally:
        _release(batch)


def _silver_batch(lakehouse: Lakehouse, batch: DataFrame, batch_id: int, *, sid: str, watermark, started: float) -> dict:
    rows = batch.filter(F.col(BRANCH) == "all").drop(BRANCH)
    kept_ids = batch.filter(F.col(BRANCH) == "kept").select("event_id")
    valid = silver_t.valid_events(rows)
    existing = lakehouse.read_matching(
        "silver.events", valid, "event_id", columns=["event_id", "payload_hash", "_record_id"]
    ).persist()
    classified = silver_t.classify_duplicates(valid, kept_ids, existing).persist()
    try:
        return _write_silver(lakehouse, rows, classified, batch_id, sid=sid, watermark=watermark, started=started)
    finally:
        classified.unpersist()
        existing.unpersist()


def _write_silver(lakehouse: Lakehouse, rows: DataFrame, classified: DataFrame, batch_id: int, *, sid: str,
                  watermark, started: float) -> dict:
    is_outcome = {name: F.col("_outcome") == name for name in silver_t.OUTCOMES}
    summary = classified.agg(
        F.count(F.lit(1)).alias("classified"),
        *[F.count_if(test).alias(name) for name, test in is_outcome.items()],
        F.count_if(is_outcome[silver_t.INSERT] & F.col("is_late")).alias("late"),
        *ingest_times("ingest_time", where=is_outcome[silver_t.INSERT]),
    ).first()
    quarantine = silver_t.quarantine_rows(silver_t.invalid_lines(rows)).unionByName(
        silver_t.conflicting_quarantine_rows(classified)
    )
    inserts = silver_t.silver_rows(classified)
    # The lookup above found which of the batch's keys Silver already holds, so what is left is new and
    # is appended, not merged: a MERGE would join the batch with the whole table, which grows with every batch.
    # This stream is the only writer of silver.events.
    lakehouse.append(inserts, "silver.events", app_id=f"silver:{sid}", batch_id=batch_id)
    quarantined = lakehouse.upsert(
        quarantine, "silver.quarantine", app_id=f"quarantine:{sid}", batch_id=batch_id, when_matched="ignore"
    )
    invalid = quarantined - summary[silver_t.CONFLICTING]
    counts = {
        "rows_in": summary["classified"] + invalid,
        "rows_written": summary[silver_t.INSERT] + summary[silver_t.ALREADY_IN_SILVER],
        "quarantined": quarantined,
        "duplicates_removed": summary[silver_t.DUPLICATE],
        "late": summary["late"],
    }
    _record_metrics(lakehouse, "silver", sid, batch_id, started, watermark=watermark, ingest=summary, **counts)
    return counts


def start_silver(spark: SparkSession, cfg: PipelineConfig) -> StreamingQuery:
    lakehouse = _prepare(spark, cfg, "silver")
    checkpoint = lakehouse.checkpoint("silver")
    sid = stream_id(checkpoint)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        watermark = _batch_watermark(spark, checkpoint, batch_id)
        process_silver_batch(lakehouse, batch, batch_id, sid=sid, watermark=watermark)

    bronze_stream = lakehouse.read_stream("bronze.events", maxFilesPerTrigger=str(cfg.max_table_files_per_trigger))
    return _start(silver_input(bronze_stream, cfg), write_batch, lakehouse, cfg, "silver")


# -- Gold -----------------------------------------------------------------------------------------


def _dates_predicate(dates: list) -> str:
    return ", ".join(f"CAST('{d.isoformat()}' AS DATE)" for d in dates)


# The Silver columns the Gold metrics read.
GOLD_INPUT_COLUMNS = [
    "event_id", "event_time", "event_date", "user_id", "session_id", "action", "page", "device_type", "country", "source",
]


def process_gold_batch(lakehouse: Lakehouse, batch: DataFrame, batch_id: int, *, sid: str) -> list:
    """Recompute every Gold table for the days the batch touched and MERGE them (replacing those days)."""
    started = time.time()
    stats = batch.agg(
        F.collect_set("event_date").alias("dates"), F.count(F.lit(1)).alias("rows"), *ingest_times("ingest_time")
    ).first()
    dates = sorted(d for d in stats["dates"] if d)
    if dates:
        in_dates = _dates_predicate(dates)
        silver = (
            lakehouse.read("silver.events", columns=GOLD_INPUT_COLUMNS)
            .filter(f"event_date IN ({in_dates})")
            .persist()
        )
        try:
            for name, metric in gold_t.GOLD_METRICS.items():
                lakehouse.upsert(
                    metric(silver),
                    name,
                    app_id=f"{name}:{sid}",
                    batch_id=batch_id,
                    replace_where=f"target.event_date IN ({in_dates})",
                )
        finally:
            silver.unpersist()
    _record_metrics(
        lakehouse, "gold", sid, batch_id, started, rows_in=stats["rows"], rows_written=stats["rows"], ingest=stats,
    )
    return dates


def start_gold(spark: SparkSession, cfg: PipelineConfig) -> StreamingQuery:
    lakehouse = _prepare(spark, cfg, "gold")
    sid = stream_id(lakehouse.checkpoint("gold"))

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        process_gold_batch(lakehouse, batch, batch_id, sid=sid)

    # A Gold batch recomputes whole days, whatever its size: fewer, larger batches redo less.
    silver_stream = lakehouse.read_stream("silver.events", maxFilesPerTrigger=str(cfg.gold_max_table_files_per_trigger))
    return _start(silver_stream, write_batch, lakehouse, cfg, "gold")
