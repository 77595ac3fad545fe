"""Silver: parse Bronze lines against the contract, quarantine what is invalid, deduplicate the rest.

Pure ``DataFrame -> DataFrame`` functions; the streaming wiring (watermark, MERGE) is in
:mod:`lakehouse.pipeline`.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from lakehouse import catalog, rules
from lakehouse.transforms import validation

VIOLATION = validation.VIOLATION
ARRIVAL_ORDER = ["ingest_time", "_ingested_at", "_source_file", "_line_number", "_record_id"]
# The columns of a valid line that :func:`classify_duplicates` decides its outcome from.
DEDUP_COLUMNS = ["event_id", "payload_hash", *ARRIVAL_ORDER]


def parse(bronze: DataFrame, *, hmac_key: bytes) -> DataFrame:
    """Bronze rows plus ``_violation`` (null when the line is a valid event), the typed contract fields,
    ``event_date``, ``_rescued_data`` and ``payload_hash``, each line read once
    (:class:`~lakehouse.transforms.validation.ContractReader`)."""
    arrow_out = pa.schema([*to_arrow_schema(bronze.schema, timezone="UTC"), *validation.output_fields()])
    return bronze.mapInArrow(validation.ContractReader(hmac_key), from_arrow_schema(arrow_out))


def verdicts(bronze: DataFrame, *, hmac_key: bytes) -> DataFrame:
    """Each Bronze line's ``_violation`` (null when valid) with its ``event_id``, ``event_time`` and ``ingest_time``:
    what the dedup branch needs, the verdict :func:`parse` gives, and only the line sent to Python
    (:class:`~lakehouse.transforms.validation.ContractVerdicts`)."""
    schema = from_arrow_schema(pa.schema(validation.VERDICT_FIELDS))
    return bronze.select("value").mapInArrow(validation.ContractVerdicts(hmac_key), schema)


def apply_lateness_rules(parsed: DataFrame, *, max_lateness_hours: float, future_tolerance_minutes: float) -> DataFrame:
    """Quarantine contract-valid events whose lateness, measured within the event, is out of bounds."""
    rule = lateness_violation(max_lateness_hours=max_lateness_hours, future_tolerance_minutes=future_tolerance_minutes)
    return parsed.withColumn(VIOLATION, F.coalesce(F.col(VIOLATION), rule))


def lateness_violation(*, max_lateness_hours: float, future_tolerance_minutes: float) -> F.Column:
    """The lateness rules' ``_violation`` for an event (null when its lateness is within bounds)."""
    lateness_s = F.col("ingest_time").cast("double") - F.col("event_time").cast("double")
    future = lateness_s < F.lit(-60.0 * future_tolerance_minutes)
    too_late = lateness_s > F.lit(3600.0 * max_lateness_hours)
    return (
        F.when(
            future,
            _violation(
                rules.FUTURE_EVENT_TIME,
                "event_time",
                F.format_string(
                    f"event_time is %.0f s after ingest_time (tolerance {future_tolerance_minutes:g} minutes)", -lateness_s
                ),
            ),
        )
        .when(
            too_late,
            _violation(
                rules.TOO_LATE,
                "event_time",
                F.format_string(
                    f"event arrived %.1f hours after event_time (limit {max_lateness_hours:g} hours)", lateness_s / 3600.0
                ),
            ),
        )
    )


def _violation(reason: str, field: str, message) -> F.Column:
    return F.struct(F.lit(reason).alias("reason"), F.lit(field).alias("field"), message.alias("message"))


def valid_events(parsed: DataFrame) -> DataFrame:
    return parsed.filter(f"{VIOLATION} IS NULL")


def invalid_lines(parsed: DataFrame) -> DataFrame:
    return parsed.filter(f"{VIOLATION} IS NOT NULL")


def quarantine_rows(rows: DataFrame, *, quarantined_at: F.Column | None = None) -> DataFrame:
    """Shape rows carrying ``_violation`` as ``silver.quarantine`` rows (the raw line is kept)."""
    shaped = rows.selectExpr(
        "_record_id",
        *[f"{VIOLATION}.{part} AS {part}" for part in ("reason", "field", "message")],
        "value AS raw_line",
        "event_id",
        "event_time",
        "_source_file",
        "_ingested_at",
        f"{validation.READ_AT} AS quarantined_at",
    )
    return shaped if quarantined_at is None else shaped.withColumn("quarantined_at", quarantined_at)


