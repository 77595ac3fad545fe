"""Bronze: every landed line, verbatim, with where and when it came from."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def bronze_rows(landed: DataFrame) -> DataFrame:
    """Map Auto Loader's text rows (``value`` + ``_metadata``) to the Bronze table's columns."""
    return landed.select(
        F.col("value"),
        F.col("_metadata.file_path").alias("_source_file"),
        F.col("_metadata.file_size").alias("_file_size"),
        F.col("_metadata.file_modification_time").alias("_file_modification_time"),
        F.current_timestamp().alias("_ingested_at"),
        # A stable identity for the line from here on; Silver and quarantine refer to it.
        F.expr("uuid()").alias("_record_id"),
    )
