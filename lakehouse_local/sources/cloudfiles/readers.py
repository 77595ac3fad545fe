"""The Spark readers of ``cloudFiles``: micro-batches over the discovery log, and one-off batch reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxBytes,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)

from lakehouse_local.sources.cloudfiles.discovery import DiscoveryLog
from lakehouse_local.sources.cloudfiles.files import FilesPartition, plan_partitions, read_partition
from lakehouse_local.sources.cloudfiles.layout import OutputLayout
from lakehouse_local.sources.cloudfiles.listing import IncrementalListing, list_source_files
from lakehouse_local.sources.cloudfiles.options import CloudFilesOptions

DEFAULT_MAX_FILES_PER_TRIGGER = 1000


class CloudFilesStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batches of newly discovered files; offsets are ``{"seq": N, "log": <log id>}``.

    Spark keeps one instance alive in a planner process for the whole query run (initialOffset,
    latestOffset, partitions, commit); ``read`` runs on a pickled copy in the executors, which
    never touches the discovery log.
    """

    def __init__(self, options: CloudFilesOptions, layout: OutputLayout) -> None:
        self.options = options
        self.layout = layout
        self._log: DiscoveryLog | None = None
        self._listing: IncrementalListing | None = None
        self._target_seq: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_log"] = None
        state["_listing"] = None
        return state

    def _discovery(self) -> DiscoveryLog:
        if self._log is None:
            assert self.options.schema_location is not None
            self._log = DiscoveryLog.open(
                self.options.schema_location, self.options.path, max_file_age_ms=self.options.max_file_age_ms
            )
        return self._log

    def _discover(self) -> None:
        """List the source path (in full, or after the last key seen) and record what is new."""
        discovery = self._discovery()
        if self._listing is None:
            self._listing = IncrementalListing(self.options, discovery)
        after = self._listing.start_after()
        files = list_source_files(self.options, after=after)
        before = discovery.last_seq
        discovery.record(files)
        self._listing.listed(after, files, discovery.files(before, discovery.last_seq))

    def _offset(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, "log": self._discovery().log_id}

    def _seq(self, offset: dict[str, Any]) -> int:
        discovery = self._discovery()
        seq = int(offset["seq"])
        if offset.get("log") != discovery.log_id or seq > discovery.last_seq:
            raise RuntimeError(
                f"cloudFiles source: the checkpoint's offset {offset} does not belong to the discovery log at "
                f"{discovery.location} (id {discovery.log_id}, {discovery.last_seq} files). The schemaLocation was "
                "cleared or changed while the checkpoint was kept: reset both together, or restore the schemaLocation."
            )
        return seq

    def initialOffset(self) -> dict[str, Any]:
        discovery = self._discovery()
        if discovery.start_seq is None:
            # Fixed the first time a stream starts on this schemaLocation, so a restart before the
            # first micro-batch (which leaves no offset in the checkpoint) starts from the same place.
            if self.options.include_existing_files:
                discovery.set_start(0)
            else:
                # Files present now are recorded as discovered and skipped: the stream starts after them.
                self._discover()
                discovery.set_start(discovery.last_seq)
        return self._offset(discovery.start_seq)

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.options.max_bytes_per_trigger is not None and self.options.max_files_per_trigger is None:
            return ReadMaxBytes(self.options.max_bytes_per_trigger)
        return ReadMaxFiles(self.options.max_files_per_trigger or DEFAULT_MAX_FILES_PER_TRIGGER)

    def _caps(self, limit: ReadLimit) -> tuple[int | None, int | None]:
        if isinstance(limit, ReadAllAvailable):
            return None, None
        if isinstance(limit, ReadMaxFiles):
            return limit.max_files, self.options.max_bytes_per_trigger
        if isinstance(limit, ReadMaxBytes):
            return self.options.max_files_per_trigger, limit.max_bytes
        default = self.getDefaultReadLimit()
        return self._caps(default)

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        discovery = self._discovery()
        start_seq = self._seq(start)
        max_files, max_bytes = self._caps(limit)
        if self._target_seq is None:
            backlog_files = discovery.last_seq - start_seq
            backlog_full = (max_files is not None and backlog_files >= max_files) or (
                max_bytes is not None
                and backlog_files > 0
                and discovery.bytes_between(start_seq, discovery.last_seq) >= max_bytes
            )
            if not backlog_full:
                # List only when the files already discovered do not fill this batch.
                self._discover()
            ceiling = discovery.last_seq
        else:
            ceiling = self._target_seq
        end = ceiling
        if max_files is not None:
            end = min(end, start_seq + max_files)
        if max_bytes is not None and end > start_seq:
            end = min(end, discovery.end_within_bytes(start_seq, end, max_bytes))
        return self._offset(max(end, start_seq))

    def prepareForTriggerAvailableNow(self) -> None:
        self._discover()
        self._target_seq = self._discovery().last_seq

    def reportLatestOffset(self) -> dict[str, Any] | None:
        return self._offset(self._log.last_seq) if self._log is not None else None

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        return plan_partitions(self._discovery().files(self._seq(start), self._seq(end)))

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_partition(partition, self.layout, ignore_missing_files=self.options.ignore_missing_files)

    def commit(self, end: dict[str, Any]) -> None:
        """Spark committed up to ``end``: those entries may leave the discovery log at its next compaction.

        Nothing else to do: the discovery log is written before an offset is handed out.
        """
        self._discovery().mark_committed(self._seq(end))


class CloudFilesBatchReader(DataSourceReader):
    """``spark.read.format("cloudFiles")``: every file listed now, once."""

    def __init__(self, options: CloudFilesOptions, layout: OutputLayout) -> None:
        self.options = options
        self.layout = layout

    def partitions(self) -> list[InputPartition]:
        return plan_partitions(list_source_files(self.options)) or [FilesPartition([])]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_partition(partition, self.layout, ignore_missing_files=self.options.ignore_missing_files)
