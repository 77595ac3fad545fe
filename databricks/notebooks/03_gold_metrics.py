# Databricks notebook source
# MAGIC %md
# MAGIC # 03 · Gold: metrics for Databricks SQL
# MAGIC
# MAGIC **Reads:** the `silver.events` stream (inserts only).
# MAGIC **Writes:** `gold.daily_kpis`, `gold.events_per_minute`, `gold.funnel_daily`, `gold.traffic_daily`,
# MAGIC `gold.top_pages_daily` and `ops.pipeline_metrics`.
# MAGIC
# MAGIC **Guarantees:** each micro-batch recomputes every Gold table for the days (UTC, `DATE(event_time)`)
# MAGIC its events touched, from all of Silver, and MERGEs the result replacing those days. Gold is therefore
# MAGIC exact (late events included) and re-running over the same data changes nothing.

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
# MAGIC A Gold batch recomputes whole days whatever its size, so Gold reads in larger batches than Silver.

# COMMAND ----------

silver_events = tables.read_stream("silver.events", maxFilesPerTrigger=str(cfg.gold_max_table_files_per_trigger))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Recompute the touched days of every Gold table

# COMMAND ----------

query = (
    silver_events.writeStream.foreachBatch(gold.GoldBatch(tables))
    .option("checkpointLocation", tables.checkpoint_location("gold"))
    .queryName("clickstream_gold")
    .trigger(**cfg.trigger_kwargs())
    .start()
)
query.awaitTermination()
