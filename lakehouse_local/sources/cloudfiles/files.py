"""Reading the files of one Spark task into Arrow record batches.

Partition planning (files bin-packed into a few tasks of similar size), fetching (S3 objects a few
at a time ahead of the consumer), and each file's rows as a table of the output layout: text lines,
or JSON through :mod:`lakehouse_local.sources.cloudfiles.json_conversion`.
"""

from __future__ import annotations

import gzip
import heapq
import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
from pyspark.sql.datasource import InputPartition

from lakehouse_local import storage
from lakehouse_local.sources.cloudfiles.json_conversion import json_fast, json_slow, text_lines
from lakehouse_local.sources.cloudfiles.layout import OutputLayout, assemble
from lakehouse_local.sources.cloudfiles.options import BINARY_FILE
from lakehouse_local.storage import FileInfo

# Partition planning: about two tasks per core, but no task smaller than this unless files are few.
MIN_PARTITION_BYTES = 8 * 1024 * 1024
# Concurrent object GETs inside one task: S3 latency, not bandwidth, dominates small files.
S3_PREFETCH = 8


class FilesPartition(InputPartition):
    """The files one Spark task reads: ``(path, size, modification_time_ms)`` tuples in discovery order."""

    def __init__(self, files: Sequence[tuple[str, int, int]]) -> None:
        super().__init__(None)
        self.files = list(files)

    def __repr__(self) -> str:
        return f"FilesPartition({len(self.files)} files)"


def plan_partitions(files: Sequence[FileInfo], *, max_partitions: int | None = None) -> list[FilesPartition]:
    """Bin-pack files into a few tasks of similar byte size (largest first into the lightest task)."""
    if not files:
        return []
    total = sum(f.size for f in files)
    max_partitions = max_partitions or max(1, 2 * (os.cpu_count() or 1))
    count = max(1, min(len(files), max_partitions, math.ceil(total / MIN_PARTITION_BYTES)))
    bins: list[tuple[int, int]] = [(0, index) for index in range(count)]
    members: list[list[int]] = [[] for _ in range(count)]
    for order in sorted(range(len(files)), key=lambda i: -files[i].size):
        load, index = heapq.heappop(bins)
        members[index].append(order)
        heapq.heappush(bins, (load + files[order].size, index))
    return [
        FilesPartition([(files[i].path, files[i].size, files[i].modification_time_ms) for i in sorted(group)])
        for group in members
        if group
    ]


def read_partition(
    partition: InputPartition, layout: OutputLayout, *, ignore_missing_files: bool = False
) -> Iterator[pa.RecordBatch]:
    """Arrow record batches for every file of ``partition``, in order, matching ``layout.schema`` exactly.

    A file that is gone since it was discovered fails the read, naming it, unless ``ignore_missing_files``:
    then ``binaryFile`` returns its row with a null ``content`` (so the reader can record it) and the
    other formats skip it.
    """
    files = [FileInfo(*entry) for entry in getattr(partition, "files", None) or ()]
    if not files:
        return
    arrow_schema = layout.arrow_schema
    for info, raw in _fetch(files, ignore_missing=ignore_missing_files):
        if layout.file_format == BINARY_FILE:
            yield _binary_row(info, raw, arrow_schema)
            continue
        if raw is None:
            continue
        try:
            data = gzip.decompress(raw) if info.path.endswith(".gz") else raw
            table = _file_table(data, info, layout, arrow_schema)
        except Exception as error:
            raise RuntimeError(f"cloudFiles source: cannot read {info.path}: {error}") from error
        yield from table.to_batches()


def _binary_row(info: FileInfo, content: bytes | None, arrow_schema: pa.Schema) -> pa.RecordBatch:
    values = [[info.path], [info.modification_time_ms * 1000], [info.size], [content]]
    return pa.RecordBatch.from_arrays([pa.array(v, f.type) for v, f in zip(values, arrow_schema, strict=True)],
                                      schema=arrow_schema)


def _read(uri: str, ignore_missing: bool) -> bytes | None:
    try:
        return storage.read_bytes(uri)
    except FileNotFoundError:
        if ignore_missing:
            return None
        raise FileNotFoundError(
            f"cloudFiles source: {uri} was discovered but is gone (deleted or expired before it was read). "
            "Set the option ignoreMissingFiles=true to go on without it."
        ) from None


def _fetch(files: Sequence[FileInfo], *, ignore_missing: bool = False) -> Iterator[tuple[FileInfo, bytes | None]]:
    """File contents in order (None for a missing file when ``ignore_missing``); S3 objects are fetched a few
    at a time ahead of the consumer."""
    if len(files) == 1 or not any(storage.is_s3(f.path) for f in files):
        for info in files:
            yield info, _read(info.path, ignore_missing)
        return
    with ThreadPoolExecutor(max_workers=S3_PREFETCH, thread_name_prefix="cloudfiles-get") as pool:
        pending: deque = deque()
        queue = iter(files)
        for info in queue:
            pending.append((info, pool.submit(_read, info.path, ignore_missing)))
            if len(pending) >= S3_PREFETCH:
                break
        while pending:
            info, future = pending.popleft()
            next_info = next(queue, None)
            if next_info is not None:
                pending.append((next_info, pool.submit(_read, next_info.path, ignore_missing)))
            yield info, future.result()


def _file_table(data: bytes, info: FileInfo, layout: OutputLayout, arrow_schema: pa.Schema) -> pa.Table:
    if layout.file_format == "text":
        values = {"value": pa.array(text_lines(data), pa.string())} if layout.data_fields else {}
        rows = len(values["value"]) if values else _count_text_lines(data)
        return assemble(values, rows, None, None, info, layout, arrow_schema)
    parsed = json_fast(data, info, layout)
    if parsed is None:
        parsed = json_slow(data, info, layout)
    columns, rows, rescued, corrupt = parsed
    return assemble(columns, rows, rescued, corrupt, info, layout, arrow_schema)


def _count_text_lines(data: bytes) -> int:
    return len(text_lines(data))
