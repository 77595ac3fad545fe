"""Local SparkSession factory: open-source Spark configured like a small Databricks cluster.

Delta Lake's JVM jars cannot be fetched here, so the session registers Spark Python data sources
named ``cloudFiles`` and ``delta`` (built on boto3 and delta-rs) instead. Notebooks then use
``spark.readStream.format("cloudFiles")`` and ``.format("delta")`` exactly as on Databricks.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# What lakehouse.tables.lakehouse_for returns to the notebooks on this runtime.
TABLES = "lakehouse_local.tables:FolderLakehouse"

log = logging.getLogger(__name__)


def _python_path() -> str:
    parts = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(parts))


def get_or_create_session(
    app_name: str = "clickstream-lakehouse",
    *,
    shuffle_partitions: int = 2,
    driver_memory: str | None = None,
    cores: int | str = "*",
    extra_conf: dict[str, str] | None = None,
):
    """Start (or return) the local session with the `cloudFiles` and `delta` sources registered.

    ``driver_memory`` defaults to ``$LAKEHOUSE_DRIVER_MEMORY`` or 4g: local mode runs every task in
    the driver JVM, and a Silver micro-batch holds its checkpointed rows, the dedup lookup and the
    rows collected for the delta-rs MERGE at once.

    Spark's Python workers are started by the JVM, so they must find this package and the
    virtualenv's interpreter through the environment, set here before the JVM starts.
    """
    from pyspark.sql import SparkSession

    from lakehouse import privacy
    from lakehouse.tables import TABLES_ENV

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ["PYTHONPATH"] = _python_path()
    os.environ.setdefault("TZ", "UTC")
    os.environ[TABLES_ENV] = TABLES
    # dbutils.secrets reads clickstream/hmac_key from here; unset, it is the producer's demo key.
    os.environ.setdefault(privacy.HMAC_KEY_ENV, privacy.DEFAULT_HMAC_KEY)

    builder = (
        SparkSession.builder.appName(app_name)
        .master(f"local[{cores}]")
        .config("spark.driver.memory", driver_memory or os.environ.get("LAKEHOUSE_DRIVER_MEMORY", "4g"))
        .config("spark.sql.session.timeZone", "UTC")
        # A larger thread stack: Spark's regex-based message handling recurses over long plan strings.
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC -Xss16m")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Streaming state off the JVM heap, so dedup state is bounded by the watermark, not the heap.
        .config(
            "spark.sql.streaming.stateStore.providerClass",
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        )
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.warehouse.dir", str(Path(os.environ.get("LAKEHOUSE_WAREHOUSE", "spark-warehouse")).resolve()))
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "ERROR"))
    register_sources(spark)
    return spark


def register_sources(spark) -> None:
    """Register the `cloudFiles` and `delta` Python data sources on ``spark``."""
    from lakehouse_local.sources.cloudfiles import CloudFilesDataSource
    from lakehouse_local.sources.delta import DeltaDataSource

    spark.dataSource.register(CloudFilesDataSource)
    spark.dataSource.register(DeltaDataSource)
