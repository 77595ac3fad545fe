# Databricks notebook source
# MAGIC %md
# MAGIC # 90 · Retention of raw lines
# MAGIC
# MAGIC **Reads and writes:** `bronze.events.value` and `silver.quarantine.raw_line`, the text of each landed
# MAGIC line exactly as it arrived (readable by the engineers' group only).
# MAGIC
# MAGIC **Guarantees:** text older than `raw_retention_days` is removed (set to null), and `VACUUM` deletes the
# MAGIC files that still hold it once the table's retention of removed files has passed (7 days by default,
# MAGIC `delta.deletedFileRetentionDuration`; until then older versions can still be read). The rows stay, so every
# MAGIC count and the conservation law still hold; Silver and Gold keep their validated, pseudonymised values.
# MAGIC A rebuild from Bronze (`reset = silver`) reaches back as far as this retention. Run it daily (the
# MAGIC bundle's `clickstream_retention` job does); running it again changes nothing.

# COMMAND ----------

from lakehouse import config
from lakehouse.pipeline import layers, retention

# COMMAND ----------

WIDGETS = ("lakehouse", "checkpoint_root", "raw_retention_days")
config.define_widgets(dbutils, names=WIDGETS)
cfg = config.from_widgets(dbutils, names=WIDGETS)

# COMMAND ----------

cutoff = retention.purge_raw_lines(layers.tables_for(spark, cfg), retention_days=cfg.raw_retention_days)
print(f"raw text of lines ingested before {cutoff.isoformat()} UTC removed")
