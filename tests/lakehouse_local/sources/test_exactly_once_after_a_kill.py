"""Exactly-once streaming into Delta across a killed process, for ``delta`` → ``delta`` and
``cloudFiles`` → ``delta``.

The queries run in a subprocess (``resources/streaming/stream_to_delta.py``), one file per
micro-batch. The first run is killed (SIGKILL, the whole process group) while each sink holds in
the commit of batch 1: the ``delta`` source's sink *before* its Delta commit (the batch's data is
written by the tasks but not committed), the ``cloudFiles`` source's sink *after* it (committed to
Delta, not yet in Spark's commit log, so the restart replays it). A stray data file that no commit
refers to is dropped into a table between the runs, as a writer killed inside delta-rs's write
would leave. The second run restarts from the checkpoints. Each table is then read with delta-rs
directly: every row exactly once, nothing from the stray file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem
from support import REPO_ROOT, RESOURCES

from lakehouse_local import delta_rs
from lakehouse_local.sources.delta.fault_injection import HOLD_ENV, HOLD_MARKERS_ENV

SCRIPT = RESOURCES / "streaming" / "stream_to_delta.py"
VERSIONS = 3  # source files / versions, one micro-batch each; the kill comes at batch 1
ROWS_PER_VERSION = 3
RUN_TIMEOUT_S = 300


def delta_rows(path: Path) -> pa.Table:
    """The table as delta-rs reads it (pyarrow's local filesystem: delta-rs's own Python filesystem
    handler can abort the interpreter at exit)."""
    return DeltaTable(str(path)).to_pyarrow_table(filesystem=SubTreeFileSystem(str(path), LocalFileSystem()))


def query_id(work: Path, name: str) -> str:
    return json.loads((work / "checkpoints" / name / "metadata").read_text())["id"]


def spark_committed(work: Path, name: str) -> list[int]:
    commits = work / "checkpoints" / name / "commits"
    return sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())


def prepare(work: Path) -> tuple[pa.Table, list[str]]:
    """A Delta source with VERSIONS commits and a landing folder with VERSIONS JSON-lines files."""
    batches = []
    for version in range(VERSIONS):
        ids = range(version * ROWS_PER_VERSION, (version + 1) * ROWS_PER_VERSION)
        batch = pa.table({"id": pa.array(ids, pa.int64()), "label": [f"v{version}-{i}" for i in ids]})
        delta_rs.write(str(work / "src"), batch)
        batches.append(batch)
    lines = []
    landing = work / "landing"
    landing.mkdir()
    for number in range(VERSIONS):
        text = [json.dumps({"event_id": f"f{number}-{i}", "n": i}) for i in range(ROWS_PER_VERSION)]
        path = landing / f"part-{number}.jsonl"
        path.write_text("".join(line + "\n" for line in text))
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))  # listing order = file order
        lines.extend(text)
    return pa.concat_tables(batches), lines


def run(work: Path, *, hold: str | None = None, wait_for: list[str] = ()) -> None:
    """Run the queries; with ``hold``, kill the process group once every table in ``wait_for`` holds."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), SPARK_LOG_LEVEL="ERROR")
    env.pop(HOLD_ENV, None)
    markers = work / "held"
    markers.mkdir(exist_ok=True)
    for marker in markers.iterdir():
        marker.unlink()
    if hold:
        env[HOLD_ENV] = hold
        env[HOLD_MARKERS_ENV] = str(markers)
    log = (work / "run.log").open("a")
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(work)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        if not hold:
            assert process.wait(timeout=RUN_TIMEOUT_S) == 0, (work / "run.log").read_text()[-4000:]
            return
        while not all((markers / f"{name}.held").exists() for name in wait_for):
            assert process.poll() is None, (
                "the queries ended before holding:\n" + (work / "run.log").read_text()[-4000:]
            )
            assert time.monotonic() < deadline, "the sinks never held"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def test_killed_mid_commit_then_restarted_delivers_every_row_exactly_once(tmp_path):
    work = tmp_path
    source_rows, landed_lines = prepare(work)

    run(
        work,
        hold="from_delta:before_commit:1;from_files:after_commit:1",
        wait_for=["from_delta", "from_files"],
    )

    # Killed before its commit: batch 0 only, batch 1 left no trace in the table.
    assert delta_rows(work / "from_delta").num_rows == ROWS_PER_VERSION
    assert DeltaTable(str(work / "from_delta")).transaction_version(query_id(work, "from_delta")) == 0
    # Killed after its commit: batches 0 and 1 are in Delta, only batch 0 in Spark's commit log.
    assert delta_rows(work / "from_files").num_rows == 2 * ROWS_PER_VERSION
    assert DeltaTable(str(work / "from_files")).transaction_version(query_id(work, "from_files")) == 1
    assert spark_committed(work, "from_files") == [0]
    # What a writer killed inside delta-rs's write leaves: a data file that no commit refers to.
    pq.write_table(
        pa.table({"id": pa.array([-1], pa.int64()), "label": ["orphan"]}), work / "from_delta" / "orphan.parquet"
    )

    run(work)

    from_delta = delta_rows(work / "from_delta").sort_by("id")
    assert from_delta.schema.equals(source_rows.schema)
    assert from_delta.to_pylist() == source_rows.sort_by("id").to_pylist()

    from_files = delta_rows(work / "from_files")
    assert sorted(from_files.column("value").to_pylist()) == sorted(landed_lines)
    assert from_files.num_rows == VERSIONS * ROWS_PER_VERSION
    assert sorted(set(from_files.column("file_name").to_pylist())) == [f"part-{n}.jsonl" for n in range(VERSIONS)]

    for name in ("from_delta", "from_files"):
        table = DeltaTable(str(work / name))
        assert table.transaction_version(query_id(work, name)) == VERSIONS - 1
        assert table.version() == VERSIONS - 1  # one Delta commit per micro-batch, none repeated
        assert spark_committed(work, name) == list(range(VERSIONS))
