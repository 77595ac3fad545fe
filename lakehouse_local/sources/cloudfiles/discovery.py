"""Exactly-once file discovery: the discovery log of a stream, and what it remembers.

The log records every file a stream has discovered, in discovery order, under the stream's
``cloudFiles.schemaLocation``; stream offsets are its sequence numbers (see :class:`DiscoveryLog`).
Which files a trigger lists is decided in :mod:`~lakehouse_local.sources.cloudfiles.listing`.

What the log remembers stays bounded by the landing, not by everything that ever landed:

- a file's *entry* (path, size, modification time under its sequence number) is kept while a
  micro-batch may still read it, and leaves at the first compaction after Spark commits it;
- a file's *path* (to recognise it when a full listing finds it again) is kept while the landing
  has it: a full listing that no longer finds a remembered path forgets it (the landing's expiry
  removed it, which is not an error and is not reported). An empty full listing forgets nothing
  (a folder that is missing for a while is not an expiry).
- with ``cloudFiles.maxFileAge`` (no default, as Auto Loader), a compaction also forgets paths whose
  modification time is more than that age before the newest file discovered, and a newly listed
  file that old is ignored, as Auto Loader ignores files older than ``maxFileAge`` (the first listing
  of a log takes every file).

Forgetting reaches the disk at the next compaction. A forgotten path that lands again (same key,
after deletion) is a new file.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Sequence

import orjson

from lakehouse_local import storage
from lakehouse_local.storage import FileInfo

log = logging.getLogger(__name__)

DISCOVERY_FOLDER = "_discovery"
COMPACT_SUFFIX = ".compact.jsonl"


class DiscoveryLog:
    """The durable, append-only record of every file a stream has discovered, in discovery order.

    Each discovered file gets the next sequence number (1, 2, ...); stream offsets are sequence
    numbers. The log lives under ``<schemaLocation>/_discovery/`` as numbered segment files written
    atomically (``<last seq>.jsonl``), folded every :attr:`SEGMENTS_PER_COMPACTION` segments into one
    ``<last seq>.compact.jsonl`` that holds what is still remembered (see the module docstring).
    An ``id`` file names the log and its source path, so offsets from another log are refused; an
    ``owner`` file names the one reader allowed to append (the latest opened), so a second stream on
    the same schemaLocation fails instead of corrupting it; a ``start`` file keeps the offset a new
    checkpoint starts from; a ``listing`` file the time of the last full listing.
    """

    SEGMENTS_PER_COMPACTION = 100

    def __init__(self, schema_location: str, source_path: str, *, max_file_age_ms: int | None = None) -> None:
        self.location = storage.join(schema_location, DISCOVERY_FOLDER)
        self.source_path = source_path
        self.max_file_age_ms = max_file_age_ms
        self.run_id = uuid.uuid4().hex
        self.log_id = ""
        self._base = 0  # entries up to this sequence number are no longer held (committed, compacted)
        self._files: list[FileInfo] = []  # entries _base + 1 .. last_seq
        self._cumulative_bytes: list[int] = [0]  # bytes of _files[:i]
        self._known: dict[str, int] = {}  # every remembered path -> its modification time (ms)
        self._latest_mtime = 0  # newest modification time discovered: maxFileAge counts back from it
        self._committed = 0  # the highest offset Spark committed in this run (at least _base)
        self._segments: list[str] = []  # segment URIs written since the last compaction
        self.start_seq: int | None = None  # where a new checkpoint starts (includeExistingFiles)
        self.full_listing_at_ms: int | None = None  # when the source path was last listed in full

    @classmethod
    def open(cls, schema_location: str, source_path: str, *, max_file_age_ms: int | None = None) -> DiscoveryLog:
        discovery = cls(schema_location, source_path, max_file_age_ms=max_file_age_ms)
        discovery._load()
        return discovery

    @property
    def last_seq(self) -> int:
        return self._base + len(self._files)

    @property
    def known_paths(self) -> int:
        """How many paths the log remembers (to recognise them when listed again)."""
        return len(self._known)

    @property
    def held_entries(self) -> int:
        """How many entries the log holds for micro-batches (not yet committed and compacted)."""
        return len(self._files)

    def files(self, start_seq: int, end_seq: int) -> list[FileInfo]:
        """Files with sequence numbers in ``(start_seq, end_seq]``."""
        self._check_held(start_seq)
        return self._files[start_seq - self._base : end_seq - self._base]

    def end_within_bytes(self, start_seq: int, ceiling: int, max_bytes: int) -> int:
        """The largest end ≤ ``ceiling`` whose files after ``start_seq`` fit in ``max_bytes`` (≥ one file)."""
        self._check_held(start_seq)
        cumulative, base = self._cumulative_bytes, self._base
        budget = cumulative[start_seq - base] + max_bytes
        low, high = start_seq + 1, ceiling
        if low > high:
            return ceiling
        while low < high:
            middle = (low + high + 1) // 2
            if cumulative[middle - base] <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def bytes_between(self, start_seq: int, end_seq: int) -> int:
        self._check_held(start_seq)
        return self._cumulative_bytes[end_seq - self._base] - self._cumulative_bytes[start_seq - self._base]

    def key_after_all(self, root: str) -> str | None:
        """The largest key (relative to ``root``) of the remembered paths: where an incremental listing starts."""
        return max((storage.relative_key(root, path) for path in self._known), default=None)

    def record(self, listing: Sequence[FileInfo]) -> int:
        """Append the files of ``listing`` not seen before; returns how many were new.

        One hash lookup per listed file, whatever the size of the history. New files are ordered
        by modification time (then path) so the oldest are processed first. Files older than the
        ``maxFileAge`` horizon are ignored, except in the log's first listing.
        """
        known, horizon = self._known, self._horizon()
        new = [info for info in listing if info.path not in known]
        if horizon is not None:
            young = [info for info in new if info.modification_time_ms >= horizon]
            if len(young) < len(new):
                log.info("cloudFiles ignored %d files older than cloudFiles.maxFileAge", len(new) - len(young))
            new = young
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
            self.compact()
        log.info("cloudFiles discovered %d new files (seq %d..%d) in %s", len(new), first, self.last_seq, self.location)
        return len(new)

    def mark_committed(self, seq: int) -> None:
        """Spark committed every micro-batch up to ``seq``: their entries may leave at the next compaction."""
        self._committed = max(self._committed, min(seq, self.last_seq))

    def forget_missing(self, present: Collection[str]) -> int:
        """After a full listing: forget the remembered paths it no longer found. Returns how many.

        Their files left the landing (its expiry, or a deletion): nothing to report. A file that
        is still to be read keeps its entry; only its path is forgotten.
        """
        gone = [path for path in self._known if path not in present]
        for path in gone:
            del self._known[path]
        if gone:
            log.info("cloudFiles forgot %d discovered files no longer in %s", len(gone), self.source_path)
        return len(gone)

    def note_full_listing(self, at_ms: int) -> None:
        storage.write_bytes(storage.join(self.location, "listing"), json.dumps({"full_listing_at_ms": at_ms}).encode())
        self.full_listing_at_ms = at_ms

    def set_start(self, seq: int) -> None:
        storage.write_bytes(storage.join(self.location, "start"), json.dumps({"seq": seq}).encode("utf-8"))
        self.start_seq = seq

    def compact(self) -> None:
        """Fold the segments into one file of what is still remembered; drop committed entries and old paths."""
        horizon = self._horizon()
        if horizon is not None:
            for path in [path for path, mtime in self._known.items() if mtime < horizon]:
                del self._known[path]
        base = max(self._base, self._committed)
        held = self._files[base - self._base :]
        lines = [orjson.dumps({"compact": 2, "base": base, "last": self.last_seq, "latest_mtime": self._latest_mtime})]
        held_paths = set()
        for offset, info in enumerate(held):
            held_paths.add(info.path)
            entry = {"seq": base + 1 + offset, "path": info.path, "size": info.size, "mtime": info.modification_time_ms}
            if info.path not in self._known:
                entry["known"] = False  # left the landing before it was read: a new file if it lands again
            lines.append(orjson.dumps(entry))
        lines.extend(
            orjson.dumps({"path": path, "mtime": mtime}) for path, mtime in self._known.items() if path not in held_paths
        )
        compacted = storage.join(self.location, f"{self.last_seq:020d}{COMPACT_SUFFIX}")
        storage.write_bytes(compacted, b"\n".join(lines) + b"\n")
        obsolete = [f.path for f in storage.list_files(self.location) if _segment_seq(f.name) is not None]
        storage.delete(path for path in obsolete if path.rsplit("/", 1)[-1] != compacted.rsplit("/", 1)[-1])
        self._files = held
        self._base = base
        self._cumulative_bytes = [0]
        self._extend_cumulative(held)
        self._segments = []

    def _horizon(self) -> int | None:
        """Modification times before this are older than ``maxFileAge`` (None: no horizon yet)."""
        if self.max_file_age_ms is None or not self._latest_mtime:
            return None
        return self._latest_mtime - self.max_file_age_ms

    def _check_held(self, start_seq: int) -> None:
        if start_seq < self._base:
            raise RuntimeError(
                f"cloudFiles source: offset {start_seq} is before the discovery log {self.location} "
                f"(it holds files after {self._base}, the others were committed and compacted). The checkpoint "
                "is older than its schemaLocation: reset both together, or restore the checkpoint."
            )

    def _append(self, files: Sequence[FileInfo]) -> None:
        self._files.extend(files)
        self._extend_cumulative(files)
        for info in files:
            self._known[info.path] = info.modification_time_ms
            self._latest_mtime = max(self._latest_mtime, info.modification_time_ms)

    def _extend_cumulative(self, files: Sequence[FileInfo]) -> None:
        total = self._cumulative_bytes[-1]
        for info in files:
            total += info.size
            self._cumulative_bytes.append(total)

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
        if "listing" in listing:
            self.full_listing_at_ms = int(json.loads(storage.read_bytes(listing["listing"]))["full_listing_at_ms"])
        compactions = sorted(
            (seq, name) for name in listing if name.endswith(COMPACT_SUFFIX) and (seq := _segment_seq(name)) is not None
        )
        last_compacted = 0
        if compactions:
            last_compacted, name = compactions[-1]
            self._load_compaction(listing[name], expected_last=last_compacted)
        segments = sorted(
            (seq, name)
            for name in listing
            if not name.endswith(COMPACT_SUFFIX) and (seq := _segment_seq(name)) is not None and seq > last_compacted
        )
        for seq, name in segments:
            entries = _decode(storage.read_bytes(listing[name]))
            self._load_entries(listing[name], entries, expected_last=seq)
            self._segments.append(listing[name])
        self._committed = self._base

    def _load_compaction(self, uri: str, *, expected_last: int) -> None:
        lines = _decode(storage.read_bytes(uri))
        if lines and "compact" in lines[0]:
            header = lines[0]
            self._base = int(header["base"])
            self._latest_mtime = int(header["latest_mtime"])
            lines = lines[1:]
        # Paths remembered without an entry (their micro-batches are committed), then the held entries.
        for line in lines:
            if "seq" not in line:
                self._known[line["path"]] = int(line["mtime"])
        self._load_entries(uri, [line for line in lines if "seq" in line], expected_last=expected_last)

    def _load_entries(self, uri: str, entries: list[dict], *, expected_last: int) -> None:
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
        for entry in entries:
            if entry.get("known", True) is False:
                self._known.pop(entry["path"], None)
        if self.last_seq != expected_last:
            raise RuntimeError(
                f"cloudFiles source: discovery log segment {uri} ends at {self.last_seq}, expected {expected_last}."
            )


def _segment_seq(name: str) -> int | None:
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() and name.endswith(".jsonl") else None


def _decode(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def _encode_entries(files: Sequence[FileInfo], first_seq: int) -> bytes:
    return b"".join(
        orjson.dumps({"seq": first_seq + index, "path": f.path, "size": f.size, "mtime": f.modification_time_ms}) + b"\n"
        for index, f in enumerate(files)
    )
