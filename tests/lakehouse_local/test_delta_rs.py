"""The delta-rs table layer: IF NOT EXISTS creation, idempotent writes and merges, reads.

Every table is read back with ``deltalake.DeltaTable`` directly, independently of the module under test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

from lakehouse_local import delta_rs

TS = pa.timestamp("us", tz="UTC")


def delta_rows(path: Path | str, *, sort_by: str | None = None) -> pa.Table:
    """The table as delta-rs reads it (pyarrow's local filesystem: delta-rs's own Python filesystem
    handler can abort the interpreter at exit)."""
    table = DeltaTable(str(path)).to_pyarrow_table(filesystem=SubTreeFileSystem(str(path), LocalFileSystem()))
    return table.sort_by(sort_by) if sort_by else table


def commits(path: Path | str) -> int:
    return len(list(Path(path, "_delta_log").glob("*.json")))


def utc(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def events(*rows: tuple[str, str, int]) -> pa.Table:
    """(event_id, action, day) rows."""
    return pa.table(
        {
            "event_id": [r[0] for r in rows],
            "action": [r[1] for r in rows],
            "event_time": pa.array([utc(r[2]) for r in rows], TS),
        }
    )


def test_create_table_if_not_exists_keeps_comments_description_and_partitioning(tmp_path):
    path = tmp_path / "daily_kpis"
    schema = pa.schema(
        [
            pa.field("event_date", pa.date32(), metadata={"comment": "UTC day of event_time"}),
            pa.field("events", pa.int64(), metadata={"comment": "valid events that day"}),
        ]
    )

    assert delta_rs.create_table(str(path), schema, description="Daily KPIs", partition_by=["event_date"]) is True
    assert delta_rs.create_table(str(path), schema, description="other") is False

    table = DeltaTable(str(path))
    assert table.version() == 0
    assert table.metadata().description == "Daily KPIs"
    assert table.metadata().partition_columns == ["event_date"]
    fields = {f["name"]: f for f in json.loads(table.schema().to_json())["fields"]}
    assert fields["event_date"]["metadata"] == {"comment": "UTC day of event_time"}
    assert fields["events"]["metadata"] == {"comment": "valid events that day"}
    assert delta_rs.table_exists(str(path)) and not delta_rs.table_exists(str(tmp_path / "nothing"))


def test_write_append_then_overwrite_round_trips_exactly(tmp_path):
    path = str(tmp_path / "t")
    first = events(("e1", "view", 20), ("e2", "click", 21))
    second = events(("e3", "purchase", 22))

    assert delta_rs.write(path, first) is True
    assert delta_rs.write(path, second, mode="append") is True
    assert delta_rows(path, sort_by="event_id").equals(pa.concat_tables([first, second]).combine_chunks())

    assert delta_rs.write(path, second, mode="overwrite") is True
    assert delta_rows(path).equals(second)
    assert delta_rs.read(path).equals(second)
    assert sorted(delta_rs.read(path, version=1, columns=["event_id"]).column("event_id").to_pylist()) == [
        "e1",
        "e2",
        "e3",
    ]


def test_naive_and_nanosecond_timestamps_are_stored_as_utc_microseconds(tmp_path):
    path = str(tmp_path / "t")
    naive_ns = pa.table(
        {
            "at": pa.array([datetime(2026, 11, 20, 13, 0, 0, 123456)], pa.timestamp("ns")),
            "nested": pa.array([{"seen": datetime(2026, 11, 20)}], pa.struct([("seen", pa.timestamp("ms"))])),
        }
    )

    delta_rs.write(path, naive_ns)

    schema = json.loads(DeltaTable(path).schema().to_json())
    assert schema["fields"][0]["type"] == "timestamp"  # Spark TIMESTAMP, not TIMESTAMP_NTZ
    assert schema["fields"][1]["type"]["fields"][0]["type"] == "timestamp"
    table = delta_rows(path)
    assert table.schema.field("at").type == TS
    assert table.column("at").to_pylist() == [datetime(2026, 11, 20, 13, 0, 0, 123456, tzinfo=UTC)]
    assert table.column("nested").to_pylist() == [{"seen": datetime(2026, 11, 20, tzinfo=UTC)}]


def test_write_with_app_id_and_version_commits_each_version_once(tmp_path):
    path = str(tmp_path / "t")
    batch = events(("e1", "view", 20))

    assert delta_rs.write(path, batch, app_id="query-1", version=0) is True
    assert delta_rs.write(path, batch, app_id="query-1", version=0) is False
    assert delta_rs.write(path, events(("e0", "view", 20)), app_id="query-1", version=0) is False
    assert commits(path) == 1
    assert delta_rows(path).num_rows == 1
    assert DeltaTable(path).transaction_version("query-1") == 0

    assert delta_rs.write(path, events(("e2", "view", 21)), app_id="query-1", version=1) is True
    assert delta_rs.write(path, events(("e9", "view", 21)), app_id="query-2", version=0) is True
    assert delta_rs.write(path, batch, app_id="query-1", version=1) is False
    assert delta_rs.committed_version(path, "query-1") == 1
    assert delta_rs.committed_version(path, "query-2") == 0
    assert delta_rs.committed_version(path, "query-3") is None
    assert delta_rs.committed_version(str(tmp_path / "none"), "query-1") is None
    assert sorted(delta_rows(path).column("event_id").to_pylist()) == ["e1", "e2", "e9"]
    assert commits(path) == 3


def test_write_rejects_half_an_app_transaction_and_unknown_modes(tmp_path):
    path = str(tmp_path / "t")
    with pytest.raises(ValueError, match="both app_id and version"):
        delta_rs.write(path, events(("e1", "view", 20)), app_id="q")
    with pytest.raises(ValueError, match="mode must be one of"):
        delta_rs.write(path, events(("e1", "view", 20)), mode="error")
    assert not delta_rs.table_exists(path)


def test_write_follows_existing_partitioning_and_refuses_another(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.write(path, events(("e1", "view", 20)), partition_by=["action"])
    delta_rs.write(path, events(("e2", "click", 20)))

    assert DeltaTable(path).metadata().partition_columns == ["action"]
    assert sorted(p["action"] for p in DeltaTable(path).partitions()) == ["click", "view"]
    with pytest.raises(ValueError, match=r"partitioned by \['action'\]"):
        delta_rs.write(path, events(("e3", "view", 20)), partition_by=["event_id"])


def test_merge_creates_the_table_and_keeps_the_first_row_of_each_key(tmp_path):
    path = str(tmp_path / "silver")
    batch = events(("e1", "view", 20), ("e1", "click", 20), ("e2", "view", 21), ("e2", "purchase", 21))

    metrics = delta_rs.merge(path, batch, keys=["event_id"])

    assert metrics["num_target_rows_inserted"] == 2
    assert (
        delta_rows(path, sort_by="event_id").to_pylist() == events(("e1", "view", 20), ("e2", "view", 21)).to_pylist()
    )


def test_merge_update_overwrites_matched_rows_and_ignore_keeps_them(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.merge(path, events(("e1", "view", 20), ("e2", "view", 20)), keys=["event_id"])

    delta_rs.merge(path, events(("e1", "click", 21), ("e3", "view", 21)), keys=["event_id"], when_matched="update")
    assert delta_rows(path, sort_by="event_id").to_pylist() == (
        events(("e1", "click", 21), ("e2", "view", 20), ("e3", "view", 21)).to_pylist()
    )

    metrics = delta_rs.merge(
        path, events(("e1", "purchase", 22), ("e4", "view", 22)), keys=["event_id"], when_matched="ignore"
    )
    assert metrics["num_target_rows_updated"] == 0 and metrics["num_target_rows_inserted"] == 1
    assert delta_rows(path, sort_by="event_id").to_pylist() == (
        events(("e1", "click", 21), ("e2", "view", 20), ("e3", "view", 21), ("e4", "view", 22)).to_pylist()
    )
    with pytest.raises(ValueError, match="when_matched"):
        delta_rs.merge(path, events(("e1", "view", 20)), keys=["event_id"], when_matched="delete")
    with pytest.raises(ValueError, match=r"key columns \['nope'\]"):
        delta_rs.merge(path, events(("e1", "view", 20)), keys=["nope"])


def test_merge_with_matched_updates_adds_to_the_rows_it_matches_once_per_batch(tmp_path):
    path = str(tmp_path / "daily")
    delta_rs.merge(path, pa.table({"day": ["2026-11-19", "2026-11-20"], "n": [5, 3], "b": [0, 0]}), keys=["day"])
    adds = {"n": "target.n + source.n", "b": "source.b"}
    batch_1 = pa.table({"day": ["2026-11-20", "2026-11-21"], "n": [4, 2], "b": [1, 1]})

    delta_rs.merge(path, batch_1, keys=["day"], matched_updates=adds, matched_when="target.b IS DISTINCT FROM source.b")
    delta_rs.merge(path, batch_1, keys=["day"], matched_updates=adds, matched_when="target.b IS DISTINCT FROM source.b")

    assert delta_rows(path, sort_by="day").to_pydict() == {
        "day": ["2026-11-19", "2026-11-20", "2026-11-21"],
        "n": [5, 7, 2],  # added once, though merged twice
        "b": [0, 1, 1],
    }


def test_merge_matches_null_keys_null_safely(tmp_path):
    path = str(tmp_path / "traffic")
    delta_rs.merge(path, pa.table({"country": ["DE", None], "events": [1, 2]}), keys=["country"])
    delta_rs.merge(path, pa.table({"country": [None, None], "events": [5, 6]}), keys=["country"])

    assert delta_rows(path, sort_by="events").to_pydict() == {"country": ["DE", None], "events": [1, 5]}


def test_merge_is_idempotent_per_app_id_and_version(tmp_path):
    path = str(tmp_path / "t")
    assert delta_rs.merge(path, events(("e1", "view", 20)), keys=["event_id"], app_id="silver", version=7) is not None
    versions = DeltaTable(path).version()

    assert delta_rs.merge(path, events(("e1", "click", 20)), keys=["event_id"], app_id="silver", version=7) is None
    assert delta_rs.merge(path, events(("e2", "click", 20)), keys=["event_id"], app_id="silver", version=6) is None

    assert DeltaTable(path).version() == versions
    assert delta_rows(path).to_pylist() == events(("e1", "view", 20)).to_pylist()
    assert DeltaTable(path).transaction_version("silver") == 7


def test_missing_table_errors_name_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "gold" / "daily_kpis"
    with pytest.raises(delta_rs.DeltaTableNotFoundError, match=r"not found at .*daily_kpis.*upstream notebook"):
        delta_rs.read(str(missing))


def test_paths_accept_file_uris_and_refuse_object_stores(tmp_path):
    uri = (tmp_path / "t").as_uri()
    delta_rs.write(uri, events(("e1", "view", 20)))
    assert delta_rs.table_exists(str(tmp_path / "t"))
    assert delta_rs.read(uri).num_rows == 1
    with pytest.raises(ValueError, match="s3:// scheme"):
        delta_rs.write("s3://bucket/gold/t", events(("e1", "view", 20)))


def test_dedup_first_keeps_row_order():
    table = pa.table({"k": [3, 1, 3, 2, 1], "v": ["a", "b", "c", "d", "e"]})
    assert delta_rs.dedup_first(table, ["k"]).to_pydict() == {"k": [3, 1, 2], "v": ["a", "b", "d"]}


def test_concurrent_merges_into_one_table_all_land_once(tmp_path):
    """Streams that share a table (each writes its rows to ops.pipeline_metrics) race to commit;
    the loser retries against the new snapshot, so every batch lands exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "metrics"
    delta_rs.create_table(str(target), events(("seed", "view", 20)).schema)
    batches = 12

    def writer(stream: str) -> None:
        for batch in range(batches):
            rows = events((f"{stream}-{batch}", "view", 20))
            delta_rs.merge(str(target), rows, keys=["event_id"], app_id=f"ops:{stream}", version=batch)
            # A replay after the race changes nothing.
            delta_rs.merge(str(target), rows, keys=["event_id"], app_id=f"ops:{stream}", version=batch)

    streams = ["bronze", "silver", "gold"]
    with ThreadPoolExecutor(len(streams)) as pool:
        for result in [pool.submit(writer, s) for s in streams]:
            result.result()

    ids = sorted(delta_rows(target).column("event_id").to_pylist())
    assert ids == sorted(f"{s}-{b}" for s in streams for b in range(batches))
    table = DeltaTable(str(target))
    assert {s: table.transaction_version(f"ops:{s}") for s in streams} == dict.fromkeys(streams, batches - 1)


