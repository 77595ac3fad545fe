# Databricks notebook source
# MAGIC %md
# MAGIC # 01 · Bronze: Auto Loader from the S3 landing area
# MAGIC
# MAGIC **Reads:** JSON-lines micro-batches under the `landing_path` widget (`s3://bucket/prefix`), with
# MAGIC Auto Loader (`cloudFiles`, `binaryFile`: each landed file whole, opened here).
# MAGIC **Writes:** `bronze.events` (one row per landed line, exactly as it arrived, + `_source_file`,
# MAGIC `_line_number`, `_ingested_at`, `_record_id`), `bronze.files` (one row per landed file: read, or
# MAGIC quarantined with the reason) and one `ops.pipeline_metrics` row per micro-batch.
# MAGIC
# MAGIC **Guarantees:** each landed file is read exactly once across restarts (Auto Loader's file
# MAGIC discovery state lives in the checkpoint); each micro-batch is appended once (idempotent write
# MAGIC keyed on the stream and batch id). A file that cannot be read (a corrupt gzip stream, bytes that are
# MAGIC not UTF-8, an object gone since discovery) is recorded in `bronze.files` and the stream goes on.
# MAGIC Malformed lines are kept here; Silver decides about them. `reset = bronze` clears the Bronze
# MAGIC tables, this stream's checkpoint and its metrics together (and rebuilds Silver and Gold after it).

# COMMAND ----------

from lakehouse import config
from lakehouse.pipeline import bronze, layers
from lakehouse.transforms import bronze as bronze_t

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)
tables = layers.prepare(spark, cfg, "bronze")  # rebuilds the layer first when the reset widget asks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Read the landing area with Auto Loader

# COMMAND ----------

landed = (
    spark.readStream.format("cloudFiles")
    .option("cloudFiles.format", "binaryFile")  # each file whole: opening it can fail without stopping the stream
    .option("cloudFiles.schemaLocation", tables.schema_location("bronze"))  # file discovery state
    .option("cloudFiles.maxFilesPerTrigger", str(cfg.max_files_per_trigger))  # bounds a micro-batch
    .option("cloudFiles.includeExistingFiles", "true")  # a new stream starts with what has landed
    .option("ignoreMissingFiles", "true")  # an object expired before it was read does not stop the stream
    .load(cfg.landing_path)
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Open each file: its lines, exactly as they arrived, and a record of the file

# COMMAND ----------

# gunzip *.gz, decode UTF-8, split lines as Spark's text source does; a file that cannot be opened gets
# a record with the reason instead of lines.
bronze_rows = bronze_t.bronze_rows(bronze_t.open_files(landed))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Append each micro-batch once
# MAGIC
# MAGIC `availableNow` drains what has landed in as many micro-batches as `max_files_per_trigger` requires,
# MAGIC then stops; a processing-time trigger (`30 seconds`) keeps the stream running.

# COMMAND ----------

query = (
    bronze_rows.writeStream.foreachBatch(bronze.BronzeBatch(tables))
    .option("checkpointLocation", tables.checkpoint_location("bronze"))
    .queryName("clickstream_bronze")
    .trigger(**cfg.trigger_kwargs())
    .start()
)
query.awaitTermination()
