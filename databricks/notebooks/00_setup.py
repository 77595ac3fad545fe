# Databricks notebook source
# MAGIC %md
# MAGIC # 00 · Setup: schemas and tables
# MAGIC
# MAGIC **Reads:** nothing. **Writes:** the `bronze`, `silver`, `gold` and `ops` schemas and every table
# MAGIC of the lakehouse, each with a table comment and column comments (`IF NOT EXISTS`: safe to re-run).
# MAGIC
# MAGIC **Guarantees:** after this notebook every table the streams write exists with its declared shape,
# MAGIC so Databricks SQL users see documented, queryable (empty) tables from the start.

# COMMAND ----------

from lakehouse import config
from lakehouse.pipeline import layers

# COMMAND ----------

WIDGETS = ("lakehouse", "checkpoint_root")
config.define_widgets(dbutils, names=WIDGETS)
cfg = config.from_widgets(dbutils, names=WIDGETS)

# COMMAND ----------

created = layers.setup(spark, cfg)
for table, was_created in created.items():
    print(f"{table:28s} {'created' if was_created else 'exists'}")
