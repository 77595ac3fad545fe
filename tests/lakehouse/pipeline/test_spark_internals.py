"""The Spark behaviour :mod:`lakehouse.pipeline.spark_internals` relies on, pinned: a Spark upgrade that
changes it fails here."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime

from lakehouse.pipeline.spark_internals import batch_watermark


def test_the_offset_log_holds_the_watermark_each_micro_batch_ran_with(spark, tmp_path):
    landing, checkpoint = tmp_path / "landing", str(tmp_path / "checkpoint")
    landing.mkdir()
    for hour in (10, 11, 12):  # one file per micro-batch, each an hour of event time later
        path = landing / f"{hour}.json"
        path.write_text(json.dumps({"id": hour, "t": f"2026-11-20T{hour}:00:00Z"}) + "\n")
        os.utime(path, (1_700_000_000 + hour, 1_700_000_000 + hour))  # read in this order
    seen: dict[int, datetime | None] = {}

    def record(batch, batch_id: int) -> None:
        batch.count()  # a stateful batch must be run in full, or its state stores never commit
        seen[batch_id] = batch_watermark(batch.sparkSession, checkpoint, batch_id)

    query = (
        spark.readStream.schema("id INT, t TIMESTAMP").option("maxFilesPerTrigger", 1).json(str(landing))
        .withWatermark("t", "10 minutes")
        .dropDuplicatesWithinWatermark(["id"])
        .writeStream.foreachBatch(record)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()

    # Batch N runs with the watermark of what batches before it saw: newest event_time - delay.
    assert seen[0] is None
    assert seen[1] == datetime(2026, 11, 20, 9, 50)
    assert seen[2] == datetime(2026, 11, 20, 10, 50)
    progress = {p["batchId"]: p["eventTime"].get("watermark") for p in query.recentProgress}
    assert progress[2] == "2026-11-20T10:50:00.000Z"


def test_no_offset_log_means_no_watermark(spark, tmp_path):
    assert batch_watermark(spark, str(tmp_path / "nothing"), 0) is None


def test_a_stateful_micro_batch_may_be_read_by_several_jobs(spark, tmp_path):
    """On Databricks nothing is cached (serverless refuses it): Silver's writes each re-run the micro-batch,
    stateful dedup included. Spark allows that, and every run sees the same rows."""
    landing, checkpoint = tmp_path / "landing", str(tmp_path / "checkpoint")
    landing.mkdir()
    for number in range(2):
        path = landing / f"{number}.json"
        path.write_text("".join(json.dumps({"id": i % 3, "t": f"2026-11-20T10:0{number}:00Z"}) + "\n" for i in range(6)))
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))
    counts: dict[int, list[int]] = {}

    def three_jobs(batch, batch_id: int) -> None:
        counts[batch_id] = [batch.count(), batch.filter("id = 0").count(), batch.count()]

    query = (
        spark.readStream.schema("id INT, t TIMESTAMP").option("maxFilesPerTrigger", 1).json(str(landing))
        .withWatermark("t", "10 minutes")
        .dropDuplicatesWithinWatermark(["id"])
        .writeStream.foreachBatch(three_jobs)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()

    assert counts[0] == [3, 1, 3]  # three ids, each kept once
    assert counts[1] == [0, 0, 0]  # the same ids again, within the watermark: all duplicates


def test_a_new_checkpoint_gets_a_new_query_id_and_so_a_new_stream_id(spark, tmp_path):
    from lakehouse.pipeline.spark_internals import query_id
    from lakehouse.tables import stream_id

    checkpoint = str(tmp_path / "checkpoint")
    ids = []
    for _ in range(2):
        query = spark.readStream.format("rate").load().writeStream.format("noop").option(
            "checkpointLocation", checkpoint
        ).trigger(availableNow=True).start()
        query.awaitTermination()
        ids.append((query.id, query_id(spark, checkpoint)))
        shutil.rmtree(checkpoint)
    (first, read_first), (second, read_second) = ids
    assert (read_first, read_second) == (str(first), str(second)) and first != second
    assert stream_id(checkpoint, read_first) != stream_id(checkpoint, read_second)
