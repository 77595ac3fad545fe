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
# MAGIC   a different payload goes to quarantine as `conflicting_duplicate`.
# MAGIC - Lateness is measured within the event: `ingest_time - event_time` over `max_lateness_hours` is
# MAGIC   `too_late`; `event_time` more than `future_tolerance_minutes` after `ingest_time` is `future_event_time`.

# COMMAND ----------

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..")))

from lakehouse import config, pipeline

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)

# COMMAND ----------

query = pipeline.start_silver(spark, cfg)
pipeline.await_stream(query, cfg)
