"""The Delta log of a local table: its versions, metadata, snapshot files and the files each commit adds.

The log is read one way, from its own files in ``_delta_log``, for snapshots and commits alike. A
streaming read needs the actions of single commits: the files a commit added, in log order, with
their ``dataChange`` flags, and whether it removed data. delta-rs does not expose those; it gives
whole snapshots (``get_add_actions``) and commit summaries (``history``). The log files give both:
a commit is one ``<version>.json`` file, and a snapshot is the last checkpoint at or before its
version plus the commits after it, replayed (``add`` puts a file in the table, ``remove`` takes it
out, the last ``metaData`` and ``protocol`` hold). Snapshot files and commit files therefore carry
the same paths and the same partition values: strings as the log writes them, an empty string
meaning null as in Delta.

Checkpoints are read in their classic form (one ``<version>.checkpoint.parquet``, or all parts of
``<version>.checkpoint.<part>.<parts>.parquet``), which is what delta-rs and Spark write. A
``timestampAsOf`` resolves as delta-rs resolves it: the last commit whose file was written at or
before the timestamp, or the first commit when the timestamp is older than all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path

from pyspark.sql.types import StructType

from lakehouse_local import delta_rs
from lakehouse_local.sources.delta.errors import DeltaSourceError

LOG_FOLDER = "_delta_log"
UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_FILE = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
_CHECKPOINT_ACTIONS = ("add", "metaData", "protocol")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DataFile:
    """One data file of a table version: its path relative to the table and partition values.

    ``row_groups`` makes it a piece of the file: those of its Parquet row groups only, ``size`` their share
    of the file's bytes (a streaming read cuts a large file into pieces, see ``read.pieces``).
    """

    path: str
    partition_values: tuple[tuple[str, str | None], ...]
    size: int
    modification_time: int
    row_groups: tuple[int, ...] | None = None


@dataclass(frozen=True)
class CommitFiles:
    """What one commit did to the data: the files it added, in log order, and whether it removed rows."""

    added: list[DataFile]
    removes_data: bool


def table_spark_schema(path: str) -> StructType:
    """The Spark schema of the Delta table at ``path``, column comments kept as field metadata.

    Delta serialises its schema in Spark's own JSON form, so the conversion is exact.
    """
    _, metadata, _, _ = _replay(path)
    return StructType.fromJson(json.loads(metadata["schemaString"]))


def table_id(path: str) -> str:
    """The id Delta gave the table when it was created (a replaced table gets a new one)."""
    _, metadata, _, _ = _replay(path)
    return str(metadata["id"])


def latest_version(path: str) -> int:
    return _Log(path).latest


def snapshot_files(path: str, version: int | str | None = None) -> tuple[int, str, list[DataFile]]:
    """(version, table id, files) of a snapshot, files sorted by modification time then path.

    ``version`` is a version number, a ``timestampAsOf`` timestamp, or None for the latest version.
    """
    snapshot_version, metadata, protocol, adds = _replay(path, version)
    _check_readable(path, protocol.get("readerFeatures"))
    files = sorted((_data_file(add) for add in adds.values()), key=lambda f: (f.modification_time, f.path))
    return snapshot_version, str(metadata["id"]), files


def commit_files(path: str, version: int) -> CommitFiles:
    """The data files commit ``version`` added (``dataChange``), in log order, for a streaming read."""
    try:
        actions = list(_commit_actions(Path(path) / LOG_FOLDER / f"{version:020d}.json"))
    except FileNotFoundError:
        raise DeltaSourceError(
            f"delta stream from {path}: commit {version} is no longer in _delta_log (log retention "
            "removed it). Restart the stream with a new checkpoint (and startingVersion if needed)."
        ) from None
    added: list[DataFile] = []
    removes_data = False
    for action in actions:
        if "protocol" in action:
            features = set(action["protocol"].get("readerFeatures") or []) & UNSUPPORTED_READER_FEATURES
            if features:
                raise DeltaSourceError(
                    f"delta stream from {path}: commit {version} enables {sorted(features)}, which the "
                    "local delta source does not read."
                )
        add = action.get("add")
        if add is not None and add.get("dataChange", True):
            if add.get("deletionVector"):
                raise DeltaSourceError(
                    f"delta stream from {path}: commit {version} uses deletion vectors, which the "
                    "local delta source does not read."
                )
            added.append(_data_file(add))
        remove = action.get("remove")
        if remove is not None and remove.get("dataChange", True):
            removes_data = True
    return CommitFiles(added, removes_data)


class _Log:
    """The commit and (complete) checkpoint files in a table's ``_delta_log``, by version."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.commits: dict[int, Path] = {}
        parts: dict[tuple[int, int], list[Path]] = {}
        folder = Path(table) / LOG_FOLDER
        for entry in folder.iterdir() if folder.is_dir() else ():
            if match := _COMMIT_FILE.match(entry.name):
                self.commits[int(match[1])] = entry
            elif match := _CHECKPOINT_FILE.match(entry.name):
                parts.setdefault((int(match[1]), int(match[3] or 1)), []).append(entry)
        if not self.commits:
            raise delta_rs.DeltaTableNotFoundError(table)
        self.checkpoints = {version: sorted(files) for (version, count), files in parts.items() if len(files) == count}

    @property
    def latest(self) -> int:
        return max(self.commits)

    def version_at(self, timestamp: str) -> int:
        """The version current at ``timestamp`` (RFC 3339), from the commit files' modification times."""
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise DeltaSourceError(
                f"delta read of {self.table}: timestampAsOf must be an RFC 3339 timestamp with a zone, "
                f"such as 2026-11-20T13:00:00Z; got {timestamp!r}"
            )
        target_ms = (moment - _EPOCH) // timedelta(milliseconds=1)
        written = [v for v, commit in self.commits.items() if commit.stat().st_mtime_ns // 1_000_000 <= target_ms]
        return max(written, default=min(self.commits))

    def checkpoint_actions(self, version: int) -> Iterator[dict]:
        """The file, metadata and protocol actions of the checkpoint of ``version``."""
        import pyarrow.parquet as pq

        for part in self.checkpoints[version]:
            parquet = pq.ParquetFile(part)
            columns = [name for name in _CHECKPOINT_ACTIONS if name in parquet.schema_arrow.names]
            table = parquet.read(columns=columns, use_threads=False)
            for name in columns:
                for value in table.column(name).to_pylist():
                    if value is not None:
                        yield {name: value}


def _replay(path: str, version: int | str | None = None) -> tuple[int, dict, dict, dict[str, dict]]:
    """(version, metaData, protocol, add actions by path) of a table version, replayed from the log."""
    table_log = _Log(path)
    if version is None:
        target = table_log.latest
    elif isinstance(version, str):
        target = table_log.version_at(version)
    else:
        target = version
    if not 0 <= target <= table_log.latest:
        raise DeltaSourceError(f"Delta table at {path} has no version {target} (the latest is {table_log.latest})")
    base = max((v for v in table_log.checkpoints if v <= target), default=-1)
    missing = [v for v in range(base + 1, target + 1) if v not in table_log.commits]
    if missing:
        raise DeltaSourceError(
            f"Delta table at {path}: version {target} cannot be read, commit {missing[0]} is no longer in "
            "_delta_log (log retention removed it)."
        )
    checkpoint = table_log.checkpoint_actions(base) if base >= 0 else iter(())
    commits = (_commit_actions(table_log.commits[v]) for v in range(base + 1, target + 1))
    metadata: dict | None = None
    protocol: dict | None = None
    adds: dict[str, dict] = {}
    for action in chain(checkpoint, *commits):
        if (add := action.get("add")) is not None:
            adds[add["path"]] = add
        elif (remove := action.get("remove")) is not None:
            adds.pop(remove["path"], None)
        elif action.get("metaData") is not None:
            metadata = action["metaData"]
        elif action.get("protocol") is not None:
            protocol = action["protocol"]
    if metadata is None or protocol is None:
        raise DeltaSourceError(f"Delta table at {path}: _delta_log has no metadata or protocol for version {target}")
    return target, metadata, protocol, adds


def _commit_actions(commit: Path) -> Iterator[dict]:
    for line in commit.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def _check_readable(path: str, reader_features: list[str] | None) -> None:
    features = set(reader_features or []) & UNSUPPORTED_READER_FEATURES
    if features:
        raise DeltaSourceError(
            f"Delta table at {path} uses the reader features {sorted(features)}, which the local "
            "delta source does not read. Recreate the table locally without them "
            "(delta.enableDeletionVectors=false, no column mapping), or read it on Databricks."
        )


def _data_file(add: dict) -> DataFile:
    # partitionValues is a JSON object in a commit and a list of pairs in a checkpoint read by pyarrow.
    values = add.get("partitionValues") or {}
    pairs = values.items() if isinstance(values, dict) else values
    return DataFile(
        path=add["path"],
        partition_values=tuple(sorted((column, value if value != "" else None) for column, value in pairs)),
        size=int(add.get("size") or 0),
        modification_time=int(add.get("modificationTime") or 0),
    )
