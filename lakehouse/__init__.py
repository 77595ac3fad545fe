"""Clickstream lakehouse: the code the Databricks notebooks, the producer and the local runtime share."""

__version__ = "0.1.0"
