"""``python -m benchmarks.compaction``: what a micro-batch's table work costs as a stream keeps running.

Every micro-batch adds files: a Silver batch one per day it touches, every stream one row to
``ops.pipeline_metrics``. Without compaction a table holds one more file per batch, and what reads the
table, a lookup or a MERGE, opens every one of them. This measurement writes the tables of one Silver
stream as it would after N micro-batches (100 and 1,000 by default: at a 2-second trigger, the four
streams write 1,000 metrics rows in about 8 minutes), twice: tables created as the pipeline creates them
(``lakehouse.catalog.TABLE_PROPERTIES``: auto compaction, a checkpoint every 10 commits) and the same
tables with Delta's defaults (no compaction, a checkpoint every 100 commits in delta-rs).
It then times the next micro-batches' table work, the sizes and the two settings alternating:

- **append**: the batch's rows into ``silver.events`` (one day, one file), plus the compaction check
  after it, and a compaction when one is due, as the local runtime runs them;
- **lookup**: Silver's lookup of the batch's ``event_id``s in that day (``delta_rs.read_matching``), half
  of them already there (a day holds 100 batches, so the day a lookup reads is as large at every size);
- **record**: the batch's ``ops.pipeline_metrics`` row, one MERGE on its key (plus the check).

No Spark runs: the figures are delta-rs's, the local table layer's costs. Medians of ``--repeats``
batches; the largest is reported too, as a batch that compacts pays for it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from benchmarks import emit
from benchmarks import landing as landing_data
from benchmarks.procmem import load_average

ROWS_PER_BATCH = 500
FIRST_DAY = date(2026, 11, 1)
# A day holds 100 batches (50,000 events), so the lookup's day is the same size at every table size: what
# grows is the number of files and commits, not the data a lookup has to read.
BATCHES_PER_DAY = 100
SETTINGS = {"as created": True, "Delta defaults": False}
STEPS = ("append", "lookup", "record")
AIM_RATIO = 1.5


class Stream:
    """The two tables one Silver stream writes, in a folder of their own, after ``batches`` micro-batches."""

    def __init__(self, root: Path, *, compaction: bool) -> None:
        from lakehouse import catalog
        from lakehouse_local import delta_rs
        from lakehouse_local.tables import _arrow_schema

        self.compaction = compaction
        self.events = str(root / "silver" / "events")
        self.metrics = str(root / "ops" / "pipeline_metrics")
        properties = catalog.TABLE_PROPERTIES if compaction else None  # None: Delta's defaults
        for spec, path in ((catalog.SILVER_EVENTS, self.events), (catalog.PIPELINE_METRICS, self.metrics)):
            delta_rs.create_table(path, _arrow_schema(spec), partition_by=list(spec.partitioned_by), properties=properties)
        self.events_schema = _arrow_schema(catalog.SILVER_EVENTS)
        self.metrics_schema = _arrow_schema(catalog.PIPELINE_METRICS)
        self.metrics_keys = list(catalog.PIPELINE_METRICS.keys)
        self.batch_id = 0
        self.written: list[str] = []  # some of the current day's event_ids, for the lookup to find

    @property
    def day(self) -> date:
        return FIRST_DAY + timedelta(days=self.batch_id // BATCHES_PER_DAY)

    def _events(self) -> pa.Table:
        ids = [str(uuid.uuid4()) for _ in range(ROWS_PER_BATCH)]
        if self.batch_id % BATCHES_PER_DAY == 0:
            self.written = []
        self.written += ids[: ROWS_PER_BATCH // 2]
        now = datetime.now(UTC)
        columns = {f.name: pa.nulls(ROWS_PER_BATCH, f.type) for f in self.events_schema}
        columns.update(
            event_id=pa.array(ids), event_time=pa.array([now] * ROWS_PER_BATCH, pa.timestamp("us", tz="UTC")),
            event_date=pa.array([self.day] * ROWS_PER_BATCH, pa.date32()),
            payload_hash=pa.array([f"h{n}" for n in range(ROWS_PER_BATCH)]),
            _record_id=pa.array([f"r{self.batch_id}-{n}" for n in range(ROWS_PER_BATCH)]),
        )
        return pa.table([columns[f.name].cast(f.type) for f in self.events_schema], schema=self.events_schema)

    def _metrics_row(self) -> pa.Table:
        now = datetime.now(UTC)
        row = {f.name: 0 if pa.types.is_integer(f.type) else None for f in self.metrics_schema}
        row.update(layer="silver", stream_id="bench", batch_id=self.batch_id, started_at=now, committed_at=now)
        return pa.Table.from_pylist([row], schema=self.metrics_schema)

    def batch(self, *, timed: bool = False) -> dict[str, float]:
        """One micro-batch's table work; with ``timed``, the seconds of each step. Untimed batches (the
        history) record their metrics row with an append, which leaves the same files as a MERGE, faster."""
        from lakehouse_local import delta_rs

        seconds: dict[str, float] = {}
        app = "silver-bench"
        day = self.day
        rows = self._events()
        lookup_keys = pa.array(self.written[-ROWS_PER_BATCH // 2:] + rows.column("event_id").to_pylist()[: ROWS_PER_BATCH // 2])
        began = time.perf_counter()
        if timed:
            delta_rs.read_matching(self.events, "event_id", lookup_keys, columns=["event_id", "payload_hash", "_record_id"],
                                   partitions=("event_date", day, day))
            seconds["lookup"] = time.perf_counter() - began
        began = time.perf_counter()
        delta_rs.write(self.events, rows, mode="append", app_id=app, version=self.batch_id)
        delta_rs.auto_compact(self.events)
        seconds["append"] = time.perf_counter() - began
        began = time.perf_counter()
        if timed:
            delta_rs.merge(self.metrics, self._metrics_row(), keys=self.metrics_keys, app_id=f"ops:{app}",
                           version=self.batch_id)
        else:
            delta_rs.write(self.metrics, self._metrics_row(), app_id=f"ops:{app}", version=self.batch_id)
        delta_rs.auto_compact(self.metrics)
        seconds["record"] = time.perf_counter() - began
        self.batch_id += 1
        return seconds


def files(path: str) -> int:
    from deltalake import DeltaTable

    return len(DeltaTable(path).file_uris())


def run(sizes: list[int], repeats: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="compaction-", dir=landing_data.BENCH_ROOT.resolve()))
    load_before = load_average()
    streams: dict[tuple[str, int], Stream] = {}
    built: dict[str, dict] = {}
    for size in sizes:
        for setting, compaction in SETTINGS.items():
            stream = Stream(work / f"{size}-{'on' if compaction else 'off'}", compaction=compaction)
            began = time.perf_counter()
            for _ in range(size):
                stream.batch()
            streams[(setting, size)] = stream
            built[f"{setting} {size}"] = {"build_s": round(time.perf_counter() - began, 1)}
            print(f"{setting}, {size:,} batches written in {time.perf_counter() - began:.1f} s", flush=True)
    samples: dict[tuple[str, int], list[dict]] = {key: [] for key in streams}
    for _ in range(repeats):
        for key, stream in streams.items():
            samples[key].append(stream.batch(timed=True))
    runs: dict[str, dict] = {}
    for (setting, size), taken in samples.items():
        stream = streams[(setting, size)]
        total = [sum(s.values()) for s in taken]
        runs.setdefault(setting, {})[str(size)] = {
            **{f"{step}_ms": round(statistics.median(s[step] for s in taken) * 1000, 1) for step in STEPS},
            "batch_ms": round(statistics.median(total) * 1000, 1),
            "batch_ms_max": round(max(total) * 1000, 1),
            "events_files": files(stream.events),
            "metrics_files": files(stream.metrics),
            **built[f"{setting} {size}"],
        }
    small, large = str(min(sizes)), str(max(sizes))
    ratios = {setting: round(r[large]["batch_ms"] / r[small]["batch_ms"], 2) for setting, r in runs.items()}
    result = {
        "what": f"a Silver micro-batch's table work ({ROWS_PER_BATCH} rows appended to one day, its lookup, its "
        f"metrics row) after {' and '.join(f'{s:,}' for s in sizes)} micro-batches, tables as the pipeline "
        f"creates them and with Delta's defaults; medians of {repeats} batches, sizes and settings alternating",
        "sizes": sizes,
        "repeats": repeats,
        "runs": runs,
        "ratios": ratios,
        "aim_ratio": AIM_RATIO,
        "met": ratios["as created"] <= AIM_RATIO,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return result


# -- results in the benchmark report (benchmarks.report) --------------------------------------------


def summary_rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    if "error" in result:
        return [("Compaction", f"failed ({result['error']})", "", "", "")]
    small, large = str(min(result["sizes"])), str(max(result["sizes"]))
    on, off = result["runs"]["as created"], result["runs"]["Delta defaults"]
    before, after = result.get("load_average_before"), result.get("load_average_after")
    return [(
        f"Long run · a Silver micro-batch's table work after {int(small):,} → {int(large):,} micro-batches",
        f"{on[small]['batch_ms']:,.0f} → {on[large]['batch_ms']:,.0f} ms = {result['ratios']['as created']}× "
        f"(Delta's defaults: {off[small]['batch_ms']:,.0f} → {off[large]['batch_ms']:,.0f} ms = "
        f"{result['ratios']['Delta defaults']}×)",
        f"≤ {result['aim_ratio']}×",
        "yes" if result["met"] else "no",
        f"{before[0]:.1f} → {after[0]:.1f}" if before and after else "",
    )]


def details(result: dict) -> list[str]:
    if "error" in result:
        return [f"- failed ({result['error']}); log {result.get('log')}"]
    out = [f"- {result['what']}."]
    for setting, runs in result["runs"].items():
        for size, r in runs.items():
            out.append(
                f"- {setting}, after {int(size):,} batches: append {r['append_ms']} ms, lookup {r['lookup_ms']} ms, "
                f"record {r['record_ms']} ms; batch {r['batch_ms']} ms (max {r['batch_ms_max']} ms); files: "
                f"silver.events {r['events_files']:,}, ops.pipeline_metrics {r['metrics_files']:,}; written in "
                f"{r['build_s']} s"
            )
    out.append(f"- ratios, largest / smallest: {result['ratios']}")
    out.append(f"- load average before/after: {result.get('load_average_before')} / {result.get('load_average_after')}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compaction", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="micro-batches already written, comma-separated")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    landing_data.BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(size) for size in args.sizes.split(",") if size.strip())
    result = {"name": "compaction", **run(sizes, args.repeats)}
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
