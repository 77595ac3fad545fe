# Databricks notebook source
# MAGIC %md
# MAGIC # 04 · Gold model: star schema, sessions, users' history, customer features
# MAGIC
# MAGIC **Reads:** the `silver.events` stream (inserts only); for each batch's keys only, `gold.fact_events`,
# MAGIC `gold.sessions`, `gold.dim_user`, `gold.dim_page` and `gold.customer_features`.
# MAGIC **Writes:** `gold.fact_events`, `gold.dim_user` (SCD Type 2), `gold.dim_page`, `gold.dim_date`,
# MAGIC `gold.sessions`, `gold.customer_features` and `ops.pipeline_metrics`.
# MAGIC
# MAGIC **Guarantees:**
# MAGIC - Exact, late events included: sessions and users' history come out as if every event had arrived in
# MAGIC   `event_time` order; a duplicate never counts twice (Silver holds one row per `event_id`).
# MAGIC - A batch costs what it touches: its events are appended to the fact table, and only its sessions, users,
# MAGIC   pages and years are read (partition pruning and key filters) and rewritten (keyed MERGE).
# MAGIC - Idempotent per micro-batch: a batch replayed after a crash, or a re-run, changes nothing twice.

# COMMAND ----------

from lakehouse import config
from lakehouse.pipeline import gold_model, layers

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)
tables = layers.prepare(spark, cfg, gold_model.STREAM)  # rebuilds the model first when the reset widget asks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Read Silver's inserts as a stream
# MAGIC
# MAGIC Its own checkpoint: the model follows Silver independently of the metrics stream (notebook 03).

# COMMAND ----------

silver_events = tables.read_stream(
    "silver.events",
    maxFilesPerTrigger=str(cfg.gold_max_table_files_per_trigger),
    maxBytesPerTrigger=cfg.gold_max_table_bytes_per_trigger,
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Each micro-batch: fact rows first, then the dimensions, sessions and features it touches
# MAGIC
# MAGIC 1. `gold.fact_events`: the batch's events appended (once per batch id).
# MAGIC 2. `gold.dim_date` (the days of a new year), `gold.dim_page` (first and last seen of its pages).
# MAGIC 3. `gold.sessions`: each session of the batch folded into its stored row (counts add, start and end are a
# MAGIC    minimum and a maximum, entry and exit the first and last event).
# MAGIC 4. `gold.dim_user`: each user's history rebuilt from their earliest new event on; `gold.customer_features`:
# MAGIC    their features as of their latest event, from their last 30 days in `gold.fact_events`.

# COMMAND ----------

query = (
    silver_events.writeStream.foreachBatch(gold_model.GoldModelBatch(tables, cfg))
    .option("checkpointLocation", tables.checkpoint_location(gold_model.STREAM))
    .queryName("clickstream_gold_model")
    .trigger(**cfg.trigger_kwargs())
    .start()
)
query.awaitTermination()
