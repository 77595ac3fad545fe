"""The local runtime: Databricks' `cloudFiles` and `delta` on open-source Spark, and the tools around it."""
