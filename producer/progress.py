"""Run progress for people watching: one live line on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


class Progress:
    """Reports lines sent, events/s (wall clock), batches, retries and errors.

    ``interactive`` redraws one line in place (``\\r``) every ``interval_seconds``; otherwise a log
    line is written every ``interval_seconds`` (longer by default, so logs stay readable).
    """

    def __init__(
        self, *, interactive: bool | None = None, stream: TextIO | None = None, interval_seconds: float | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.interval = interval_seconds if interval_seconds is not None else (0.5 if self.interactive else 10.0)
        self._started = time.monotonic()
        self._last_report = self._started
        self._last_lines = 0
        self._drawn = False

    def update(self, *, lines: int, batches: int, retries: int, errors: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < self.interval:
            return
        window = max(now - self._last_report, 1e-9)
        rate = (lines - self._last_lines) / window
        self._last_report, self._last_lines = now, lines
        text = f"{lines:,} events | {rate:,.0f} events/s | {batches:,} batches | {retries} retries | {errors} errors"
        if self.interactive:
            self.stream.write("\r" + text.ljust(78))
            self.stream.flush()
            self._drawn = True
        else:
            log.info("progress: %s", text)

    def close(self, *, lines: int, batches: int, retries: int, errors: int) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        if self.interactive and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        log.info(
            "sent %d events in %d batches in %.1fs (%.0f events/s); %d retries, %d errors",
            lines,
            batches,
            elapsed,
            lines / elapsed,
            retries,
            errors,
        )
