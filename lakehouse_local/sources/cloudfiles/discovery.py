"""Exactly-once file discovery: the discovery log of a stream, and listing the source path.

The log records every file a stream has discovered, in discovery order, under the stream's
``cloudFiles.schemaLocation``; stream offsets are its sequence numbers (see :class:`DiscoveryLog`).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence

from lakehouse_local import storage
from lakehouse_local.sources.cloudfiles.options import CloudFilesOptions
from lakehouse_local.storage import FileInfo

log = logging.getLogger(__name__)

DISCOVERY_FOLDER = "_discovery"


class DiscoveryLog:
    """The durable, append-only record of every file a stream has discovered, in discovery order.

    Each discovered file gets the next sequence number (1, 2, ...); stream offsets are sequence
    numbers. The log lives under ``<schemaLocation>/_discovery/`` as numbered segment files written
    atomically (``<last seq>.jsonl``), periodically folded into one ``<last seq>.compact.jsonl``.
    An ``id`` file names the log and its source path, so offsets from another log are refused; an
    ``owner`` file names the one reader allowed to append (the latest opened), so a second stream on
    the same schemaLocation fails instead of corrupting it; a ``start`` file keeps the offset a new
    checkpoint starts from.
    """

    SEGMENTS_PER_COMPACTION = 100

    def __init__(self, schema_location: str, source_path: str) -> None:
        self.location = storage.join(schema_location, DISCOVERY_FOLDER)
        self.source_path = source_path
        self.run_id = uuid.uuid4().hex
        self.log_id = ""
        self._files: list[FileInfo] = []
        self._cumulative_bytes: list[int] = [0]
        self._known: set[str] = set()
        self._segments: list[str] = []  # segment URIs written since the last compaction
        self.start_seq: int | None = None  # where a new checkpoint starts (includeExistingFiles)

    @classmethod
    def open(cls, schema_location: str, source_path: str) -> DiscoveryLog:
        discovery = cls(schema_location, source_path)
        discovery._load()
        return discovery

    @property
    def last_seq(self) -> int:
        return len(self._files)

    def files(self, start_seq: int, end_seq: int) -> list[FileInfo]:
        """Files with sequence numbers in ``(start_seq, end_seq]``."""
        return self._files[start_seq:end_seq]

    def end_within_bytes(self, start_seq: int, ceiling: int, max_bytes: int) -> int:
        """The largest end ≤ ``ceiling`` whose files after ``start_seq`` fit in ``max_bytes`` (≥ one file)."""
        budget = self._cumulative_bytes[start_seq] + max_bytes
        low, high = start_seq + 1, ceiling
        if low > high:
            return ceiling
        while low < high:
            middle = (low + high + 1) // 2
            if self._cumulative_bytes[middle] <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def bytes_between(self, start_seq: int, end_seq: int) -> int:
        return self._cumulative_bytes[end_seq] - self._cumulative_bytes[start_seq]

    def record(self, listing: Sequence[FileInfo]) -> int:
        """Append the files of ``listing`` not seen before; returns how many were new.

        One hash-set lookup per listed file, whatever the size of the history. New files are
        ordered by modification time (then path) so the oldest are processed first.
        """
        new = [info for info in listing if info.path not in self._known]
        if not new:
            return 0
        new.sort(key=lambda info: (info.modification_time_ms, info.path))
        first = self.last_seq + 1
        segment = storage.join(self.location, f"{first + len(new) - 1:020d}.jsonl")
        owner = json.loads(storage.read_bytes(storage.join(self.location, "owner")))["run"]
        try:
            if owner != self.run_id:
                raise FileExistsError(segment)
            storage.write_bytes(segment, _encode_entries(new, first), exclusive=True)
        except FileExistsError as error:
            raise RuntimeError(
                f"cloudFiles source: another stream is writing the discovery log {self.location}. "
                "Each stream needs its own cloudFiles.schemaLocation."
            ) from error
        self._append(new)
        self._segments.append(segment)
        if len(self._segments) >= self.SEGMENTS_PER_COMPACTION:
            self._compact()
        log.info("cloudFiles discovered %d new files (seq %d..%d) in %s", len(new), first, self.last_seq, self.location)
        return len(new)

    def set_start(self, seq: int) -> None:
        storage.write_bytes(storage.join(self.location, "start"), json.dumps({"seq": seq}).encode("utf-8"))
        self.start_seq = seq

    def _append(self, files: Sequence[FileInfo]) -> None:
        total = self._cumulative_bytes[-1]
        for info in files:
            self._files.append(info)
            self._known.add(info.path)
            total += info.size
            self._cumulative_bytes.append(total)

    def _compact(self) -> None:
        compacted = storage.join(self.location, f"{self.last_seq:020d}.compact.jsonl")
        storage.write_bytes(compacted, _encode_entries(self._files, 1))
        obsolete = [f.path for f in storage.list_files(self.location) if _segment_seq(f.name) is not None]
        storage.delete(path for path in obsolete if path.rsplit("/", 1)[-1] != compacted.rsplit("/", 1)[-1])
        self._segments = []

    def _load(self) -> None:
        listing = {info.name: info.path for info in storage.list_files(self.location)}
        if "id" in listing:
            identity = json.loads(storage.read_bytes(listing["id"]))
        elif any(_segment_seq(name) is not None for name in listing):
            raise RuntimeError(f"cloudFiles source: discovery log {self.location} has segments but no 'id' file.")
        else:
            identity = {"id": uuid.uuid4().hex, "source": self.source_path}
            storage.write_bytes(storage.join(self.location, "id"), json.dumps(identity).encode("utf-8"))
        self.log_id = identity["id"]
        if identity["source"] != self.source_path:
            raise RuntimeError(
                f"cloudFiles source: the schemaLocation's discovery log {self.location} belongs to a stream reading "
                f"{identity['source']}, not {self.source_path}. Each stream needs its own cloudFiles.schemaLocation."
            )
        # The most recently opened reader owns the log; a stale one is refused at its next append.
        storage.write_bytes(storage.join(self.location, "owner"), json.dumps({"run": self.run_id}).encode("utf-8"))
        if "start" in listing:
            self.start_seq = int(json.loads(storage.read_bytes(listing["start"]))["seq"])
        compactions = sorted(
            (seq, name)
            for name in listing
            if name.endswith(".compact.jsonl") and (seq := _segment_seq(name)) is not None
        )
        base = 0
        if compactions:
            base, name = compactions[-1]
            self._load_segment(listing[name], expected_last=base)
        segments = sorted(
            (seq, name)
            for name in listing
            if name.endswith(".jsonl")
            and not name.endswith(".compact.jsonl")
            and (seq := _segment_seq(name)) is not None
            and seq > base
        )
        for seq, name in segments:
            self._load_segment(listing[name], expected_last=seq)
            self._segments.append(listing[name])

    def _load_segment(self, uri: str, *, expected_last: int) -> None:
        entries = [json.loads(line) for line in storage.read_bytes(uri).splitlines() if line.strip()]
        if entries and entries[0]["seq"] <= self.last_seq:
            # A compaction that crashed before deleting older segments: skip what is already loaded.
            entries = [entry for entry in entries if entry["seq"] > self.last_seq]
        for offset, entry in enumerate(entries):
            if entry["seq"] != self.last_seq + 1 + offset:
                raise RuntimeError(
                    f"cloudFiles source: discovery log {self.location} is not contiguous at {uri} "
                    f"(expected seq {self.last_seq + 1 + offset}, found {entry['seq']})."
                )
        self._append([FileInfo(entry["path"], entry["size"], entry["mtime"]) for entry in entries])
        if self.last_seq != expected_last:
            raise RuntimeError(
                f"cloudFiles source: discovery log segment {uri} ends at {self.last_seq}, expected {expected_last}."
            )


def _segment_seq(name: str) -> int | None:
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() and name.endswith(".jsonl") else None


def _encode_entries(files: Sequence[FileInfo], first_seq: int) -> bytes:
    return "".join(
        json.dumps({"seq": first_seq + index, "path": f.path, "size": f.size, "mtime": f.modification_time_ms}) + "\n"
        for index, f in enumerate(files)
    ).encode("utf-8")


def list_source_files(options: CloudFilesOptions) -> list[FileInfo]:
    """One listing of the source path, filtered by ``pathGlobFilter``."""
    files = storage.list_files(options.path)
    if options.path_glob_filter:
        matches = _glob_matcher(options.path_glob_filter)
        files = [info for info in files if matches(info.name)]
    return files


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
