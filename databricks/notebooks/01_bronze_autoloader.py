# Databricks notebook source
# MAGIC %md
# MAGIC # 01 · Bronze: Auto Loader from the S3 landing area
# MAGIC
# MAGIC **Reads:** JSON-lines micro-batches under the `landing_path` widget (`s3://bucket/prefix`), with
# MAGIC Auto Loader (`cloudFiles`, text format, so every line is kept exactly as it arrived).
# MAGIC **Writes:** `bronze.events` (one row per landed line + `_source_file`, `_ingested_at`,
# MAGIC `_record_id`) and one `ops.pipeline_metrics` row per micro-batch.
# MAGIC
# MAGIC **Guarantees:** each landed file is read exactly once across restarts (Auto Loader's file
# MAGIC discovery state lives in the checkpoint); each micro-batch is appended once (idempotent write
# MAGIC keyed on the stream and batch id). Malformed lines are kept here; Silver decides about them.
# MAGIC `reset = true` clears `bronze.events` *and* this stream's checkpoint together.

# COMMAND ----------

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..")))

from lakehouse import config, pipeline

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)

# COMMAND ----------

# availableNow drains what has landed in as many micro-batches as max_files_per_trigger requires, then
# stops; a processing-time trigger keeps the stream running.
query = pipeline.start_bronze(spark, cfg)
pipeline.await_stream(query, cfg)
