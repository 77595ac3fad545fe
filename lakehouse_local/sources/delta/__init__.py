"""The ``delta`` Spark Python data source: Delta tables on a local folder, read and written by delta-rs.

Registered by the local session under the name ``delta``, so the notebooks' ``.format("delta")``
reads and writes work unchanged without the Delta Lake jars:

- ``spark.read.format("delta").load(path)``: the current snapshot (or ``versionAsOf`` /
  ``timestampAsOf``), read file by file with pyarrow.
- ``df.write.format("delta").mode("append" | "overwrite").save(path)``: one Delta commit.
- ``spark.readStream.format("delta").load(path)``: offsets are table versions. The first batch reads
  the snapshot current when the stream starts, later batches read the files added (``dataChange``)
  by each new commit. Rewrites that do not change data (compaction) are skipped; commits that
  update or delete rows stop the stream unless ``skipChangeCommits`` is set, as in Delta.
- ``df.writeStream.format("delta").option("checkpointLocation", ...).start(path)``: append only,
  one atomic Delta commit per micro-batch, idempotent per (query, batch id).

Not supported, with an error: ``partitionBy`` (Spark refuses it for Python data sources; create the
table partitioned with :func:`lakehouse_local.delta_rs.create_table` and writes follow the table's
partitioning), the ``complete`` and ``update`` output modes, and tables that use deletion vectors
or column mapping.

Modules: :mod:`~lakehouse_local.sources.delta.source` (the data source class and its options),
:mod:`~lakehouse_local.sources.delta.log` (reading the Delta log), :mod:`~lakehouse_local.sources.delta.read`
(data files into Arrow, batch reads), :mod:`~lakehouse_local.sources.delta.stream` (offsets, streaming
reads), :mod:`~lakehouse_local.sources.delta.write` (batch and streaming writes) and, for the crash
tests only, :mod:`~lakehouse_local.sources.delta.fault_injection`.
"""

from lakehouse_local.sources.delta.errors import DeltaChangeCommitError, DeltaSourceError
from lakehouse_local.sources.delta.fault_injection import HOLD_ENV, HOLD_MARKERS_ENV
from lakehouse_local.sources.delta.log import DataFile, snapshot_files, table_spark_schema
from lakehouse_local.sources.delta.read import DeltaBatchReader, group_files, read_files
from lakehouse_local.sources.delta.source import DeltaDataSource
from lakehouse_local.sources.delta.stream import DeltaStreamReader
from lakehouse_local.sources.delta.write import DeltaBatchWriter, DeltaStreamWriter

__all__ = [
    "HOLD_ENV",
    "HOLD_MARKERS_ENV",
    "DataFile",
    "DeltaBatchReader",
    "DeltaBatchWriter",
    "DeltaChangeCommitError",
    "DeltaDataSource",
    "DeltaSourceError",
    "DeltaStreamReader",
    "DeltaStreamWriter",
    "group_files",
    "read_files",
    "snapshot_files",
    "table_spark_schema",
]
