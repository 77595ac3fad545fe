"""Every table of the lakehouse: name, columns, types and the comments Databricks SQL users see.

`00_setup` creates these (``IF NOT EXISTS``) on both runtimes, and the writers select columns in
this order, so a table's shape is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lakehouse import contract, rules


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark SQL type
    comment: str


@dataclass(frozen=True)
class TableSpec:
    name: str  # "<layer>.<table>"
    comment: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = field(default=())
    # Partition columns: a lookup that names a range of them reads only those partitions.
    partitioned_by: tuple[str, ...] = field(default=())

    @property
    def layer(self) -> str:
        return self.name.split(".")[0]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def public_columns(self) -> list[str]:
        """The columns that carry meaning for queries (the pipeline's own start with ``_``)."""
        return [c.name for c in self.columns if not c.name.startswith("_")]

    def ddl_columns(self) -> str:
        return ", ".join(f"`{c.name}` {c.type} COMMENT '{_sql_str(c.comment)}'" for c in self.columns)

    def struct(self):
        """The Spark StructType of the table, comments as field metadata."""
        from pyspark.sql import types as T

        return T.StructType(
            [T.StructField(c.name, _spark_type(c.type), True, {"comment": c.comment}) for c in self.columns]
        )


def _sql_str(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _spark_type(ddl: str):
    from pyspark.sql import types as T

    return {
        "STRING": T.StringType(),
        "INT": T.IntegerType(),
        "BIGINT": T.LongType(),
        "DOUBLE": T.DoubleType(),
        "BOOLEAN": T.BooleanType(),
        "DATE": T.DateType(),
        "TIMESTAMP": T.TimestampType(),
    }[ddl]


def _contract_columns() -> tuple[Column, ...]:
    schema = contract.load_schema()
    return tuple(
        Column(name, contract.spark_type_name(prop).upper(), prop.get("description", name))
        for name, prop in schema["properties"].items()
    )


BRONZE_EVENTS = TableSpec(
    "bronze.events",
    "Every line landed in S3, exactly as it arrived, one row per line. Source of truth for replays.",
    (
        Column("value", "STRING", "The raw JSON line as it arrived (may be malformed or invalid)."),
        Column("_source_file", "STRING", "Full URI of the landed object the line came from."),
        Column("_file_size", "BIGINT", "Size in bytes of the landed object."),
        Column("_file_modification_time", "TIMESTAMP", "When the landed object was written to S3."),
        Column("_line_number", "BIGINT", "The line's number within the landed object (1 for the first)."),
        Column("_ingested_at", "TIMESTAMP", "When the Bronze stream read the line (UTC)."),
        Column("_record_id", "STRING", "Unique id of this Bronze row; identifies the line in Silver and quarantine."),
    ),
)

BRONZE_FILES = TableSpec(
    "bronze.files",
    "Every landed file Bronze has opened: read, with its line count, or quarantined, with why it could not be "
    "read. Landed files = files read + files quarantined; a quarantined file's lines are in none of the tables.",
    (
        Column("file", "STRING", "Full URI of the landed object."),
        Column("size", "BIGINT", "Size in bytes of the landed object."),
        Column("modification_time", "TIMESTAMP", "When the landed object was written to S3."),
        Column("lines", "BIGINT", "Lines read from it into bronze.events (0 when quarantined)."),
        Column("error", "STRING", "Why it could not be read (not a complete gzip stream, not UTF-8 text, gone "
               "since it was discovered); null when it was read."),
        Column("read_at", "TIMESTAMP", "When Bronze opened it."),
    ),
    keys=("file",),
)

SILVER_EVENTS = TableSpec(
    "silver.events",
    "Valid clickstream events, exactly one row per event_id (first arrival wins), late events included.",
    _contract_columns()
    + (
        Column("event_date", "DATE", "DATE(event_time) in UTC."),
        Column("is_late", "BOOLEAN", "True when the event arrived behind the stream's event_time watermark."),
        Column("_rescued_data", "STRING", 'Fields the contract does not name, as JSON {"_file_path": ..., "fields": {...}}, '
               "numbers as written, IP addresses replaced by their keyed hash; null if none."),
        Column("payload_hash", "STRING", "SHA-256 of the event's contract fields except ingest_time (conflict detection)."),
        Column("_record_id", "STRING", "Bronze row this event was taken from."),
        Column("_source_file", "STRING", "Landed object the event came from."),
        Column("_ingested_at", "TIMESTAMP", "When Bronze read the line."),
        Column("_processed_at", "TIMESTAMP", "When Silver's micro-batch read the event."),
    ),
    keys=("event_id",),
    partitioned_by=("event_date",),
)

QUARANTINE = TableSpec(
    "silver.quarantine",
    "Lines that could not become Silver events, with a typed reason; nothing is dropped without a row here or a count.",
    (
        Column("_record_id", "STRING", "Bronze row the line came from."),
        Column("reason", "STRING", f"Typed reason: {', '.join(rules.QUARANTINE_REASONS)}."),
        Column("field", "STRING", "The offending field ('$' for the whole line)."),
        Column("message", "STRING", "What is wrong, in words."),
        Column("raw_line", "STRING", "The line exactly as it arrived."),
        Column("event_id", "STRING", "event_id if one could be read, else null."),
        Column("event_time", "TIMESTAMP", "event_time if one could be read, else null."),
        Column("_source_file", "STRING", "Landed object the line came from."),
        Column("_ingested_at", "TIMESTAMP", "When Bronze read the line."),
        Column("quarantined_at", "TIMESTAMP", "When Silver's micro-batch read the line it quarantined."),
    ),
    keys=("_record_id",),
)

# Every Gold row records the Gold micro-batch that last added to it: a replayed batch finds its own id and
# adds nothing twice (a MERGE that adds cannot rely on Delta's transaction ids on every compute).
GOLD_BATCH = Column("_batch_id", "BIGINT", "The Gold micro-batch that last added to this row.")

DAILY_KPIS = TableSpec(
    "gold.daily_kpis",
    "Daily KPIs over deduplicated, valid events; day = DATE(event_time) in UTC.",
    (
        Column("event_date", "DATE", "Day of event_time (UTC)."),
        Column("events", "BIGINT", "Events that day."),
        Column("active_users", "BIGINT", "Distinct user_id that day (DAU)."),
        Column("sessions", "BIGINT", "Distinct session_id that day."),
        Column("views", "BIGINT", "Events with action = view."),
        Column("clicks", "BIGINT", "Events with action = click."),
        Column("add_to_carts", "BIGINT", "Events with action = add_to_cart."),
        Column("purchases", "BIGINT", "Events with action = purchase."),
        Column("converted_sessions", "BIGINT", "Distinct sessions with at least one purchase that day."),
        Column("conversion_rate", "DOUBLE", "converted_sessions / sessions (0.0 when no sessions)."),
        GOLD_BATCH,
    ),
    keys=("event_date",),
)

EVENTS_PER_MINUTE = TableSpec(
    "gold.events_per_minute",
    "Events per 1-minute tumbling window of event_time and action.",
    (
        Column("window_start", "TIMESTAMP", "Start of the 1-minute window (inclusive, UTC)."),
        Column("window_end", "TIMESTAMP", "End of the 1-minute window (exclusive, UTC)."),
        Column("action", "STRING", "view, click, add_to_cart or purchase."),
        Column("events", "BIGINT", "Events in the window with that action."),
        Column("event_date", "DATE", "Day of window_start (UTC), for pruning."),
        GOLD_BATCH,
    ),
    keys=("window_start", "action"),
)

FUNNEL_DAILY = TableSpec(
    "gold.funnel_daily",
    "Daily funnel: sessions reaching each step (a step with no sessions is reported as 0).",
    (
        Column("event_date", "DATE", "Day of event_time (UTC)."),
        Column("step", "STRING", "Funnel step: view, click, add_to_cart, purchase."),
        Column("step_order", "INT", "view=1, click=2, add_to_cart=3, purchase=4."),
        Column("sessions", "BIGINT", "Sessions with at least one event of that action that day."),
        GOLD_BATCH,
    ),
    keys=("event_date", "step"),
)

TRAFFIC_DAILY = TableSpec(
    "gold.traffic_daily",
    "Daily traffic split by device, country and source; a missing dimension is 'unknown'.",
    (
        Column("event_date", "DATE", "Day of event_time (UTC)."),
        Column("device_type", "STRING", "mobile, desktop, tablet, other or unknown."),
        Column("country", "STRING", "ISO-3166-1 alpha-2 code or unknown."),
        Column("source", "STRING", "Traffic source or unknown."),
        Column("events", "BIGINT", "Events."),
        Column("active_users", "BIGINT", "Distinct user_id."),
        GOLD_BATCH,
    ),
    keys=("event_date", "device_type", "country", "source"),
)

TOP_PAGES_DAILY = TableSpec(
    "gold.top_pages_daily",
    "Page views per page and day.",
    (
        Column("event_date", "DATE", "Day of event_time (UTC)."),
        Column("page", "STRING", "URL path."),
        Column("views", "BIGINT", "Events with action = view on the page."),
        Column("unique_users", "BIGINT", "Distinct users who viewed the page."),
        GOLD_BATCH,
    ),
    keys=("event_date", "page"),
)

PIPELINE_METRICS = TableSpec(
    "ops.pipeline_metrics",
    "One row per micro-batch and layer: volumes, quarantine, duplicates, lateness, watermark and latency.",
    (
        Column("layer", "STRING", "The stream: bronze, silver, gold or gold_model."),
        Column("stream_id", "STRING", "Stable id of the stream (derived from its checkpoint)."),
        Column("batch_id", "BIGINT", "Micro-batch id."),
        Column("rows_in", "BIGINT", "Rows read by the batch (Bronze: lines of the files it read)."),
        Column("files_in", "BIGINT", "Bronze: landed files the batch opened (read or quarantined); 0 elsewhere."),
        Column("files_quarantined", "BIGINT", "Bronze: landed files it could not read (see bronze.files)."),
        Column("rows_written", "BIGINT", "Rows written to the layer's main table."),
        Column("quarantined", "BIGINT", "Rows written to silver.quarantine."),
        Column("duplicates_removed", "BIGINT", "Rows dropped as exact duplicates of an event already kept."),
        Column("late", "BIGINT", "Events kept that arrived behind the watermark (is_late = true)."),
        Column("late_dropped", "BIGINT", "Late rows not in Silver and not counted elsewhere (0 by design)."),
        Column("watermark", "TIMESTAMP", "The stream's event_time watermark when the batch ran."),
        Column("latency_p50_s", "DOUBLE", "Median seconds from ingest_time (Bronze: landing) to commit."),
        Column("latency_p95_s", "DOUBLE", "95th percentile seconds from ingest_time to commit."),
        Column("latency_max_s", "DOUBLE", "Max seconds from ingest_time to commit."),
        Column("duration_s", "DOUBLE", "Seconds the batch took."),
        Column("started_at", "TIMESTAMP", "When the batch started."),
        Column("committed_at", "TIMESTAMP", "When the batch committed."),
    ),
    keys=("layer", "stream_id", "batch_id"),
)

GOLD_KEYS = TableSpec(
    "ops.gold_keys",
    "What Gold's distinct counts have counted: one row per metric, day, group and member (a user or a session). "
    "Gold's stream adds a batch's new members to its counts and here, so counts stay exact as batches arrive.",
    (
        Column("key", "STRING", "The member's identity: the JSON array [metric, day, group_key, member]."),
        Column("metric", "STRING", "users, sessions, converted_sessions, funnel_sessions, traffic_users or page_users."),
        Column("event_date", "DATE", "Day of event_time (UTC)."),
        Column("group_key", "STRING", "The group within the day, as a JSON array ([] for the whole day)."),
        Column("member", "STRING", "The user_id or session_id counted."),
        Column("batch_id", "BIGINT", "The Gold micro-batch that counted it first."),
    ),
    keys=("key",),
    partitioned_by=("event_date",),
)

# -- the analytical model: a star schema, sessions, users' history, customer features ----------------------
# Maintained by the Gold model stream (notebook 04). Keys are natural values (README: "Keys"): a surrogate
# would need a lookup or a sequence, and a late event that splits a user's history would re-key facts.

FACT_EVENTS = TableSpec(
    "gold.fact_events",
    "One row per Silver event (valid, deduplicated, late events included): the star schema's fact table. "
    "Join gold.dim_date on date_key, gold.dim_page on page, gold.dim_user on user_id with event_time in "
    "[valid_from, valid_to).",
    (
        Column("event_id", "STRING", "The event's id (UUID, lower case)."),
        Column("event_time", "TIMESTAMP", "When the action happened (UTC)."),
        Column("event_date", "DATE", "DATE(event_time) in UTC; the table's partition."),
        Column("date_key", "INT", "Key of gold.dim_date: the day as yyyymmdd."),
        Column("user_id", "STRING", "The user: key of gold.dim_user with event_time (its version at that time)."),
        Column("session_id", "STRING", "The session: key of gold.sessions."),
        Column("page", "STRING", "URL path: key of gold.dim_page."),
        Column("action", "STRING", "view, click, add_to_cart or purchase."),
        Column("device_type", "STRING", "The event's device type (mobile, desktop, tablet, other; null if not sent)."),
        Column("country", "STRING", "The event's ISO-3166-1 alpha-2 country (null if not sent)."),
        Column("source", "STRING", "The event's traffic source (null if not sent)."),
        Column("is_late", "BOOLEAN", "True when the event reached Silver behind its stream's watermark."),
    ),
    keys=("event_id",),
    partitioned_by=("event_date",),
)

DIM_USER = TableSpec(
    "gold.dim_user",
    "Users' tracked attributes over time (SCD Type 2): one row per version. A version starts at the event whose "
    "device_type, country or source differ from the user's latest event before it, ordered by event_time (then "
    "event_id), not by arrival: late events give the history in-order processing would.",
    (
        Column("user_key", "STRING", "The version: user_id@valid_from (microseconds, UTC)."),
        Column("user_id", "STRING", "The user."),
        Column("device_type", "STRING", "device_type of the user's latest event at that time (null if not sent)."),
        Column("country", "STRING", "country of the user's latest event at that time (null if not sent)."),
        Column("source", "STRING", "source of the user's latest event at that time (null if not sent)."),
        Column("valid_from", "TIMESTAMP", "event_time of the event that started the version (inclusive)."),
        Column("valid_to", "TIMESTAMP", "valid_from of the next version (exclusive); null for the current one."),
        Column("is_current", "BOOLEAN", "True for the user's current version (valid_to is null)."),
        Column("_valid_to_date", "DATE", "DATE(valid_to), 9999-12-31 for the current version: the partition, so a "
               "batch reads only the versions its events can change."),
    ),
    keys=("user_key",),
    partitioned_by=("_valid_to_date",),
)

DIM_PAGE = TableSpec(
    "gold.dim_page",
    "One row per page (URL path) seen in an event, with its page type.",
    (
        Column("page", "STRING", "URL path: the key (fact_events.page)."),
        Column("page_type", "STRING", "home, category, product, cart, checkout, search or other (README: page types)."),
        Column("first_seen", "TIMESTAMP", "event_time of the page's first event."),
        Column("last_seen", "TIMESTAMP", "event_time of the page's latest event."),
    ),
    keys=("page",),
)

DIM_DATE = TableSpec(
    "gold.dim_date",
    "The calendar: every day of every year (UTC) in which an event happened, days without events included.",
    (
        Column("date_key", "INT", "The day as yyyymmdd: the key (fact_events.date_key)."),
        Column("date", "DATE", "The day."),
        Column("year", "INT", "Calendar year."),
        Column("quarter", "INT", "Quarter of the year, 1-4."),
        Column("month", "INT", "Month, 1-12."),
        Column("month_name", "STRING", "January ... December."),
        Column("week_of_year", "INT", "ISO-8601 week number, 1-53."),
        Column("day_of_month", "INT", "Day of the month, 1-31."),
        Column("day_of_week", "INT", "ISO-8601 day of the week: 1 = Monday ... 7 = Sunday."),
        Column("day_name", "STRING", "Monday ... Sunday."),
        Column("is_weekend", "BOOLEAN", "True on Saturday and Sunday."),
    ),
    keys=("date_key",),
)

SESSIONS = TableSpec(
    "gold.sessions",
    "One row per session_id over all its events, late ones included. Entry and exit are its first and last event by "
    "event_time (then event_id); device_type, country, source and user_id are the entry event's.",
    (
        Column("session_id", "STRING", "The session."),
        Column("user_id", "STRING", "The user of the entry event."),
        Column("session_start", "TIMESTAMP", "event_time of the first event."),
        Column("session_end", "TIMESTAMP", "event_time of the last event."),
        Column("session_date", "DATE", "DATE(session_start) in UTC."),
        Column("duration_s", "DOUBLE", "Seconds from session_start to session_end (0 for a single event)."),
        Column("events", "BIGINT", "Events in the session."),
        Column("views", "BIGINT", "Events with action = view."),
        Column("clicks", "BIGINT", "Events with action = click."),
        Column("add_to_carts", "BIGINT", "Events with action = add_to_cart."),
        Column("purchases", "BIGINT", "Events with action = purchase."),
        Column("entry_page", "STRING", "Page of the first event."),
        Column("exit_page", "STRING", "Page of the last event."),
        Column("converted", "BOOLEAN", "True when the session holds a purchase."),
        Column("device_type", "STRING", "device_type of the entry event."),
        Column("country", "STRING", "country of the entry event."),
        Column("source", "STRING", "source of the entry event (the session's traffic source)."),
        Column("_entry_event_id", "STRING", "event_id of the first event (breaks ties of event_time)."),
        Column("_exit_event_id", "STRING", "event_id of the last event."),
        Column("_end_date", "DATE", "DATE(session_end): the partition, so a batch finds the sessions it extends "
               "among a few days."),
        GOLD_BATCH,
    ),
    keys=("session_id",),
    partitioned_by=("_end_date",),
)

CUSTOMER_FEATURES = TableSpec(
    "gold.customer_features",
    "One row per user: features as of the user's latest event (last_seen). Point in time: every feature uses only the "
    "user's events with event_time <= last_seen; N-day features those in (last_seen - N days, last_seen].",
    (
        Column("user_id", "STRING", "The user."),
        Column("first_seen", "TIMESTAMP", "event_time of the user's first event."),
        Column("last_seen", "TIMESTAMP", "event_time of the user's latest event: the row's as-of time."),
        Column("last_purchase_at", "TIMESTAMP", "event_time of the user's latest purchase; null if none."),
        Column("recency_days", "INT", "Whole days from last_purchase_at to last_seen; null if no purchase."),
        Column("sessions_7d", "BIGINT", "Sessions with an event of the user in the 7 days up to last_seen."),
        Column("sessions_30d", "BIGINT", "Sessions with an event of the user in the 30 days up to last_seen."),
        Column("events_30d", "BIGINT", "The user's events in the 30 days up to last_seen."),
        Column("views_30d", "BIGINT", "Of which action = view."),
        Column("purchases_30d", "BIGINT", "Of which action = purchase."),
        Column("conversion_rate_30d", "DOUBLE", "Share of sessions_30d with a purchase in the window."),
        Column("avg_session_duration_s_30d", "DOUBLE", "Mean over sessions_30d of seconds from the user's first to "
               "last event of the session in the window."),
        Column("distinct_pages_30d", "BIGINT", "Distinct pages of the user's events in the 30 days."),
        Column("favourite_device_type", "STRING", "device_type of most of the user's events in the 30 days (ties: "
               "alphabetical first); null if none sent one."),
    ),
    keys=("user_id",),
)

GOLD_TABLES = (DAILY_KPIS, EVENTS_PER_MINUTE, FUNNEL_DAILY, TRAFFIC_DAILY, TOP_PAGES_DAILY)
MODEL_TABLES = (FACT_EVENTS, DIM_USER, DIM_PAGE, DIM_DATE, SESSIONS, CUSTOMER_FEATURES)
ALL_TABLES = (
    BRONZE_EVENTS, BRONZE_FILES, SILVER_EVENTS, QUARANTINE, *GOLD_TABLES, *MODEL_TABLES, PIPELINE_METRICS, GOLD_KEYS,
)
LAYERS = ("bronze", "silver", "gold", "ops")

# Every table is written micro-batch by micro-batch, a few files and one commit at a time. Auto compaction
# rewrites a partition's small files into larger ones (the local runtime applies Databricks' rule after its
# writes), and a checkpoint every 10 commits bounds the log a reader replays: what a read, a lookup or a
# MERGE opens follows the data, not the number of batches.
TABLE_PROPERTIES = {"delta.autoOptimize.autoCompact": "auto", "delta.checkpointInterval": "10"}


def spec(name: str) -> TableSpec:
    for table in ALL_TABLES:
        if table.name == name:
            return table
    raise KeyError(f"unknown table {name!r}; known: {', '.join(t.name for t in ALL_TABLES)}")
