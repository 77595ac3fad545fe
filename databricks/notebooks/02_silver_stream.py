# Databricks notebook source
# MAGIC %md
# MAGIC # 02 · Silver: contract validation, quarantine, watermark dedup
# MAGIC
# MAGIC **Reads:** the `bronze.events` stream.
# MAGIC **Writes:** `silver.events` (valid events, one row per `event_id`), `silver.quarantine` (every line
# MAGIC that cannot be an event, with a typed reason, the offending field and the raw line) and
# MAGIC `ops.pipeline_metrics`.
# MAGIC
# MAGIC **Guarantees:**
# MAGIC - Lines are parsed against `schemas/clickstream.schema.json` (the Spark schema and the checks are
# MAGIC   derived from it); fields the contract does not name are kept in `_rescued_data`.
# MAGIC - `withWatermark("event_time", watermark_delay)` + `dropDuplicatesWithinWatermark(["event_id"])`
# MAGIC   bound the streaming state; events the watermark drops are recovered with `is_late = true`.
# MAGIC - Each batch's `event_id`s are looked up in Silver and only new ones are appended (once per batch id):
# MAGIC   first arrival wins, across restarts, replays and duplicates hours apart; the same `event_id` with
# MAGIC   a different payload goes to quarantine as `conflicting_duplicate`. This stream is the only writer
# MAGIC   of `silver.events`.
# MAGIC - Lateness is measured within the event: `ingest_time - event_time` over `max_lateness_hours` is
# MAGIC   `too_late`; `event_time` more than `future_tolerance_minutes` after `ingest_time` is `future_event_time`.

# COMMAND ----------

from lakehouse import config
from lakehouse.pipeline import layers, silver
from lakehouse.transforms import silver as silver_t

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)
tables = layers.prepare(spark, cfg, "silver")  # rebuilds the layer first when the reset widget asks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Read Bronze as a stream

# COMMAND ----------

bronze_lines = tables.read_stream(
    "bronze.events",
    maxFilesPerTrigger=str(cfg.max_table_files_per_trigger),
    maxBytesPerTrigger=cfg.max_table_bytes_per_trigger,  # a compacted Bronze file is 128 MiB: bound the batch
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parse against the contract, then apply the lateness rules
# MAGIC
# MAGIC Each line is read strictly (one JSON object per line) and gets the contract's verdict: a
# MAGIC `_violation` (null when the line is a valid event), the typed columns, `_rescued_data` and a
# MAGIC `payload_hash`. IP addresses in free text are replaced by their keyed hash, with the key the
# MAGIC producer's `ip_hash` uses (a secret).

# COMMAND ----------

scope, key = cfg.secret()
hmac_key = dbutils.secrets.get(scope=scope, key=key).encode()
parsed = silver_t.apply_lateness_rules(
    silver_t.parse(bronze_lines, hmac_key=hmac_key),
    max_lateness_hours=cfg.max_lateness_hours,
    future_tolerance_minutes=cfg.future_tolerance_minutes,
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Watermark and dedup
# MAGIC
# MAGIC The watermark bounds the dedup state: an `event_id` is remembered for `watermark_delay` of event time.
# MAGIC The dedup reads each line's verdict and the three fields it needs (`event_id`, `event_time`,
# MAGIC `ingest_time`), the same checks as the parse above without typing, scrubbing and hashing the rest.

# COMMAND ----------

verdicts = silver_t.apply_lateness_rules(
    silver_t.verdicts(bronze_lines, hmac_key=hmac_key),
    max_lateness_hours=cfg.max_lateness_hours,
    future_tolerance_minutes=cfg.future_tolerance_minutes,
)
kept = (
    silver_t.valid_events(verdicts)
    .select("event_id", "event_time")
    .withWatermark("event_time", cfg.watermark_delay)
    .dropDuplicatesWithinWatermark(["event_id"])
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Each micro-batch: quarantine, dedup against Silver, append
# MAGIC
# MAGIC The batch sees every parsed line and the `event_id`s dedup kept, so it can recover what the
# MAGIC watermark dropped (`is_late`).

# COMMAND ----------

query = (
    silver.with_dedup_verdicts(parsed, kept)
    .writeStream.foreachBatch(silver.SilverBatch(tables, cfg))
    .option("checkpointLocation", tables.checkpoint_location("silver"))
    .queryName("clickstream_silver")
    .trigger(**cfg.trigger_kwargs())
    .start()
)
query.awaitTermination()
