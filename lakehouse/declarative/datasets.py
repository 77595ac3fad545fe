"""Every dataset of the declarative edition: its name, columns and the comments Databricks SQL users see.

A pipeline publishes to one catalog and schema (the bundle's), so dataset names carry their layer as a
prefix; the Gold materialized views keep the names and columns of the Gold contract (:mod:`lakehouse.catalog`),
without the notebooks' own ``_batch_id`` column. Tables both editions have are declared once, in
:mod:`lakehouse.catalog`; the ones only this edition has are declared here:

- ``bronze_landed``: what the notebooks split into ``bronze.events`` and ``bronze.files``. A flow writes one
  table, and the landing area is read once, so every landed line and one record per landed file share it
  (``_line_number`` is null on the file records); ``bronze_files`` is a materialized view of the records.
- ``silver_arrivals``: every valid line, duplicates included; ``silver_events`` deduplicates it.
- ``silver_duplicates``: the arrivals ``silver_events`` does not hold, each with why: what the notebooks
  count per micro-batch (duplicates, conflicting duplicates), as a table.
"""

from __future__ import annotations

from lakehouse import catalog, rules
from lakehouse.catalog import Column, TableSpec

# Outcomes of deduplication for an arrival Silver does not hold (silver_duplicates.kind).
DUPLICATE = "duplicate"
CONFLICTING_DUPLICATE = rules.CONFLICTING_DUPLICATE
LATE_DROPPED = "late_dropped"
DUPLICATE_KINDS = (DUPLICATE, CONFLICTING_DUPLICATE, LATE_DROPPED)

_FILE_RECORD_COLUMNS = (
    Column("_file_lines", "BIGINT", "File records only: lines read from the landed file (0 when it could not be read)."),
    Column("_file_error", "STRING", "File records only: why the landed file could not be read; null when it was read."),
)
_EVENTS = {c.name: c for c in catalog.BRONZE_EVENTS.columns}

BRONZE_LANDED = TableSpec(
    "bronze.landed",
    "Every line landed in S3, exactly as it arrived, one row per line; and one record per landed file "
    "(_line_number null) saying how many lines it held or why it could not be read.",
    (
        *(_EVENTS[name] for name in ("value", "_source_file", "_file_size", "_file_modification_time", "_line_number")),
        *_FILE_RECORD_COLUMNS,
        *(_EVENTS[name] for name in ("_ingested_at", "_record_id")),
    ),
)

_LATE_AND_PROCESSED = ("is_late", "_processed_at")
SILVER_ARRIVALS = TableSpec(
    "silver.arrivals",
    "Every valid event line as it arrived, duplicates included (silver_quarantine holds the invalid ones); "
    "silver_events keeps the first arrival of each event_id.",
    (
        *(c for c in catalog.SILVER_EVENTS.columns if c.name not in _LATE_AND_PROCESSED),
        Column("_line_number", "BIGINT", "The line's number within the landed object."),
    ),
)

SILVER_DUPLICATES = TableSpec(
    "silver.duplicates",
    "Valid arrivals that silver_events does not hold, each with why: a duplicate of the event Silver kept, a "
    "conflicting duplicate (same event_id, another payload), or a first arrival dropped as late by the watermark.",
    (
        Column("_record_id", "STRING", "Bronze row of the arrival."),
        Column("event_id", "STRING", "The arrival's event_id."),
        Column("kind", "STRING", f"{', '.join(DUPLICATE_KINDS)}."),
        Column("kept_record_id", "STRING", "Bronze row of the arrival silver_events holds for this event_id; null if none."),
        Column("event_time", "TIMESTAMP", "The arrival's event_time."),
        Column("ingest_time", "TIMESTAMP", "The arrival's ingest_time."),
        Column("payload_hash", "STRING", "SHA-256 of the arrival's contract fields except ingest_time."),
        Column("_source_file", "STRING", "Landed object the arrival came from."),
        Column("_line_number", "BIGINT", "The arrival's line number within the landed object."),
    ),
)


def dataset_name(spec: TableSpec) -> str:
    """The dataset's name in the pipeline's schema: ``gold.daily_kpis`` → ``daily_kpis``, else ``<layer>_<table>``."""
    layer, table = spec.name.split(".")
    return table if layer == "gold" else f"{layer}_{table}"


def gold_columns(spec: TableSpec) -> tuple[Column, ...]:
    """A Gold table's contract columns (the notebooks' ``_batch_id`` and partition helpers are theirs, not the
    contract's)."""
    return tuple(c for c in spec.columns if c.name in spec.public_columns)


GOLD = {spec.name: TableSpec(spec.name, spec.comment, gold_columns(spec), keys=spec.keys) for spec in catalog.GOLD_TABLES}
# The analytical model's tables, with their public columns (the notebooks' bookkeeping columns are theirs).
MODEL = {spec.name: TableSpec(spec.name, spec.comment, gold_columns(spec), keys=spec.keys) for spec in catalog.MODEL_TABLES}

# What each dataset of the pipeline is, in dependency order.
DATASETS = (
    BRONZE_LANDED,
    catalog.BRONZE_FILES,
    SILVER_ARRIVALS,
    catalog.QUARANTINE,
    catalog.SILVER_EVENTS,
    SILVER_DUPLICATES,
    *GOLD.values(),
    *MODEL.values(),
)
NAMES = {spec.name: dataset_name(spec) for spec in DATASETS}
