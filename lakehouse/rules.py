"""Pipeline rules beyond the contract, shared by the producer (ground truth) and Silver (enforcement).

Lateness is measured within the event (``ingest_time - event_time``), so replays and backfills are
judged the same way as live traffic.
"""

from __future__ import annotations

from lakehouse import contract

# An event whose ingest_time is more than this after its event_time is quarantined as `too_late`.
MAX_LATENESS_HOURS = 72
# An event whose event_time is more than this after its ingest_time is quarantined as `future_event_time`.
FUTURE_TOLERANCE_MINUTES = 5
# Sessions end after this much inactivity (producer traffic model).
SESSION_TIMEOUT_MINUTES = 30

# Reasons Silver adds to the contract's own (lakehouse.contract.CONTRACT_REASONS).
FUTURE_EVENT_TIME = "future_event_time"
TOO_LATE = "too_late"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
PIPELINE_REASONS = (FUTURE_EVENT_TIME, TOO_LATE, CONFLICTING_DUPLICATE)
# Every reason a quarantined line can carry.
QUARANTINE_REASONS = (*contract.CONTRACT_REASONS, *PIPELINE_REASONS)
