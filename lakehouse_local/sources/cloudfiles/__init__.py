"""The ``cloudFiles`` source: Databricks Auto Loader semantics as a Spark Python data source.

``spark.readStream.format("cloudFiles")`` (and ``spark.read``) over ``s3://`` prefixes and local
folders, so the Bronze notebook runs unchanged on a laptop. Storage access lives in
:mod:`lakehouse_local.storage`. The modules, in the order a read goes through them:

- :mod:`~lakehouse_local.sources.cloudfiles.source`: the data source class Spark registers.
- :mod:`~lakehouse_local.sources.cloudfiles.options`: accepted options and their validation.
- :mod:`~lakehouse_local.sources.cloudfiles.layout`: the output schema of each format and how its
  special columns (``_metadata``, rescued data, corrupt records) are filled.
- :mod:`~lakehouse_local.sources.cloudfiles.listing`: listing the source path, in full or after the
  last key seen (incremental listing, backfills).
- :mod:`~lakehouse_local.sources.cloudfiles.discovery`: exactly-once file discovery (the discovery log)
  and what it remembers (compaction, ``maxFileAge``, files the landing no longer has).
- :mod:`~lakehouse_local.sources.cloudfiles.readers`: the stream and batch readers (offsets, read limits).
- :mod:`~lakehouse_local.sources.cloudfiles.files`: partition planning and reading files into Arrow.
- :mod:`~lakehouse_local.sources.cloudfiles.json_conversion` and
  :mod:`~lakehouse_local.sources.cloudfiles.json_values`: JSON lines to Spark types, as Spark converts them.
"""

from lakehouse_local.sources.cloudfiles.discovery import DiscoveryLog
from lakehouse_local.sources.cloudfiles.layout import METADATA_TYPE, TEXT_SCHEMA, OutputLayout
from lakehouse_local.sources.cloudfiles.options import CloudFilesOptions
from lakehouse_local.sources.cloudfiles.readers import CloudFilesBatchReader, CloudFilesStreamReader
from lakehouse_local.sources.cloudfiles.source import SOURCE_NAME, CloudFilesDataSource
from lakehouse_local.sources.options import parse_byte_size

__all__ = [
    "METADATA_TYPE",
    "SOURCE_NAME",
    "TEXT_SCHEMA",
    "CloudFilesBatchReader",
    "CloudFilesDataSource",
    "CloudFilesOptions",
    "CloudFilesStreamReader",
    "DiscoveryLog",
    "OutputLayout",
    "parse_byte_size",
]
