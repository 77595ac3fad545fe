"""The ``cloudFiles`` discovery log and stream offsets, driven without Spark.

The reader is called as Spark's planner calls it (``initialOffset``, ``latestOffset``, ``partitions``);
incremental listing, backfills and what the log forgets are in ``test_cloudfiles_discovery.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxBytes, ReadMaxFiles

from lakehouse_local.sources.cloudfiles import TEXT_SCHEMA, CloudFilesOptions, DiscoveryLog
from lakehouse_local.storage import FileInfo


def write_local(folder: Path, name: str, text: str, *, mtime_s: int) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime_s, mtime_s))


def _stream_reader(landing: Path, schema_location: Path, **options):
    from lakehouse_local.sources.cloudfiles import CloudFilesStreamReader, OutputLayout

    raw = {"cloudFiles.format": "text", "path": str(landing), "cloudFiles.schemaLocation": str(schema_location)}
    parsed = CloudFilesOptions.from_options({**raw, **options})
    return CloudFilesStreamReader(parsed, OutputLayout.for_schema(TEXT_SCHEMA, parsed))


def test_discovery_log_survives_reopen_and_compaction(tmp_path, monkeypatch):
    monkeypatch.setattr(DiscoveryLog, "SEGMENTS_PER_COMPACTION", 3)
    location = str(tmp_path / "schema")
    discovery = DiscoveryLog.open(location, "s3://b/landing")
    listing: list[FileInfo] = []
    for n in range(5):
        listing = listing + [FileInfo(f"s3://b/landing/{n}.json", 10 + n, 1_000 + n)]
        assert discovery.record(listing) == 1
        assert discovery.record(listing) == 0  # already discovered: not recorded twice

    reopened = DiscoveryLog.open(location, "s3://b/landing")

    assert reopened.log_id == discovery.log_id
    assert [f.path for f in reopened.files(0, reopened.last_seq)] == [f"s3://b/landing/{n}.json" for n in range(5)]
    assert reopened.record(listing) == 0
    assert reopened.bytes_between(1, 3) == 11 + 12
    assert sorted(p.name for p in (tmp_path / "schema" / "_discovery").iterdir()) == [
        "00000000000000000003.compact.jsonl",
        "00000000000000000004.jsonl",
        "00000000000000000005.jsonl",
        "id",
        "owner",
    ]
    with pytest.raises(RuntimeError, match="belongs to a stream reading s3://b/landing"):
        DiscoveryLog.open(location, "s3://b/other")
    # Two writers on one log: the second to append a segment is refused, nothing is overwritten.
    reopened.record([FileInfo("s3://b/landing/x.json", 1, 2_000)])
    with pytest.raises(RuntimeError, match="another stream is writing"):
        discovery.record([FileInfo("s3://b/landing/y.json", 1, 2_000)])


def test_offsets_honour_read_limits_and_list_only_when_needed(tmp_path, monkeypatch):
    from lakehouse_local.sources.cloudfiles import readers

    landing = tmp_path / "landing"
    for n in range(1, 6):
        write_local(landing, f"{n}.txt", "x" * n, mtime_s=1_714_557_600 + n)
    listings = []
    real_list = readers.list_source_files
    monkeypatch.setattr(
        readers, "list_source_files", lambda options, **where: listings.append(where) or real_list(options, **where)
    )
    reader = _stream_reader(landing, tmp_path / "schema", **{"cloudFiles.maxFilesPerTrigger": "2"})

    start = reader.initialOffset()
    assert reader.getDefaultReadLimit() == ReadMaxFiles(2)
    first = reader.latestOffset(start, ReadMaxFiles(2))
    second = reader.latestOffset(first, ReadMaxFiles(2))  # 3 files discovered, 2 admitted: no listing
    everything = reader.latestOffset(second, ReadAllAvailable())
    one_big_file = reader.latestOffset(second, ReadMaxBytes(4))  # 5.txt is 5 bytes: admitted alone
    one_byte = reader.latestOffset(start, ReadMaxBytes(1))

    assert [o["seq"] for o in (start, first, second, everything, one_big_file, one_byte)] == [0, 2, 4, 5, 5, 1]
    # Listed for the first batch and for ReadAllAvailable; otherwise the discovered backlog filled the batch.
    assert len(listings) == 2
    (partition,) = reader.partitions(first, second)
    assert [Path(p).name for p, _, _ in partition.files] == ["3.txt", "4.txt"]


def test_offsets_from_another_discovery_log_are_refused(tmp_path):
    reader = _stream_reader(tmp_path / "landing", tmp_path / "schema")
    with pytest.raises(RuntimeError, match="schemaLocation was cleared or changed"):
        reader.latestOffset({"seq": 7, "log": "some-other-log"}, ReadAllAvailable())
