"""Run the discovery restart test's ``cloudFiles`` stream, in a process of its own.

``<work>/landing`` (JSON-lines files read as text) → ``foreachBatch`` writing each micro-batch's lines
to ``<work>/batches/<batch id>.json`` (written whole; a replayed batch rewrites its own file). Listing
is incremental (``cloudFiles.useIncrementalListing=true``) with a backfill every 2 seconds, two files
per micro-batch.

``follow`` runs on a 0.2-second processing-time trigger; the sink of batch ``HOLD_BATCH`` writes its
file, then ``<work>/held`` (the batch's files are in the discovery log and its offset in the
checkpoint, its commit is not) and waits there until the test kills the process. ``drain`` restarts
from the checkpoint with ``availableNow`` and stops when everything discovered is processed; the test
runs it in its own session through :func:`run`.

Usage: python cloudfiles_follow.py <work folder> follow|drain
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT))

from lakehouse_local.session import get_or_create_session  # noqa: E402

HOLD_BATCH = 2


def run(spark, work: Path, mode: str) -> None:
    """Run the stream in ``spark`` until it ends (``drain``) or the process is killed (``follow``)."""
    batches = work / "batches"
    batches.mkdir(exist_ok=True)

    def sink(df, batch_id: int) -> None:
        lines = sorted(row.value for row in df.collect())
        temporary = batches / f".{batch_id}.tmp"
        temporary.write_text(json.dumps(lines))
        os.replace(temporary, batches / f"{batch_id}.json")
        if mode == "follow" and batch_id == HOLD_BATCH:
            (work / "held").write_text(json.dumps(lines))
            time.sleep(3600)  # killed here

    writer = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "text")
        .option("cloudFiles.schemaLocation", str(work / "checkpoint" / "schema"))
        .option("cloudFiles.useIncrementalListing", "true")
        .option("cloudFiles.backfillInterval", "2 seconds")
        .option("cloudFiles.maxFilesPerTrigger", 2)
        .load(str(work / "landing"))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(work / "checkpoint" / "state"))
    )
    query = (
        writer.trigger(availableNow=True) if mode == "drain" else writer.trigger(processingTime="0.2 seconds")
    ).start()
    query.awaitTermination()
    if query.exception():
        raise query.exception()


def main(work: Path, mode: str) -> None:
    spark = get_or_create_session("cloudfiles-restart-test", shuffle_partitions=1)
    run(spark, work, mode)
    spark.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
