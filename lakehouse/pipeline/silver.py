"""Silver micro-batch: quarantine invalid lines, deduplicate valid events against Silver, append the new ones.

The stream itself (the notebook's cells) parses Bronze lines against the contract and runs
``withWatermark`` + ``dropDuplicatesWithinWatermark(["event_id"])``, which bounds the dedup state.
:func:`with_dedup_verdicts` unions every parsed line with the event_ids that dedup kept, so each
micro-batch sees both the full input and Spark's verdict: events the watermark dropped are recovered,
flagged ``is_late``. Silver itself is the long-term dedup memory: a batch looks up its own
``event_id``s in Silver, so duplicates hours apart are still caught, and appends (once per batch id)
only the rows Silver does not hold yet. This stream is the only writer of ``silver.events``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from lakehouse.config import PipelineConfig
from lakehouse.pipeline.metrics import MicroBatch, ingest_times
from lakehouse.tables import Lakehouse
from lakehouse.transforms import silver as silver_t

BRANCH = "_branch"
ALL, KEPT = "all", "kept"


def with_dedup_verdicts(parsed: DataFrame, kept: DataFrame) -> DataFrame:
    """Every parsed line (branch ``all``) and the event_ids the watermark-bounded dedup kept (branch
    ``kept``), in one stream."""
    everything = parsed.withColumn(BRANCH, F.lit(ALL))
    verdicts = kept.select("event_id", F.lit(KEPT).alias(BRANCH))
    return everything.unionByName(verdicts, allowMissingColumns=True)


@dataclass(frozen=True)
class SilverBatch:
    """The ``foreachBatch`` function of the Silver stream."""

    tables: Lakehouse
    cfg: PipelineConfig

    def __call__(self, batch: DataFrame, batch_id: int) -> dict:
        run = MicroBatch.start(self.tables, "silver", batch, batch_id, watermark=True)
        return process(run, batch, lookup_days=lookup_days(self.cfg.max_lateness_hours))


def lookup_days(max_lateness_hours: float) -> int:
    """How many days around a batch's event dates Silver is searched for earlier arrivals.

    A resent event carries its original ``event_time``, so its first arrival sits on the same day; a
    conflicting duplicate may carry another one, and is recognised while the two lie within the lateness
    limit (plus a day) of each other. Anything older than the limit is quarantined as too late anyway.
    """
    return math.ceil(max_lateness_hours / 24) + 1


def process(run: MicroBatch, batch: DataFrame, *, lookup_days: int) -> dict:
    """One Silver micro-batch; returns its counts (as recorded in ``ops.pipeline_metrics``)."""
    batch = run.tables.reusable(batch)
    if run.tables.known_empty(batch):
        # A no-data batch: Spark ran it to advance the watermark and evict state. Its watermark is its record.
        counts = dict.fromkeys(("rows_in", "rows_written", "quarantined", "duplicates_removed", "late"), 0)
        run.record(**counts)
        return counts
    rows = batch.filter(f"{BRANCH} = '{ALL}'").drop(BRANCH)
    kept_ids = batch.filter(f"{BRANCH} = '{KEPT}'").select("event_id")
    valid = silver_t.valid_events(rows)
    existing = run.tables.read_matching(
        "silver.events", valid, "event_id", columns=LOOKUP_COLUMNS, within_days=lookup_days
    )
    # Every line's outcome (inserted, duplicate, conflicting, invalid), decided over the few columns that decide
    # it and kept by _record_id: the lines themselves stay where the batch holds them until they are written.
    outcomes = run.tables.reusable(
        silver_t.classify_duplicates(valid.select(*silver_t.DEDUP_COLUMNS), kept_ids, existing)
        .select(*OUTCOME_COLUMNS)
        .unionByName(silver_t.invalid_lines(rows).selectExpr("_record_id", f"'{INVALID}' AS _outcome"),
                     allowMissingColumns=True)
    )
    counts, summary = _summary(outcomes)
    if counts["rows_in"]:
        decided = rows.join(outcomes.filter(f"_outcome <> '{INVALID}'").drop("ingest_time"), "_record_id")
        quarantine = silver_t.quarantine_rows(silver_t.invalid_lines(rows)).unionByName(
            silver_t.conflicting_quarantine_rows(decided)
        )
        with run.tables.together() as writes:
            # The lookup found which of the batch's keys Silver already holds, so what is left is new and is
            # appended, not merged: a MERGE would join the batch with the whole table.
            writes.append(silver_t.silver_rows(decided), "silver.events", app_id=run.app_id("silver.events"),
                          batch_id=run.batch_id)
            writes.upsert(quarantine, "silver.quarantine", app_id=run.app_id("silver.quarantine"),
                          batch_id=run.batch_id, when_matched="ignore")
    run.record(ingest=summary if counts["rows_in"] else None, **counts)
    return counts


LOOKUP_COLUMNS = ["event_id", "payload_hash", "_record_id"]
# What the batch keeps of each line's outcome: its id, the outcome and what the writes and the summary need.
OUTCOME_COLUMNS = ["_record_id", "_outcome", "is_late", "_first_record_source", "ingest_time"]
INVALID = "invalid"


def _summary(outcomes: DataFrame) -> tuple[dict, Row]:
    """The batch's counts and ingest-time quantiles, in one aggregation over every line's outcome."""
    is_outcome = {name: f"_outcome = '{name}'" for name in (*silver_t.OUTCOMES, INVALID)}
    summary = outcomes.agg(
        F.expr("count(1) AS rows"),
        *[F.expr(f"count_if({test}) AS {name}") for name, test in is_outcome.items()],
        F.expr(f"count_if({is_outcome[silver_t.INSERT]} AND is_late) AS late"),
        *ingest_times("ingest_time", where=is_outcome[silver_t.INSERT]),
    ).first()
    counts = {
        "rows_in": summary["rows"],
        "rows_written": summary[silver_t.INSERT] + summary[silver_t.ALREADY_IN_SILVER],
        "quarantined": summary[INVALID] + summary[silver_t.CONFLICTING],
        "duplicates_removed": summary[silver_t.DUPLICATE],
        "late": summary["late"],
    }
    return counts, summary