def test_read_matching_keeps_only_the_rows_of_the_given_keys(tmp_path):
    delta_rs.write(str(tmp_path / "t"), events(("a", "view", 1), ("b", "click", 1)), mode="append")
    delta_rs.write(str(tmp_path / "t"), events(("c", "view", 2), ("d", "view", 2)), mode="append")
    wanted = pa.array(["c", "a", "zz"], pa.large_string())
    got = delta_rs.read_matching(str(tmp_path / "t"), "event_id", wanted, columns=["event_id", "action"])
    assert sorted(got.to_pylist(), key=lambda r: r["event_id"]) == [
        {"event_id": "a", "action": "view"},
        {"event_id": "c", "action": "view"},
    ]


def test_read_matching_on_a_table_without_rows_is_empty(tmp_path):
    delta_rs.write(str(tmp_path / "t"), events(("a", "view", 1)).slice(0, 0), mode="append")
    got = delta_rs.read_matching(str(tmp_path / "t"), "event_id", pa.array(["a"]), columns=["event_id"])
    assert got.num_rows == 0


def _dated(keys: list[str], days: list[int], values: list[int]) -> pa.Table:
    return pa.table({"k": keys, "v": values, "day": pa.array([datetime(2026, 11, d).date() for d in days], pa.date32())})


