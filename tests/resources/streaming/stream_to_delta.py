"""Run the restart tests' two streaming queries into Delta tables, in a process of their own.

``<work>/src`` (a Delta table) → ``<work>/from_delta`` and ``<work>/landing`` (JSON-lines files read
as text by ``cloudFiles``) → ``<work>/from_files``. Both use ``trigger(availableNow=True)`` with one
file per micro-batch, and checkpoints under ``<work>``, so a second run resumes where a killed one
stopped. The tests kill this process while a sink holds inside its commit
(``LAKEHOUSE_DELTA_SINK_HOLD``), then run it again.

Usage: python stream_to_delta.py <work folder>
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT))

from pyspark.sql import functions as F  # noqa: E402

from lakehouse_local.session import get_or_create_session  # noqa: E402


def main(work: Path) -> None:
    spark = get_or_create_session("streaming-restart-test", shuffle_partitions=1)
    from_delta = (
        spark.readStream.format("delta")
        .option("maxFilesPerTrigger", 1)
        .load(str(work / "src"))
        .writeStream.format("delta")
        .option("checkpointLocation", str(work / "checkpoints" / "from_delta"))
        .trigger(availableNow=True)
        .start(str(work / "from_delta"))
    )
    from_files = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "text")
        .option("cloudFiles.schemaLocation", str(work / "checkpoints" / "from_files_schema"))
        .option("cloudFiles.maxFilesPerTrigger", 1)
        .load(str(work / "landing"))
        .select("value", F.col("_metadata.file_name").alias("file_name"))
        .writeStream.format("delta")
        .option("checkpointLocation", str(work / "checkpoints" / "from_files"))
        .trigger(availableNow=True)
        .start(str(work / "from_files"))
    )
    for query in (from_delta, from_files):
        query.awaitTermination()
        if query.exception():
            raise query.exception()
    spark.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
