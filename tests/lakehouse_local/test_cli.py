"""The local command line: what `make demo` produces besides the pipeline itself."""

from __future__ import annotations

from datetime import UTC, datetime

from lakehouse_local.cli import DEMO_RATE, demo_start_time
from producer.config import parse_start_time


def test_the_demo_clock_ends_when_the_demo_runs():
    now = datetime(2026, 11, 30, 21, 52, 32, 900000, tzinfo=UTC).timestamp()

    start = parse_start_time(demo_start_time(100_000, DEMO_RATE, now=now))

    # The producer's k-th event is due at start + (k + 1) / rate: the last one within half a second of now.
    last_due = start.timestamp() + 100_000 / DEMO_RATE
    assert abs(now - last_due) <= 0.5
    assert start.isoformat() == "2026-11-29T06:11:36+00:00"  # 142,857 simulated seconds (≈ 1.65 days) earlier
