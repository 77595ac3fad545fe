"""The medallion streams: what each notebook starts, and what each micro-batch does.

* Bronze: Auto Loader (``cloudFiles``, text) → ``bronze.events``, every line verbatim.
* Silver: ``bronze.events`` stream → parse against the contract → quarantine invalid lines →
  ``withWatermark`` + ``dropDuplicatesWithinWatermark(["event_id"])`` bounds the dedup state →
  idempotent insert-only MERGE on ``event_id``. Rows the watermark drops are recovered, flagged
  ``is_late``; Silver itself is the long-term dedup memory, so duplicates hours apart are still caught.
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


def _latency_seconds(df: DataFrame, since_col: str, committed_at: datetime) -> tuple[float | None, float | None, float | None]:
    committed = F.lit(committed_at.replace(tzinfo=None)).cast("timestamp")
    delay = committed.cast("double") - F.col(since_col).cast("double")
    row = df.agg(
        F.percentile_approx(delay, 0.5).alias("p50"),
        F.percentile_approx(delay, 0.95).alias("p95"),
        F.max(delay).alias("max"),
    ).first()
    return (row["p50"], row["p95"], row["max"]) if row else (None, None, None)


def _record_metrics(lakehouse: Lakehouse, layer: str, sid: str, batch_id: int, started: float, **values) -> None:
    spark = lakehouse.spark
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
    row.update(values)
    df = spark.createDataFrame([row], catalog.PIPELINE_METRICS.struct())
    lakehouse.upsert(df, "ops.pipeline_metrics", app_id=f"ops:{layer}:{sid}", batch_id=batch_id)
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
            rows = batch.count()
            lakehouse.append(batch, "bronze.events", app_id=f"bronze:{sid}", batch_id=batch_id)
            p50, p95, pmax = _latency_seconds(batch, "_file_modification_time", datetime.now(UTC))
            _record_metrics(
                lakehouse, "bronze", sid, batch_id, started, rows_in=rows, rows_written=rows,
                latency_p50_s=p50, latency_p95_s=p95, latency_max_s=pmax,
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
    """One Silver micro-batch: quarantine, dedup against Silver, MERGE, metrics. Returns the counts."""
    started = time.time()
    batch = _materialize(batch)
    try:
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
    outcomes = {
        (r["_outcome"], r["is_late"]): r["n"]
        for r in classified.groupBy("_outcome", "is_late").agg(F.count(F.lit(1)).alias("n")).collect()
    }

    def outcome(name: str) -> int:
        return sum(n for (o, _), n in outcomes.items() if o == name)

    quarantine = silver_t.quarantine_rows(silver_t.invalid_lines(rows)).unionByName(
        silver_t.conflicting_quarantine_rows(classified)
    )
    inserts = silver_t.silver_rows(classified)
    lakehouse.upsert(inserts, "silver.events", app_id=f"silver:{sid}", batch_id=batch_id, when_matched="ignore")
    quarantined = lakehouse.upsert(
        quarantine, "silver.quarantine", app_id=f"quarantine:{sid}", batch_id=batch_id, when_matched="ignore"
    )
    invalid = quarantined - outcome(silver_t.CONFLICTING)
    counts = {
        "rows_in": sum(outcomes.values()) + invalid,
        "rows_written": outcome(silver_t.INSERT) + outcome(silver_t.ALREADY_IN_SILVER),
        "quarantined": quarantined,
        "duplicates_removed": outcome(silver_t.DUPLICATE),
        "late": outcomes.get((silver_t.INSERT, True), 0),
    }
    p50, p95, pmax = _latency_seconds(
        classified.filter(F.col("_outcome") == silver_t.INSERT), "ingest_time", datetime.now(UTC)
    )
    _record_metrics(
        lakehouse, "silver", sid, batch_id, started, watermark=watermark,
        latency_p50_s=p50, latency_p95_s=p95, latency_max_s=pmax, **counts,
    )
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
    batch = batch.persist()
    try:
        dates = sorted(r["event_date"] for r in batch.select("event_date").distinct().collect() if r["event_date"])
        if dates:
            in_dates = _dates_predicate(dates)
            silver = (
                lakehouse.read("silver.events", columns=GOLD_INPUT_COLUMNS)
                .filter(f"event_date IN ({in_dates})")
                .persist()
            )
            for name, metric in gold_t.GOLD_METRICS.items():
                lakehouse.upsert(
                    metric(silver),
                    name,
                    app_id=f"{name}:{sid}",
                    batch_id=batch_id,
                    replace_where=f"target.event_date IN ({in_dates})",
                )
            silver.unpersist()
        p50, p95, pmax = _latency_seconds(batch, "ingest_time", datetime.now(UTC))
        rows = batch.count()
        _record_metrics(
            lakehouse, "gold", sid, batch_id, started, rows_in=rows, rows_written=rows,
            latency_p50_s=p50, latency_p95_s=p95, latency_max_s=pmax,
        )
        return dates
    finally:
        batch.unpersist()


def start_gold(spark: SparkSession, cfg: PipelineConfig) -> StreamingQuery:
    lakehouse = _prepare(spark, cfg, "gold")
    sid = stream_id(lakehouse.checkpoint("gold"))

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        process_gold_batch(lakehouse, batch, batch_id, sid=sid)

    silver_stream = lakehouse.read_stream("silver.events", maxFilesPerTrigger=str(cfg.max_table_files_per_trigger))
    return _start(silver_stream, write_batch, lakehouse, cfg, "gold")
