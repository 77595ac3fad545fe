"""Spark Python data sources that stand in for Databricks formats locally (`cloudFiles`, `delta`)."""
