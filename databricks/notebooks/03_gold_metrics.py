# Databricks notebook source
# MAGIC %md
# MAGIC # 03 · Gold: metrics for Databricks SQL
# MAGIC
# MAGIC **Reads:** the `silver.events` stream (inserts only).
# MAGIC **Writes:** `gold.daily_kpis`, `gold.events_per_minute`, `gold.funnel_daily`, `gold.traffic_daily`,
# MAGIC `gold.top_pages_daily` and `ops.pipeline_metrics`.
# MAGIC
# MAGIC **Guarantees:** each micro-batch adds its events to the Gold rows of the days (UTC, `DATE(event_time)`)
# MAGIC and groups they touched. Counts add up; distinct counts (active users, sessions, converted sessions,
# MAGIC unique users of a page) grow by the members `ops.gold_keys` has not counted yet. Gold is therefore exact,
# MAGIC late events included, a batch costs what it holds (not what the day or Silver holds), and a replayed
# MAGIC batch adds nothing twice.

# COMMAND ----------

from lakehouse import config
from lakehouse.pipeline import gold, layers

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)
tables = layers.prepare(spark, cfg, "gold")  # rebuilds the layer first when the reset widget asks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Read Silver's inserts as a stream
# MAGIC
# MAGIC A Gold batch has a fixed cost (a lookup of its member keys and one MERGE per Gold table), so Gold may read
# MAGIC several of Silver's files per batch (`gold_max_table_files_per_trigger`), up to
# MAGIC `gold_max_table_bytes_per_trigger` of them.

# COMMAND ----------

silver_events = tables.read_stream(
    "silver.events",
    maxFilesPerTrigger=str(cfg.gold_max_table_files_per_trigger),
    maxBytesPerTrigger=cfg.gold_max_table_bytes_per_trigger,
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Add each batch to every Gold table

# COMMAND ----------

query = (
    silver_events.writeStream.foreachBatch(gold.GoldBatch(tables))
    .option("checkpointLocation", tables.checkpoint_location("gold"))
    .queryName("clickstream_gold")
    .trigger(**cfg.trigger_kwargs())
    .start()
)
query.awaitTermination()