# Outcomes of deduplication for each valid row of a batch.
INSERT = "insert"
ALREADY_IN_SILVER = "already_in_silver"  # the row itself was committed by an earlier attempt of this batch
DUPLICATE = "duplicate"
CONFLICTING = rules.CONFLICTING_DUPLICATE
OUTCOMES = (INSERT, ALREADY_IN_SILVER, DUPLICATE, CONFLICTING)
# Where a row of classify_duplicates' single stream comes from.
_BATCH, _SILVER, _KEPT = "batch", "silver", "kept"


def classify_duplicates(valid: DataFrame, kept_event_ids: DataFrame, silver: DataFrame) -> DataFrame:
    """Decide, for every valid row of a batch, whether it is inserted, a duplicate or a conflicting duplicate.

    * ``silver``: the Silver rows (``event_id``, ``payload_hash``, ``_record_id``) for event_ids in the batch.
    * ``kept_event_ids``: event_ids that Spark's ``dropDuplicatesWithinWatermark`` emitted this batch.
      A new event_id it did not emit was dropped as older than the watermark: it is inserted with
      ``is_late = true``.

    First arrival wins: Silver's row if there is one, else the batch's earliest arrival. A later arrival
    with the same payload (ignoring ingest_time) is a duplicate; with another payload it is a
    conflicting duplicate. A row already in Silver under its own ``_record_id`` (a replayed batch) is
    recognised as itself, so replays classify every row exactly as the first attempt did.
    """
    # The batch's valid rows, Silver's rows for their keys and the ids the dedup kept, in one stream: a single
    # shuffle on event_id brings each id's rows together, and aggregates over its window say who came first
    # (a struct orders field by field, nulls first), what Silver holds and whether the dedup kept it. Joins would
    # shuffle or broadcast each side on its own.
    rows = valid.selectExpr("*", f"'{_BATCH}' AS _side")
    in_silver = silver.selectExpr("event_id", "payload_hash AS _silver_hash", "_record_id AS _silver_record",
                                  f"'{_SILVER}' AS _side")
    kept = kept_event_ids.selectExpr("event_id", f"'{_KEPT}' AS _side")
    per_id = "OVER (PARTITION BY event_id)"
    gathered = (
        rows.unionByName(in_silver, allowMissingColumns=True)
        .unionByName(kept, allowMissingColumns=True)
        .selectExpr(
            *[f"`{name}`" for name in valid.columns],
            f"min(IF(_side = '{_BATCH}', struct({', '.join(ARRIVAL_ORDER)}, payload_hash), NULL)) {per_id} AS _first",
            f"max(IF(_side = '{_SILVER}', struct(_silver_record, _silver_hash), NULL)) {per_id} AS _silver",
            f"bool_or(_side = '{_KEPT}') {per_id} AS _kept",
            "_side",
        )
        .filter(f"_side = '{_BATCH}'")
        .selectExpr(
            *[f"`{name}`" for name in valid.columns],
            "_first.payload_hash AS _first_hash", "_first._record_id AS _first_record",
            "_silver._silver_hash AS _silver_hash", "_silver._silver_record AS _silver_record", "_kept",
        )
    )
    outcome = f"""
        CASE
          WHEN _record_id = coalesce(_silver_record, _first_record)
            THEN IF(_silver_record IS NULL, '{INSERT}', '{ALREADY_IN_SILVER}')
          WHEN payload_hash = coalesce(_silver_hash, _first_hash) THEN '{DUPLICATE}'
          ELSE '{CONFLICTING}'
        END"""
    return gathered.withColumns({
        "_outcome": F.expr(outcome),
        "is_late": F.expr("NOT _kept"),
        "_first_record_source": F.expr("coalesce(_silver_record, _first_record)"),
    }).drop("_first_hash", "_silver_hash", "_kept")


def conflicting_quarantine_rows(classified: DataFrame) -> DataFrame:
    message = "format_string('event_id %s was first seen with a different payload (Bronze record %s)', event_id, _first_record_source)"
    violation = f"named_struct('reason', '{CONFLICTING}', 'field', 'event_id', 'message', {message})"
    rows = classified.filter(f"_outcome = '{CONFLICTING}'").withColumn(VIOLATION, F.expr(violation))
    return quarantine_rows(rows)


def silver_rows(classified: DataFrame) -> DataFrame:
    """The rows to insert into ``silver.events``."""
    inserts = classified.filter(f"_outcome = '{INSERT}'")
    return inserts.selectExpr(*[f"`{name}`" for name in catalog.SILVER_EVENTS.column_names])
