"""Clocks the producer paces itself by, and the UTC timestamp text every event carries.

A live run uses :class:`RealClock` (sleeps really wait). A backfill uses :class:`SimulatedClock`
(sleeping only moves simulated time forward), so a day of traffic takes as long as the CPU needs.
Tests inject their own clock with the same two methods.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the producer needs from a clock: seconds since the epoch (UTC) and a way to wait."""

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time; ``sleep`` returns early when ``stop_event`` is set (Ctrl+C)."""

    realtime = True

    def __init__(self, stop_event: threading.Event | None = None) -> None:
        self._stop_event = stop_event or threading.Event()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop_event.wait(seconds)


class SimulatedClock:
    """Simulated time starting at ``start`` (epoch seconds); ``sleep`` advances it without waiting."""

    realtime = False

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def time(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds


_second_text: dict[int, str] = {}


def format_timestamp(seconds: float) -> str:
    """RFC 3339 UTC text with milliseconds (``2026-05-01T12:00:00.123Z``), as events carry it.

    Called several times per event, so the date-time part is cached per whole second.
    """
    millis = round(seconds * 1000)
    whole, ms = divmod(millis, 1000)
    text = _second_text.get(whole)
    if text is None:
        if len(_second_text) > 100_000:
            _second_text.clear()
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_text[whole] = text
    return f"{text}.{ms:03d}Z"


def key_timestamp(seconds: float) -> str:
    """Compact sortable UTC timestamp for object keys (``20260501T120000123Z``)."""
    millis = round(seconds * 1000)
    whole, ms = divmod(millis, 1000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f"{ms:03d}Z"
