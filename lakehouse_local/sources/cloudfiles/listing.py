"""Listing a stream's source path: everything (a full listing), or only the keys after the last one seen.

A full listing costs what has landed: one S3 ``LIST`` request per 1,000 keys, one ``stat`` per local
file. An incremental listing costs what is new: on S3 ``ListObjectsV2`` with ``StartAfter`` the last
key seen, on a local folder the same order over relative paths, reading only the folders that can
hold a later key (see :func:`lakehouse_local.storage.list_files`). It relies on keys that sort in the
order files land, as the producer's ``dt=YYYY-MM-DD/hr=HH/<utc>-<uuid>`` do; a key that lands late
or out of order sorts before the last one seen and is found by the next full listing (a backfill).
Either way the discovery log records each file once (:mod:`~lakehouse_local.sources.cloudfiles.discovery`).

``cloudFiles.useIncrementalListing`` chooses, as Auto Loader's does:

``false``  every listing is full.
``true``   after the log's first listing, every listing starts after the last key seen, across
           restarts; full listings only every ``cloudFiles.backfillInterval`` (none by default: a key
           that sorts before the last one seen is then never found).
``auto``   (default) incremental, with safeguards: the first listing of each run is full, a backfill
           runs every ``cloudFiles.backfillInterval`` (every hour when it is not set), and after a full
           listing that found a file an incremental listing would have missed (a new key sorting
           before the last one seen, or new keys whose order is not the order of their modification
           times) the next listing is full again, until a full listing finds none. Auto Loader's
           ``auto`` also lists in full after 7 incremental listings; a count of listings would tie the
           cost to the trigger interval, so the local one uses a period.

Backfills run inside the trigger that is due (Auto Loader runs them asynchronously); the time of
the last one is kept in the discovery log, so a restart does not list in full just for being one
(except under ``auto``).
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import Callable, Sequence

from lakehouse_local import storage
from lakehouse_local.sources.cloudfiles.discovery import DiscoveryLog
from lakehouse_local.sources.cloudfiles.options import CloudFilesOptions
from lakehouse_local.storage import FileInfo

log = logging.getLogger(__name__)

AUTO_BACKFILL_INTERVAL_MS = 3_600_000


def list_source_files(options: CloudFilesOptions, *, after: str | None = None) -> list[FileInfo]:
    """One listing of the source path (only keys after ``after`` when given), filtered by ``pathGlobFilter``."""
    files = storage.list_files(options.path, start_after=after)
    if options.path_glob_filter:
        matches = _glob_matcher(options.path_glob_filter)
        files = [info for info in files if matches(info.name)]
    return files


class IncrementalListing:
    """Decides, listing by listing, whether to list everything or only the keys after the last one seen.

    :meth:`start_after` says where the next listing starts (``None``: a full listing); :meth:`listed`
    takes what it found and what the discovery log recorded from it. ``clock`` (seconds) times
    the backfills.
    """

    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, options: CloudFilesOptions, discovery: DiscoveryLog) -> None:
        self.options = options
        self.discovery = discovery
        self.mode = options.use_incremental_listing
        self.backfill_interval_ms = options.backfill_interval_ms or (
            AUTO_BACKFILL_INTERVAL_MS if self.mode == "auto" else None
        )
        # Where the last listing ended; from the log's remembered paths on a restart.
        self.cursor = discovery.key_after_all(options.path) if self.mode != "false" else None
        self._full_in_this_run = False
        self._in_order = True

    def start_after(self) -> str | None:
        """The key the next listing starts after, or ``None`` for a full listing."""
        if self.mode == "false" or self.cursor is None:
            return None
        if self.mode == "auto" and not (self._full_in_this_run and self._in_order):
            return None
        last_full = self.discovery.full_listing_at_ms
        if self.backfill_interval_ms is not None and (
            last_full is None or self._now_ms() - last_full >= self.backfill_interval_ms
        ):
            return None
        return self.cursor

    def listed(self, after: str | None, files: Sequence[FileInfo], new: Sequence[FileInfo]) -> None:
        """Take one listing's result: ``files`` listed after ``after`` (None: in full), ``new`` recorded from it."""
        root = self.options.path
        previous = self.cursor
        log.debug("cloudFiles listed %d files after %r, %d new", len(files), after, len(new))
        if after is None and files:
            # An empty listing forgets nothing: a missing or unmounted folder is not an expiry.
            self.discovery.forget_missing({info.path for info in files})
        if self.mode == "false":
            return  # every listing is full: no cursor to keep, no backfill to time
        if files:
            last = max(storage.relative_key(root, info.path) for info in files)
            self.cursor = last if previous is None else max(previous, last)
        if after is not None:
            return
        self._full_in_this_run = True
        self.discovery.note_full_listing(self._now_ms())
        if self.mode == "auto":
            self._in_order = _in_landing_order(root, new, previous)
            if not self._in_order:
                log.info(
                    "cloudFiles: keys under %s do not sort in the order files land; the next listing is full",
                    root,
                )

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def _in_landing_order(root: str, new: Sequence[FileInfo], previous: str | None) -> bool:
    """Would an incremental listing have found ``new``, and do their keys sort as they landed?"""
    keyed = sorted((storage.relative_key(root, info.path), info.modification_time_ms) for info in new)
    if previous is not None and keyed and keyed[0][0] <= previous:
        return False
    return all(earlier[1] <= later[1] for earlier, later in zip(keyed, keyed[1:], strict=False))


def _glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Hadoop-style file-name glob: ``*``, ``?``, ``[abc]`` and ``{a,b}`` alternatives."""
    alternatives = _expand_braces(pattern)
    return lambda name: any(fnmatch.fnmatchcase(name, alternative) for alternative in alternatives)


def _expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [expanded for part in match.group(1).split(",") for expanded in _expand_braces(head + part + tail)]
