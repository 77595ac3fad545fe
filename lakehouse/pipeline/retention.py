"""How long raw lines are kept: the text of landed lines, which may hold whatever a producer sent.

``bronze.events.value`` and ``silver.quarantine.raw_line`` keep each line exactly as it arrived, for the
engineers who replay or diagnose it. After ``raw_retention_days`` the text is removed (set to null), and
``VACUUM`` deletes the files that still hold it once the table's retention of removed files has passed (7
days by default). The rows stay, so every count and the conservation law still hold, and Silver and Gold
keep their validated, pseudonymised values. A rebuild from Bronze (``reset=silver``) therefore reaches back
as far as that retention; the landing area's own expiry (7 days by default) bounds a rebuild of Bronze.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lakehouse.tables import Lakehouse

RAW_TEXT = {"bronze.events": ("value", "_ingested_at"), "silver.quarantine": ("raw_line", "quarantined_at")}


def purge_raw_lines(tables: Lakehouse, *, retention_days: int, now: datetime | None = None) -> datetime:
    """Null the raw text of every line older than ``retention_days``; returns the cut-off (UTC)."""
    if retention_days < 1:
        raise ValueError(f"raw_retention_days must be at least 1, got {retention_days}")
    cutoff = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None) - timedelta(days=retention_days)
    for name, (text, when) in RAW_TEXT.items():
        # An ISO string compared with a timestamp: Spark and delta-rs both read it as the UTC instant.
        tables.update_where(name, {text: "NULL"}, f"{when} < '{cutoff.isoformat()}Z' AND {text} IS NOT NULL")
        # The update (and any compaction) leaves the old text in files the table no longer uses, kept for time
        # travel and for readers of older versions; VACUUM deletes them once the table's retention has passed.
        tables.vacuum(name)
    return cutoff
