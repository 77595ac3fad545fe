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

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..")))

from lakehouse import config, pipeline

# COMMAND ----------

config.define_widgets(dbutils)
cfg = config.from_widgets(dbutils)

# COMMAND ----------

query = pipeline.start_gold(spark, cfg)
pipeline.await_stream(query, cfg)
