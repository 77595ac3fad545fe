"""Streaming reads of a Delta table: offsets over table versions, and the stream reader.

Offsets are ``{"sourceVersion": 1, "reservoirId": <table id>, "reservoirVersion": v, "index": i,
"isStartingVersion": b}`` like Delta's own: every file up to and including file ``i`` (``-1``: none)
of version ``v`` has been read, where the files of a version are the snapshot's files (sorted by
modification time, then path) when ``isStartingVersion`` is true, or the data-change ``add``
actions of commit ``v`` in log order otherwise, a file larger than 64 MiB (a compacted one) counting
as its pieces of about 16 MiB (``read.pieces``). The index lets ``maxFilesPerTrigger`` and
``maxBytesPerTrigger`` split a large version across batches. A new query's initial offset leaves the
version open (``reservoirVersion`` -1); the first batch pins it to the version current at that moment
and reads only that snapshot, so replaying that batch after a restart reads the same files.

``maxBytesPerTrigger`` is a soft limit, as in Delta: a batch takes files while it holds less than the
limit, so it may exceed it by its last file, and always takes at least one. Delta admits a whole file
however large; here the unit is a piece, so a compacted file of 128 MiB does not make one batch of
half a million rows that the local runtime would collect on the driver.

Rewrites that do not change data (compaction) are skipped; commits that update or delete rows stop
the stream unless ``skipChangeCommits`` is set, as in Delta.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

from lakehouse_local.sources.delta.errors import DeltaChangeCommitError, DeltaSourceError
from lakehouse_local.sources.delta.log import DataFile, commit_files, latest_version, snapshot_files, table_id
from lakehouse_local.sources.delta.read import group_files, pieces, read_files
from lakehouse_local.sources.options import SourceOptions

log = logging.getLogger(__name__)

DEFAULT_MAX_FILES_PER_TRIGGER = 1000


@dataclass(frozen=True)
class _Offset:
    table_id: str | None
    version: int
    index: int
    starting: bool

    @classmethod
    def from_json(cls, offset: dict) -> _Offset:
        return cls(
            table_id=offset.get("reservoirId"),
            version=int(offset["reservoirVersion"]),
            index=int(offset["index"]),
            starting=bool(offset["isStartingVersion"]),
        )

    def to_json(self) -> dict:
        return {
            "sourceVersion": 1,
            "reservoirId": self.table_id,
            "reservoirVersion": self.version,
            "index": self.index,
            "isStartingVersion": self.starting,
        }

    @property
    def pinned(self) -> bool:
        """False for a new query's initial offset, whose snapshot version is not chosen yet."""
        return self.version >= 0


@dataclass
class _Admission:
    """What one micro-batch may still take: files and bytes (None: no limit). It takes at least one file, and
    takes files while it holds less than the byte limit, the last one possibly crossing it (Delta's rule)."""

    files: int | None
    bytes: int | None
    taken: int = 0

    @property
    def full(self) -> bool:
        return (self.files is not None and self.files <= 0) or (
            self.bytes is not None and self.bytes <= 0 and self.taken > 0
        )

    def count(self, files: list[DataFile], first: int) -> int:
        """How many of ``files[first:]`` the batch takes, counted against what it may still take."""
        count = 0
        for data_file in files[first:]:
            if self.full:
                break
            count += 1
            self.taken += 1
            self.files = None if self.files is None else self.files - 1
            self.bytes = None if self.bytes is None else self.bytes - data_file.size
        return count


class DeltaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batches of a Delta table's new data files, version after version."""

    def __init__(self, path: str, schema: StructType, options: dict[str, str]) -> None:
        self.path = path
        self.schema = schema
        opts = SourceOptions(options, context=f"delta stream from {path}", error=DeltaSourceError)
        starting_version = opts.get("startingVersion")
        self.starting_version: int | str | None = (
            starting_version if starting_version in (None, "latest") else opts.integer("startingVersion")
        )
        self.max_files = opts.integer("maxFilesPerTrigger", DEFAULT_MAX_FILES_PER_TRIGGER, positive=True)
        self.max_bytes = opts.byte_size("maxBytesPerTrigger")
        self.skip_change_commits = opts.flag("skipChangeCommits")
        self._target_version: int | None = None
        self._files_cache: dict[tuple[int, bool], list[DataFile]] = {}
        self._table_id: str | None = None

    # Offsets ------------------------------------------------------------------------------

    def initialOffset(self) -> dict:
        reservoir_id = self._id()
        if self.starting_version is None:
            return _Offset(reservoir_id, -1, -1, True).to_json()
        if self.starting_version == "latest":
            return _Offset(reservoir_id, latest_version(self.path) + 1, -1, False).to_json()
        return _Offset(reservoir_id, self.starting_version, -1, False).to_json()

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxFiles(self.max_files)

    def prepareForTriggerAvailableNow(self) -> None:
        self._target_version = latest_version(self.path)

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        begin = _Offset.from_json(start)
        self._check_same_table(begin)
        latest = self._target_version if self._target_version is not None else latest_version(self.path)
        if not isinstance(limit, (ReadMaxFiles, ReadAllAvailable)):
            raise DeltaSourceError(f"delta stream from {self.path}: unsupported read limit {limit}")
        # Trigger.Once reads everything (ReadAllAvailable); otherwise both limits hold, as in Delta.
        admit = _Admission(
            files=limit.max_files if isinstance(limit, ReadMaxFiles) else None,
            bytes=self.max_bytes if isinstance(limit, ReadMaxFiles) else None,
        )
        if not begin.pinned:
            # First batch of a new query: the snapshot current now, and nothing after it.
            taken = admit.count(self._files(latest, True), 0)
            return _Offset(begin.table_id, latest, taken - 1, True).to_json()
        end = begin
        version, index, starting = begin.version, begin.index, begin.starting
        while version <= latest and not admit.full:
            try:
                files = self._files(version, starting)
            except DeltaChangeCommitError:
                if end != begin:  # deliver the data before the change first, then fail on it
                    break
                raise
            taken = admit.count(files, index + 1)
            if taken:
                end = _Offset(begin.table_id, version, index + taken, starting)
            version, index, starting = version + 1, -1, False
        return end.to_json()

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        begin, stop = _Offset.from_json(start), _Offset.from_json(end)
        if not stop.pinned:
            return []
        if not begin.pinned:
            if not stop.starting:
                raise DeltaSourceError(
                    f"delta stream from {self.path}: the checkpoint's first batch ends at {end}, which is not "
                    "the starting snapshot; the checkpoint does not belong to this source. Use a new checkpoint."
                )
            begin = _Offset(stop.table_id, stop.version, -1, True)
        files: list[DataFile] = []
        version, index, starting = begin.version, begin.index, begin.starting
        # A starting snapshot of version v comes after the commits up to v and before commit v + 1.
        while (version, starting) <= (stop.version, stop.starting):
            version_files = self._files(version, starting)
            last = stop.index if (version, starting) == (stop.version, stop.starting) else len(version_files) - 1
            files.extend(version_files[index + 1 : last + 1])
            version, index, starting = version + 1, -1, False
        return group_files(self.path, files)

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_files(partition, self.schema)

    def commit(self, end: dict) -> None:
        done = _Offset.from_json(end)
        for key in [k for k in self._files_cache if k[0] < done.version]:
            del self._files_cache[key]

    # Table log ----------------------------------------------------------------------------

    def _id(self) -> str:
        if self._table_id is None:
            self._table_id = table_id(self.path)
        return self._table_id

    def _check_same_table(self, offset: _Offset) -> None:
        if offset.table_id is not None and offset.table_id != self._id():
            raise DeltaSourceError(
                f"delta stream from {self.path}: the table was replaced (id {self._id()}, the checkpoint "
                f"was written for id {offset.table_id}). Delete the query's checkpoint to read the new table "
                "from the start."
            )

    def _files(self, version: int, starting: bool) -> list[DataFile]:
        key = (version, starting)
        if key not in self._files_cache:
            if starting:
                snapshot_version, _, files = snapshot_files(self.path, version)
                assert snapshot_version == version
            else:
                files = self._commit_files(version)
            self._files_cache[key] = pieces(self.path, files)
        return self._files_cache[key]

    def _commit_files(self, version: int) -> list[DataFile]:
        """The data files that commit ``version`` added, in log order (empty for a rewrite)."""
        commit = commit_files(self.path, version)
        if commit.removes_data:
            if self.skip_change_commits:
                log.info("delta stream from %s: skipping change commit %d", self.path, version)
                return []
            raise DeltaChangeCommitError(
                f"delta stream from {self.path}: commit {version} updated or deleted existing rows (it removes "
                "data files), which a streaming read of appends cannot follow. Set "
                "option('skipChangeCommits', 'true') to ignore such commits, or restart the stream from a new "
                "checkpoint."
            )
        return commit.added
