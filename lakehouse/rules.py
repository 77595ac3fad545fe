"""Pipeline rules beyond the contract, shared by the producer (ground truth) and Silver (enforcement).

Lateness is measured within the event (``ingest_time - event_time``), so replays and backfills are
judged the same way as live traffic.
"""

from __future__ import annotations

# An event whose ingest_time is more than this after its event_time is quarantined as `too_late`.
MAX_LATENESS_HOURS = 72
# An event whose event_time is more than this after its ingest_time is quarantined as `future_event_time`.
FUTURE_TOLERANCE_MINUTES = 5
# Sessions end after this much inactivity (producer traffic model).
SESSION_TIMEOUT_MINUTES = 30

# Reasons Silver adds to the contract's own (lakehouse.contract.CONTRACT_REASONS).
PIPELINE_REASONS = ("future_event_time", "too_late", "conflicting_duplicate")
