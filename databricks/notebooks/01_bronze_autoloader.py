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

from lakehouse import config
from lakehouse.pipeline import bronze, layers
from lakehouse.transforms import bronze as bronze_t

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)
tables = layers.prepare(spark, cfg, "bronze")  # resets the layer first when reset = true

# COMMAND ----------

# MAGIC %md
# MAGIC ## Read the landing area with Auto Loader

# COMMAND ----------

landed = (
    spark.readStream.format("cloudFiles")
    .option("cloudFiles.format", "text")  # one row per line, exactly as it arrived
    .option("cloudFiles.schemaLocation", tables.schema_location("bronze"))  # file discovery state
    .option("cloudFiles.maxFilesPerTrigger", str(cfg.max_files_per_trigger))  # bounds a micro-batch
    .option("cloudFiles.includeExistingFiles", "true")  # a new stream starts with what has landed
    .load(cfg.landing_path)
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Keep every line with its lineage

# COMMAND ----------

bronze_rows = bronze_t.bronze_rows(landed)  # value + _source_file, _file_size, _ingested_at, _record_id

# COMMAND ----------

# MAGIC %md
# MAGIC ## Append each micro-batch once
# MAGIC
# MAGIC `availableNow` drains what has landed in as many micro-batches as `max_files_per_trigger` requires,
# MAGIC then stops; a processing-time trigger (`30 seconds`) keeps the stream running.

# COMMAND ----------

query = (
    bronze_rows.writeStream.foreachBatch(bronze.BronzeBatch(tables))
    .option("checkpointLocation", tables.checkpoint("bronze"))
    .queryName("clickstream_bronze")
    .trigger(**cfg.trigger_kwargs())
    .start()
)
query.awaitTermination()
