"""The local ``cloudFiles`` source (Auto Loader's stand-in), registered by Spark itself when it starts.

Spark registers the ``DefaultSource`` of every importable package named ``pyspark_<something>``. A
declarative pipeline (``spark-pipelines run``) sees only sources registered that way, not ones a
definitions file registers with ``spark.dataSource.register``; so with the repository on ``PYTHONPATH``,
``spark.readStream.format("cloudFiles")`` in a pipeline reaches :mod:`lakehouse_local.sources.cloudfiles`
with no local-only line in the pipeline's code. Never shipped to Databricks, where Auto Loader is built in.
"""

from lakehouse_local.sources.cloudfiles import CloudFilesDataSource as DefaultSource

__all__ = ["DefaultSource"]