def test_read_matching_gives_partition_columns_their_values_from_the_log(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.write(path, _dated(["a", "b", "c"], [1, 2, 3], [1, 2, 3]), partition_by=["day"])
    got = delta_rs.read_matching(path, "k", pa.array(["a", "c"]), columns=["day", "k"],
                                 partitions=("day", datetime(2026, 11, 2).date(), datetime(2026, 11, 30).date()))
    assert got.to_pylist() == [{"day": datetime(2026, 11, 3).date(), "k": "c"}]


def test_read_matching_finds_keys_in_every_file_of_every_partition(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.write(path, _dated(["a", "b", "c"], [1, 1, 2], [1, 2, 3]), partition_by=["day"])
    delta_rs.write(path, _dated(["d", "e", "a"], [1, 2, 3], [4, 5, 6]), partition_by=["day"], mode="append")
    got = delta_rs.read_matching(path, "k", pa.array(["a", "d", "e", "zz"]), columns=["k", "v", "day"])
    assert sorted((r["k"], r["v"], r["day"].day) for r in got.to_pylist()) == [
        ("a", 1, 1), ("a", 6, 3), ("d", 4, 1), ("e", 5, 2)
    ]

def test_a_merge_within_a_partition_range_deletes_flagged_keys_and_moves_updated_rows(tmp_path):
    path = str(tmp_path / "t")
    delta_rs.write(path, _dated(["a", "b", "old"], [10, 11, 1], [1, 2, 3]), partition_by=["day"])
    source = _dated(["a", "b", "new", "gone"], [12, 11, 12, 12], [10, 20, 30, 0]).append_column(
        "_delete", pa.array([False, True, False, True])
    )
    metrics = delta_rs.merge(path, source, keys=["k"], target_filter="target.day >= '2026-11-10'",
                             delete_column="_delete")
    assert metrics["num_target_files_skipped_during_scan"] == 1  # the 2026-11-01 partition is not read
    rows = delta_rows(path, sort_by="k").to_pylist()
    assert [(r["k"], r["v"], r["day"].day) for r in rows] == [("a", 10, 12), ("new", 30, 12), ("old", 3, 1)]
    assert "_delete" not in DeltaTable(path).schema().to_arrow().names


def _jemalloc_options(tmp_path: Path, env: dict[str, str]) -> str:
    """jemalloc's own report of its options, from a fresh interpreter that imports the local runtime
    and then writes a table through delta-rs (``stats_print`` makes jemalloc print them at exit)."""
    import os
    import subprocess
    import sys

    script = (
        "import os, lakehouse_local, pyarrow as pa\n"
        "os.environ['_RJEM_MALLOC_CONF'] += ',stats_print:true'\n"
        "from lakehouse_local import delta_rs\n"
        f"delta_rs.write({str(tmp_path / 't')!r}, pa.table({{'a': [1, 2, 3]}}), mode='append')\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    result = subprocess.run(
        [sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout + result.stderr


def test_importing_the_runtime_makes_delta_rs_return_freed_memory(tmp_path):
    report = _jemalloc_options(tmp_path, {})
    assert "opt.dirty_decay_ms: 1000" in report


def test_a_jemalloc_setting_of_the_user_is_kept(tmp_path):
    report = _jemalloc_options(tmp_path, {"_RJEM_MALLOC_CONF": "dirty_decay_ms:5000"})
    assert "opt.dirty_decay_ms: 5000" in report


def _partitioned(path: Path, *, properties: dict[str, str] | None) -> str:
    schema = pa.schema([("event_id", pa.string()), ("day", pa.string())])
    delta_rs.create_table(str(path), schema, partition_by=["day"], properties=properties)
    return str(path)


def _data_files(path: str, day: str) -> int:
    return sum(1 for p in DeltaTable(path).file_uris() if f"day={day}" in p)


def test_auto_compaction_rewrites_a_crowded_partition_once_and_changes_no_data(tmp_path):
    from lakehouse_local.sources.delta.log import commit_files

    path = _partitioned(tmp_path / "t", properties={delta_rs.AUTO_COMPACT: "auto"})
    for n in range(6):  # six micro-batches into one day, one into another
        delta_rs.write(path, pa.table({"event_id": [f"a{n}"], "day": ["d1"]}), app_id="s", version=n)
    delta_rs.write(path, pa.table({"event_id": ["b0"], "day": ["d2"]}), app_id="s", version=6)
    before = delta_rows(path, sort_by="event_id")

    assert delta_rs.auto_compact(path, min_files=7) == 0  # no partition holds 7 small files yet
    assert delta_rs.auto_compact(path, min_files=6) == 6

    assert (_data_files(path, "d1"), _data_files(path, "d2")) == (1, 1)
    assert delta_rows(path, sort_by="event_id").to_pylist() == before.to_pylist()
    compaction = DeltaTable(path).version()
    assert DeltaTable(path).history(1)[0]["operation"] == "OPTIMIZE"
    assert commit_files(path, compaction).added == [] and not commit_files(path, compaction).removes_data
    assert delta_rs.committed_version(path, "s") == 6  # app transactions stay: replays are still skipped
    assert delta_rs.write(path, pa.table({"event_id": ["a0"], "day": ["d1"]}), app_id="s", version=0) is False


def test_auto_compaction_needs_the_table_property(tmp_path):
    path = _partitioned(tmp_path / "t", properties=None)
    for n in range(3):
        delta_rs.write(path, pa.table({"event_id": [f"a{n}"], "day": ["d1"]}))

    assert delta_rs.auto_compact(path, min_files=2) == 0
    assert _data_files(path, "d1") == 3
