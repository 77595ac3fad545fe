"""Timestamps: UTC with milliseconds, rounded."""

from __future__ import annotations

from datetime import UTC, datetime

from producer.clock import format_timestamp


def test_timestamps_are_utc_with_milliseconds():
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert (
        format_timestamp(datetime(2026, 4, 30, 23, 33, 20, 123400, tzinfo=UTC).timestamp())
        == "2026-04-30T23:33:20.123Z"
    )
    assert (
        format_timestamp(datetime(2026, 4, 30, 23, 59, 59, 999600, tzinfo=UTC).timestamp())
        == "2026-05-01T00:00:00.000Z"
    )
