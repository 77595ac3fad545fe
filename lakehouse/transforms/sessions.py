"""Sessions: one row per ``session_id``, kept exact as its events arrive in any order.

A session row is what its events add up to: counts add, the start and end are a minimum and a maximum,
entry and exit are the first and last event by (``event_time``, ``event_id``). So a batch of new events
(late ones included) is folded into the stored row without reading the session's earlier events, and the
result is the row all its events give at once. Each row records the batch that last folded into it
(``_batch_id``): a replayed batch finds its own id and adds nothing twice.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse import contract

# Each action's count, in the contract's order of actions.
ACTION_COUNTS = dict(zip(contract.actions(), ("views", "clicks", "add_to_carts", "purchases"), strict=True))
# The entry event's fields a session keeps, after the two that order events.
ENTRY_FIELDS = ("entry_page", "user_id", "device_type", "country", "source")


def _entry(time: str, event_id: str, *fields: str) -> Column:
    return F.struct(F.col(time).alias("time"), F.col(event_id).alias("id"), *[F.col(f) for f in fields])


def session_partials(silver: DataFrame) -> DataFrame:
    """What a batch of events adds to each session it touches (one row per ``session_id``)."""
    events = silver.select("*", F.col("page").alias("entry_page"))
    return events.groupBy("session_id").agg(
        F.min(_entry("event_time", "event_id", *ENTRY_FIELDS)).alias("entry"),
        F.max(_entry("event_time", "event_id", "page")).alias("exit"),
        F.count(F.lit(1)).alias("events"),
        *[F.count_if(F.col("action") == action).alias(column) for action, column in ACTION_COUNTS.items()],
    )


def updated_sessions(partials: DataFrame, existing: DataFrame | None, batch_id: int) -> DataFrame:
    """The gold.sessions rows after folding ``partials`` (:func:`session_partials`) into ``existing``.

    ``existing``: the table's rows for those sessions (None builds the table from scratch). A stored row that
    already carries ``batch_id`` has this batch in it (a replay): it is left out, so nothing is added twice.
    """
    columns = ("events", *ACTION_COUNTS.values())
    if existing is None:
        folded = partials.select("session_id", "entry", "exit", *[F.col(c).cast("bigint").alias(c) for c in columns])
        return _session_rows(folded, batch_id)
    stored = existing.select(
        "session_id",
        _entry("session_start", "_entry_event_id", *ENTRY_FIELDS).alias("old_entry"),
        F.struct(F.col("session_end").alias("time"), F.col("_exit_event_id").alias("id"),
                 F.col("exit_page").alias("page")).alias("old_exit"),
        *[F.col(c).alias(f"old_{c}") for c in columns],
        F.col("_batch_id").alias("old_batch"),
    )
    joined = partials.join(stored, "session_id", "left").filter(
        F.col("old_batch").isNull() | (F.col("old_batch") != F.lit(batch_id))
    )
    new = F.col("old_entry").isNull()
    entry = F.when(new, F.col("entry")).otherwise(F.least("entry", "old_entry"))
    exit_ = F.when(new, F.col("exit")).otherwise(F.greatest("exit", "old_exit"))
    counts = {c: (F.col(c) + F.coalesce(F.col(f"old_{c}"), F.lit(0))).cast("bigint") for c in columns}
    folded = joined.select("session_id", entry.alias("entry"), exit_.alias("exit"), *[v.alias(c) for c, v in counts.items()])
    return _session_rows(folded, batch_id)


def _session_rows(folded: DataFrame, batch_id: int) -> DataFrame:
    """gold.sessions rows from each session's entry and exit events and its counts."""
    start, end = F.col("entry.time"), F.col("exit.time")
    return folded.select(
        "session_id",
        F.col("entry.user_id").alias("user_id"),
        start.alias("session_start"),
        end.alias("session_end"),
        F.to_date(start).alias("session_date"),
        ((F.unix_micros(end) - F.unix_micros(start)) / 1_000_000).alias("duration_s"),
        "events",
        *ACTION_COUNTS.values(),
        F.col("entry.entry_page").alias("entry_page"),
        F.col("exit.page").alias("exit_page"),
        (F.col("purchases") > 0).alias("converted"),
        *[F.col(f"entry.{c}").alias(c) for c in ("device_type", "country", "source")],
        F.col("entry.id").alias("_entry_event_id"),
        F.col("exit.id").alias("_exit_event_id"),
        F.to_date(end).alias("_end_date"),
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
    )
