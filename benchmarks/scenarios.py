"""The benchmark scenarios, each run in a fresh process (fresh JVM): ``python -m benchmarks.scenarios NAME``.

:mod:`benchmarks.run` starts one process per measurement and collects the JSON each one writes to
``--out``. Every process starts its own session with
:func:`lakehouse_local.session.get_or_create_session` and samples its own process tree's memory
(:mod:`benchmarks.procmem`), so memory peaks belong to one measurement.

Measurements (``NAME``):

``ingest-bronze``      notebook 01 (Bronze: ``cloudFiles`` text → ``bronze.events``), availableNow
``ingest-cloudfiles``  ``cloudFiles`` JSON with the contract schema → ``writeStream.format("delta")``
``ingest-spark``       plain Spark: ``readStream.schema(contract).json(folder)`` → parquet
``pipeline``           notebooks 00-03, availableNow, landing → Gold
``pipeline-spark``     plain Spark single hop: json → watermark → dropDuplicatesWithinWatermark → parquet
``freshness``          embedded S3 + producer in real time + the three notebooks on a processing-time trigger
``capacity``           notebooks 01, 02 and 03 one after the other in micro-batches of the freshness run's size:
                       the CPU each layer uses per event, and the cores the three need at a given rate
``silver-steps``       the steps of Silver's stream job one by one over one Bronze table: CPU per line of each
                       step (JVM, Python workers, driver), read → hand-off to Python → dedup verdicts → parse →
                       rows to the driver
``state-bronze``       prepares ``bronze.events`` for the state measurement (not timed)
``state``              the Silver stream alone over that Bronze table: dedup state rows and memory per batch
``state-reset``        a Silver reset over that Bronze table with the widgets' default read limits: its first
                       batches' sizes and memory
``producer``           ``benchmarks/producer_throughput.py`` in its own process, its output parsed

Wall time is measured from the start of the stream (or notebook) to the end of the availableNow
run: the session start (JVM launch, a few seconds) is reported separately and not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

from benchmarks import emit
from benchmarks import landing as landing_data
from benchmarks.procmem import MemorySampler, load_average

RUN_ROOT = landing_data.BENCH_ROOT / "runs"
NOTEBOOK_NAMES = ["00_setup.py", "01_bronze_autoloader.py", "02_silver_stream.py", "03_gold_metrics.py"]
# Enough progress entries to keep every micro-batch of the longest run.
SESSION_CONF = {"spark.sql.streaming.numRecentProgressUpdates": "5000"}
DURATION_KEYS = ("latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets", "triggerExecution")

log = logging.getLogger("benchmarks")


# -- helpers ----------------------------------------------------------------------------------------


def _session(connect: bool = False):
    from lakehouse_local.session import connect_session, get_or_create_session

    began = time.perf_counter()
    if connect:
        spark = connect_session("clickstream-benchmark")
        spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", SESSION_CONF["spark.sql.streaming.numRecentProgressUpdates"])
    else:
        spark = get_or_create_session("clickstream-benchmark", extra_conf=SESSION_CONF)
    return spark, time.perf_counter() - began


def _fresh(name: str) -> Path:
    folder = (RUN_ROOT / name).resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _notebook(name: str) -> Path:
    from lakehouse_local.cli import NOTEBOOKS_DIR

    return NOTEBOOKS_DIR / name


def _parameters(landing: str, lakehouse: Path, *, trigger: str = "availableNow", files: int = 1000,
                table_files: int = 1000, reset: bool = False) -> dict[str, str]:
    return {
        "landing_path": landing,
        "lakehouse": str(lakehouse),
        "checkpoint_root": "",
        "trigger": trigger,
        "watermark_delay": "10 minutes",
        "max_files_per_trigger": str(files),
        "max_table_files_per_trigger": str(table_files),
        "reset": "silver" if reset else "false",
    }


def progress_summary(progress: list) -> dict:
    """Batches, input rows and the summed ``durationMs`` breakdown of a query's progress reports."""
    batches = {}
    for p in progress:
        p = p if isinstance(p, dict) else json.loads(p.json)
        batches[p["batchId"]] = p
    ordered = [batches[k] for k in sorted(batches)]
    durations = {key: 0 for key in DURATION_KEYS}
    for p in ordered:
        for key, value in (p.get("durationMs") or {}).items():
            if key in durations:
                durations[key] += int(value)
    return {
        "batches": len(ordered),
        "input_rows": sum(int(p.get("numInputRows") or 0) for p in ordered),
        "duration_ms": durations,
    }


def _query_progress(query) -> list[dict]:
    """The query's progress reports as plain dicts.

    Under Spark Connect (pyspark 4.2) a report is a dict whose ``numInputRows`` is None, while its
    ``numInputRows`` attribute holds the count; both modes' reports have the attribute.
    """
    reports = []
    for progress in query.recentProgress:
        report = dict(progress) if isinstance(progress, dict) else json.loads(progress.json)
        report["numInputRows"] = progress.numInputRows
        reports.append(report)
    return reports


_SAMPLER: MemorySampler | None = None


def _measure(fn, *args, **kwargs) -> dict:
    """Run ``fn`` with a memory sampler around it; add memory and load average to its result."""
    global _SAMPLER
    sampler = _SAMPLER = MemorySampler().start()
    load_before = load_average()
    try:
        result = fn(*args, **kwargs)
    finally:
        memory = sampler.stop()
    result["memory"] = memory
    result["load_average_before"] = load_before
    result["load_average_after"] = load_average()
    return result


def _contract_schema(nullable: bool = False, *, extras: bool = False):
    from pyspark.sql.types import StringType, StructField, StructType

    from lakehouse.contract import spark_schema
    from lakehouse_local.sources.cloudfiles import METADATA_TYPE

    schema = spark_schema()
    if not nullable and not extras:
        return schema
    fields = [StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields]
    if extras:
        fields += [StructField("_rescued_data", StringType(), True), StructField("_metadata", METADATA_TYPE, True)]
    return StructType(fields)


def _delta_rows(path: Path) -> int:
    """Rows of a Delta table from its add actions' statistics (no data read)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    actions = DeltaTable(str(path)).get_add_actions(flatten=True)
    return int(pa.table(actions).column("num_records").to_pandas().sum())


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in path.glob("*.parquet"))


# -- ingest -----------------------------------------------------------------------------------------


def ingest_bronze(events: int, files_per_trigger: int) -> dict:
    """Notebook 01 (after 00_setup) over the landing folder, one availableNow run."""
    from lakehouse_local.notebooks import run_notebook

    info = landing_data.ensure_landing(events)
    spark, startup = _session()
    lake = _fresh("ingest-bronze") / "lakehouse"
    params = _parameters(info["path"], lake, files=files_per_trigger)
    run_notebook(_notebook(NOTEBOOK_NAMES[0]), spark, params)
    began = time.perf_counter()
    namespace = run_notebook(_notebook(NOTEBOOK_NAMES[1]), spark, params)
    seconds = time.perf_counter() - began
    rows = _delta_rows(lake / "bronze" / "events")
    return {
        "what": "notebook 01 (cloudFiles text -> bronze.events, foreachBatch + delta-rs append + ops metrics)",
        "max_files_per_trigger": files_per_trigger,
        "lines": info["lines"],
        "rows_written": rows,
        "seconds": round(seconds, 2),
        "events_per_s": round(info["lines"] / seconds),
        "session_start_s": round(startup, 2),
        "progress": progress_summary(_query_progress(namespace["query"])),
    }


def ingest_cloudfiles(events: int, files_per_trigger: int) -> dict:
    """``cloudFiles`` JSON with the contract schema (+ _rescued_data, _metadata) → ``format("delta")``."""
    info = landing_data.ensure_landing(events)
    spark, startup = _session()
    folder = _fresh("ingest-cloudfiles")
    table = folder / "events"
    began = time.perf_counter()
    query = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "json")
        .option("cloudFiles.schemaLocation", str(folder / "_schema"))
        .option("cloudFiles.maxFilesPerTrigger", str(files_per_trigger))
        .schema(_contract_schema(extras=True))
        .load(info["path"])
        .writeStream.format("delta")
        .option("checkpointLocation", str(folder / "_checkpoint"))
        .trigger(availableNow=True)
        .start(str(table))
    )
    query.awaitTermination()
    seconds = time.perf_counter() - began
    return {
        "what": "cloudFiles json + contract schema + _rescued_data + _metadata -> writeStream.format('delta')",
        "max_files_per_trigger": files_per_trigger,
        "lines": info["lines"],
        "rows_written": _delta_rows(table),
        "seconds": round(seconds, 2),
        "events_per_s": round(info["lines"] / seconds),
        "session_start_s": round(startup, 2),
        "progress": progress_summary(_query_progress(query)),
    }


def _plain_json_stream(spark, path: str):
    return (
        spark.readStream.schema(_contract_schema())
        # cloudFiles lists recursively; so does the plain file source with this option (no partition columns).
        .option("recursiveFileLookup", "true")
        .option("maxFilesPerTrigger", "1000")
        .json(path)
    )


def ingest_spark(events: int) -> dict:
    """Plain Spark: the built-in json file source with the contract schema → parquet."""
    info = landing_data.ensure_landing(events)
    spark, startup = _session()
    folder = _fresh("ingest-spark")
    began = time.perf_counter()
    query = (
        _plain_json_stream(spark, info["path"])
        .writeStream.format("parquet")
        .option("checkpointLocation", str(folder / "_checkpoint"))
        .trigger(availableNow=True)
        .start(str(folder / "out"))
    )
    query.awaitTermination()
    seconds = time.perf_counter() - began
    return {
        "what": "spark.readStream.schema(contract).json(folder) -> writeStream.format('parquet')",
        "lines": info["lines"],
        "rows_written": _parquet_rows(folder / "out"),
        "seconds": round(seconds, 2),
        "events_per_s": round(info["lines"] / seconds),
        "session_start_s": round(startup, 2),
        "progress": progress_summary(_query_progress(query)),
    }


# -- whole pipeline ---------------------------------------------------------------------------------


def pipeline(events: int, files_per_trigger: int, table_files_per_trigger: int, connect: bool = False) -> dict:
    """Notebooks 00-03 availableNow over the landing folder; events/s = landed lines / wall seconds.
    ``connect``: the notebooks' ``spark`` is a Spark Connect client, as on serverless."""
    from lakehouse import reconcile
    from lakehouse_local.notebooks import run_notebook
    from lakehouse_local.tables import FolderLakehouse

    info = landing_data.ensure_landing(events)
    spark, startup = _session(connect)
    lake = _fresh("pipeline-connect" if connect else "pipeline") / "lakehouse"
    params = _parameters(info["path"], lake, files=files_per_trigger, table_files=table_files_per_trigger)
    per_notebook = {}
    progress = {}
    began = time.perf_counter()
    for name in NOTEBOOK_NAMES:
        t0 = time.perf_counter()
        namespace = run_notebook(_notebook(name), spark, params)
        per_notebook[name] = round(time.perf_counter() - t0, 2)
        if "query" in namespace:
            progress[name] = progress_summary(_query_progress(namespace["query"]))
    seconds = time.perf_counter() - began
    c = reconcile.conservation(FolderLakehouse(spark, str(lake)))
    return {
        "what": "notebooks 00-03 (Bronze opening files, Silver's contract reader + watermark dedup + lookup + append "
        "+ quarantine, incremental Gold), availableNow" + (", Spark Connect" if connect else ", classic"),
        "max_files_per_trigger": files_per_trigger,
        "max_table_files_per_trigger": table_files_per_trigger,
        "lines": info["lines"],
        "seconds": round(seconds, 2),
        "events_per_s": round(info["lines"] / seconds),
        "per_notebook_s": per_notebook,
        "session_start_s": round(startup, 2),
        "progress": progress,
        "conservation": {
            "holds": c.holds,
            "landed_lines": c.landed_lines,
            "silver_rows": c.silver_rows,
            "quarantined_rows": c.quarantined_rows,
            "duplicates_removed": c.duplicates_removed,
            "late_not_in_silver": c.late_not_in_silver,
        },
    }


def capacity(events: int, files_per_trigger: int, table_files_per_trigger: int, gold_table_files: int,
             rate: float) -> dict:
    """Notebooks 01, 02 and 03 availableNow, one after the other over the same landing, in micro-batches about
    as large as the freshness run's at ``rate``: the CPU seconds each layer used (JVM, Python driver, Python
    workers) per 1,000 events, and how many cores the three streams would keep busy together at ``rate``.

    Each layer runs alone, so what one costs is not blurred by the others competing for the cores; the JVM
    is warm from the layer before (as it is in a running pipeline), except for Bronze."""
    from lakehouse_local.notebooks import run_notebook

    info = landing_data.ensure_landing(events)
    spark, startup = _session()
    lake = _fresh("capacity") / "lakehouse"
    params = _parameters(info["path"], lake, files=files_per_trigger, table_files=table_files_per_trigger)
    params["gold_max_table_files_per_trigger"] = str(gold_table_files)
    run_notebook(_notebook(NOTEBOOK_NAMES[0]), spark, params)
    layers = {}
    for name in NOTEBOOK_NAMES[1:]:
        cpu_before, began = _SAMPLER.cpu(), time.perf_counter()
        namespace = run_notebook(_notebook(name), spark, params)
        seconds = time.perf_counter() - began
        cpu = {role: round(used - cpu_before[role], 1) for role, used in _SAMPLER.cpu().items()}
        total = sum(cpu.values())
        progress = progress_summary(_query_progress(namespace["query"]))
        layers[name] = {
            "batches": progress.get("batches"),
            "seconds": round(seconds, 1),
            "cpu_s": cpu,
            "cpu_ms_per_1000_events": round(1000 * total / info["lines"] * 1000),
            "cores_at_rate": round(total / info["lines"] * rate, 2),
        }
    return {
        "what": (
            f"notebooks 01-03 availableNow one after the other over {info['lines']:,} landed lines: Bronze "
            f"{files_per_trigger} files, Silver {table_files_per_trigger} Bronze files and Gold {gold_table_files} "
            f"Silver files per micro-batch; cores at {rate:g} events/s = CPU seconds per event x {rate:g}"
        ),
        "lines": info["lines"],
        "rate": rate,
        "layers": layers,
        "cores_at_rate": round(sum(layer["cores_at_rate"] for layer in layers.values()), 2),
        "cores": os.cpu_count(),
        "session_start_s": round(startup, 2),
    }


# What each step of Silver's stream job adds, cheapest first: each step's query is the step before plus one thing.
SILVER_STEPS = (
    ("read", "read bronze.events (the local `delta` source)"),
    ("hand_off", "read + a `mapInArrow` that returns its input (the trip to a Python worker and back)"),
    ("verdicts", "read + the dedup branch's `mapInArrow` (`ContractVerdicts`)"),
    ("parse", "read + the parse (`ContractReader`)"),
    ("to_driver", "read + the parse, its rows to the driver as Arrow (`toArrow`)"),
)


def silver_steps(events: int, rounds: int) -> dict:
    """Silver's stream job taken apart over the same Bronze table: the CPU per line of reading Bronze, handing
    its rows to a Python worker and back, the dedup branch's verdicts, the parse, and the parsed rows' trip
    to the driver. Each query runs ``rounds`` times (the first warms the JVM and the workers), the steps
    alternating; a step that writes nowhere runs into Spark's ``noop`` sink."""
    from lakehouse.transforms import silver as silver_t
    from lakehouse_local.notebooks import run_notebook

    info = landing_data.ensure_landing(events)
    spark, startup = _session()
    lake = _fresh("silver-steps") / "lakehouse"
    params = _parameters(info["path"], lake, files=200)
    for name in NOTEBOOK_NAMES[:2]:
        run_notebook(_notebook(name), spark, params)
    bronze_path = lake / "bronze" / "events"
    lines = _delta_rows(bronze_path)
    bronze = spark.read.format("delta").load(str(bronze_path))
    hmac_key = b"benchmark-hmac-key"

    def noop(frame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    steps = {
        "read": lambda: noop(bronze),
        "hand_off": lambda: noop(bronze.mapInArrow(lambda batches: batches, bronze.schema)),
        "verdicts": lambda: noop(silver_t.verdicts(bronze, hmac_key=hmac_key)),
        "parse": lambda: noop(silver_t.parse(bronze, hmac_key=hmac_key)),
        "to_driver": lambda: silver_t.parse(bronze, hmac_key=hmac_key).toArrow(),
    }
    runs: dict[str, list[dict]] = {name: [] for name, _ in SILVER_STEPS}
    for _ in range(rounds):
        for name, _ in SILVER_STEPS:
            cpu_before, began = _SAMPLER.cpu(), time.perf_counter()
            steps[name]()
            seconds = time.perf_counter() - began
            cpu = {role: used - cpu_before[role] for role, used in _SAMPLER.cpu().items()}
            runs[name].append({"seconds": round(seconds, 2),
                               **{f"{role}_us_per_line": round(1e6 * used / lines, 1) for role, used in cpu.items()}})
    # The first round warms up; the medians are of the others.
    medians = {
        name: {key: round(statistics.median(r[key] for r in results[1:] or results), 1) for key in results[0]}
        for name, results in runs.items()
    }
    return {
        "what": f"each step over bronze.events of {lines:,} lines, {rounds} rounds (the first a warm-up), steps "
                "alternating; CPU per line by process (JVM, Python workers, Python driver); medians of the warm rounds",
        "lines": lines,
        "steps": dict(SILVER_STEPS),
        "runs": runs,
        "medians": medians,
        "session_start_s": round(startup, 2),
    }


def pipeline_spark(events: int) -> dict:
    """Plain Spark single hop: json with schema → watermark → dropDuplicatesWithinWatermark → parquet."""
    info = landing_data.ensure_landing(events)
    spark, startup = _session()
    folder = _fresh("pipeline-spark")
    began = time.perf_counter()
    query = (
        _plain_json_stream(spark, info["path"])
        .withWatermark("event_time", "10 minutes")
        .dropDuplicatesWithinWatermark(["event_id"])
        .writeStream.format("parquet")
        .option("checkpointLocation", str(folder / "_checkpoint"))
        .trigger(availableNow=True)
        .start(str(folder / "out"))
    )
    query.awaitTermination()
    seconds = time.perf_counter() - began
    return {
        "what": "json(contract) -> withWatermark(event_time, 10 min) -> dropDuplicatesWithinWatermark(event_id) -> parquet",
        "lines": info["lines"],
        "rows_written": _parquet_rows(folder / "out"),
        "seconds": round(seconds, 2),
        "events_per_s": round(info["lines"] / seconds),
        "session_start_s": round(startup, 2),
        "progress": progress_summary(_query_progress(query)),
    }


# -- freshness --------------------------------------------------------------------------------------

FRESHNESS_BUCKET = "clickstream-bench"
FRESHNESS_PREFIX = "landing/clickstream"


def freshness(duration: float, rate: float, trigger: str, drain_timeout: float = 600.0, connect: bool = False) -> dict:
    """Producer in real time into the embedded S3 endpoint; the three notebooks follow it.

    Afterwards, every Silver event gets the time its Gold batch committed (see :func:`gold_visibility`)
    and freshness = that time - the event's ``ingest_time`` (when the producer made it).
    """
    from lakehouse_local.notebooks import run_notebook
    from lakehouse_local.s3server import EmbeddedS3
    from producer import ProducerConfig, profiles, run

    folder = _fresh("freshness")
    lake = folder / "lakehouse"
    # The endpoint first: Spark's Python workers inherit AWS_ENDPOINT_URL from this process.
    s3 = EmbeddedS3().start(export_env=True)
    threads: list[threading.Thread] = []
    errors: list[dict] = []
    stopping = threading.Event()
    started_at = time.time()
    try:
        s3.client().create_bucket(Bucket=FRESHNESS_BUCKET)
        spark, startup = _session(connect)
        landing = f"s3://{FRESHNESS_BUCKET}/{FRESHNESS_PREFIX}"
        params = _parameters(landing, lake, files=1000, table_files=1000)
        run_notebook(_notebook(NOTEBOOK_NAMES[0]), spark, params)
        params["trigger"] = trigger

        def notebook(name: str) -> None:
            # Like a Databricks job task with retries: a stream that fails is started again from its
            # checkpoint (every write is idempotent per batch), and each failure is recorded.
            while not stopping.is_set():
                try:
                    run_notebook(_notebook(name), spark, params)
                    return
                except Exception as error:  # noqa: BLE001 - recorded and reported with the figures
                    if stopping.is_set():
                        return
                    errors.append(
                        {"notebook": name, "at_s": round(time.time() - started_at, 1),
                         "error": f"{error.__class__.__name__}: {_reason(error)}"}
                    )
                    if len(errors) > MAX_RESTARTS:
                        return
                    time.sleep(1)

        for name in NOTEBOOK_NAMES[1:]:
            thread = threading.Thread(target=notebook, args=(name,), daemon=True, name=name)
            thread.start()
            threads.append(thread)
        # Let the three streams start (and run their first, empty batches) before the producer does.
        deadline = time.time() + 120
        while len(spark.streams.active) < 3 and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(5)
        config = ProducerConfig(
            bucket=FRESHNESS_BUCKET,
            prefix=FRESHNESS_PREFIX,
            endpoint_url=s3.endpoint_url,
            rate=rate,
            duration_seconds=duration,
            batch_size=1000,
            batch_interval_seconds=1.0,
            start_time="now",
            **profiles.LIVE,
            manifest_path=str(folder / "manifest.json"),
            progress=False,
        )
        produced_from = time.time()
        cpu_from = _SAMPLER.cpu() if _SAMPLER is not None else None
        manifest = run(config).to_dict()
        produced_s = time.time() - produced_from
        lines = manifest["counts"]["lines_sent"]
        # Drain: wait until Bronze holds every line and Gold has caught up with Silver.
        drain_began = time.time()
        drained = False
        while time.time() - drain_began < drain_timeout:
            time.sleep(2)
            try:
                if _freshness_drained(lake, lines):
                    drained = True
                    break
            except Exception:  # noqa: BLE001 - tables mid-commit: try again
                continue
        drain_s = time.time() - drain_began
        busy = _cores_busy(cpu_from, _SAMPLER.cpu(), time.time() - produced_from) if cpu_from is not None else None
        progress = {q.name: progress_summary(_query_progress(q)) for q in spark.streams.active}
        stopping.set()
        for query in spark.streams.active:
            query.stop()
        for thread in threads:
            thread.join(30)
        visibility = gold_visibility(lake, ended_at=time.time())
    finally:
        s3.stop()
    return {
        "what": (
            f"producer at {rate:g} events/s for {duration:g} s (real clock) into the embedded S3 endpoint; "
            f"notebooks 01-03 in threads, trigger {trigger!r}; freshness = Gold batch commit time - ingest_time"
        ),
        "lines": lines,
        "producer_seconds": round(produced_s, 1),
        "drained": drained,
        "drain_seconds": round(drain_s, 1),
        "session_start_s": round(startup, 2),
        "progress": progress,
        "cores_busy": busy,
        "stream_restarts": len(errors),
        "stream_errors": errors,
        **visibility,
    }


MAX_RESTARTS = 50


def _cores_busy(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """How many cores each role kept busy between two :meth:`MemorySampler.cpu` readings ``seconds`` apart."""
    used = {role: after[role] - before[role] for role in after}
    return {
        "seconds": round(seconds, 1),
        **{role: round(cpu / seconds, 2) for role, cpu in used.items()},
        "total": round(sum(used.values()) / seconds, 2),
        "cores": os.cpu_count(),
    }


def _reason(error: Exception) -> str:
    """The last line of a (possibly Py4J-wrapped) Python traceback: what actually went wrong."""
    text = str(error)
    causes = [line.strip() for line in text.splitlines() if "Error:" in line and not line.startswith(" ")]
    return (causes[-1] if causes else text.splitlines()[0] if text else "")[:300]


def _freshness_drained(lake: Path, lines: int) -> bool:
    from lakehouse_local import delta_rs

    bronze = _delta_rows(lake / "bronze" / "events")
    if bronze < lines:
        return False
    metrics = delta_rs.read(str(lake / "ops" / "pipeline_metrics"), columns=["layer", "rows_in", "rows_written"])
    layers = metrics.column("layer").to_pylist()
    rows_in = metrics.column("rows_in").to_pylist()
    written = metrics.column("rows_written").to_pylist()
    silver_in = sum(r for layer, r in zip(layers, rows_in, strict=True) if layer == "silver")
    silver_rows = _delta_rows(lake / "silver" / "events")
    gold_in = sum(r for layer, r in zip(layers, rows_in, strict=True) if layer == "gold")
    del written
    return silver_in >= lines and gold_in >= silver_rows


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50_s": None, "p95_s": None, "max_s": None, "mean_s": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]

    return {
        "p50_s": round(pick(0.5), 2),
        "p95_s": round(pick(0.95), 2),
        "max_s": round(ordered[-1], 2),
        "mean_s": round(statistics.fmean(ordered), 2),
    }


def _silver_files_in_order(silver: Path) -> list[tuple[int, int, str]]:
    """(version, index within the commit's data-change adds, path) for every file Silver commits added."""
    found = []
    for commit in sorted((silver / "_delta_log").glob("*.json")):
        version = int(commit.name[:20])
        index = 0
        for line in commit.read_text().splitlines():
            if not line.strip():
                continue
            add = json.loads(line).get("add")
            if add is not None and add.get("dataChange", True):
                found.append((version, index, add["path"]))
                index += 1
    return found


def _gold_batches(lake: Path) -> list[tuple[int, dict]]:
    """(batch id, end offset) of each Gold micro-batch, from the Gold stream's checkpoint offset log."""
    offsets_dir = lake / "_checkpoints" / "gold" / "offsets"
    batches = []
    for entry in offsets_dir.iterdir():
        if not entry.name.isdigit():
            continue
        lines = entry.read_text().splitlines()
        batches.append((int(entry.name), json.loads(lines[2])))
    return sorted(batches)


def gold_visibility(lake: Path, ended_at: float | None = None) -> dict:
    """Per event: when it became visible in Gold, and the stages on the way, from the tables themselves.

    * produced: the event's ``ingest_time`` (the producer stamps it when it makes the line);
    * landed: the S3 object's modification time (Bronze ``_file_modification_time``);
    * in Bronze: ``_ingested_at`` (when Bronze's micro-batch read the line);
    * in Silver: ``_processed_at`` (when Silver's micro-batch read the event, before its writes);
    * in Gold: ``committed_at`` of the Gold micro-batch that first read the Silver file holding the
      event (Gold batch end offsets come from its checkpoint; ``committed_at`` is stamped after the
      five Gold MERGEs, so the event is queryable in Gold then).

    An event in Silver that no Gold batch had read when the streams stopped (``ended_at``) counts
    with its lower bound ``ended_at - ingest_time``, so a backlog can only make the figure worse.
    """
    import pyarrow.parquet as pq

    from lakehouse_local import delta_rs

    silver = lake / "silver" / "events"
    files = _silver_files_in_order(silver)
    batches = _gold_batches(lake)
    metrics = delta_rs.read(str(lake / "ops" / "pipeline_metrics")).to_pylist()
    gold_commit = {m["batch_id"]: m["committed_at"].timestamp() for m in metrics if m["layer"] == "gold"}

    def covered(file: tuple[int, int, str], offset: dict) -> bool:
        version, index, _ = file
        end_version, end_index = offset["reservoirVersion"], offset["index"]
        if offset.get("isStartingVersion"):
            # The snapshot of end_version: every file up to it (insert-only table: nothing removed).
            return version < end_version or (version == end_version and end_index >= 0)
        return version < end_version or (version == end_version and index <= end_index)

    file_visible: dict[str, float] = {}
    for file in files:
        for batch_id, offset in batches:
            if batch_id in gold_commit and covered(file, offset):
                file_visible[file[2]] = gold_commit[batch_id]
                break

    bronze = delta_rs.read(str(lake / "bronze" / "events"), columns=["_record_id", "_file_modification_time"])
    landed_at = dict(
        zip(
            bronze.column("_record_id").to_pylist(),
            (t.timestamp() if t else None for t in bronze.column("_file_modification_time").to_pylist()),
            strict=True,
        )
    )
    stages: dict[str, list[float]] = {"freshness": [], "produced_to_landed": [], "landed_to_bronze": [],
                                      "bronze_to_silver": [], "silver_to_gold": []}
    seen: set[str] = set()
    invisible = 0
    for _, _, path in files:
        table = pq.read_table(
            silver / unquote(path), columns=["event_id", "ingest_time", "_record_id", "_ingested_at", "_processed_at"]
        )
        visible = file_visible.get(path)
        for event_id, ingest, record, bronze_at, silver_at in zip(
            *(table.column(c).to_pylist() for c in table.column_names), strict=True
        ):
            if event_id in seen:
                continue
            seen.add(event_id)
            produced = ingest.timestamp()
            if visible is None:
                invisible += 1
                if ended_at is not None:
                    stages["freshness"].append(ended_at - produced)
                continue
            landed = landed_at.get(record)
            stages["freshness"].append(visible - produced)
            if landed is not None:
                stages["produced_to_landed"].append(landed - produced)
                stages["landed_to_bronze"].append(bronze_at.timestamp() - landed)
            stages["bronze_to_silver"].append(silver_at.timestamp() - bronze_at.timestamp())
            stages["silver_to_gold"].append(visible - silver_at.timestamp())
    gold_rows = [m for m in metrics if m["layer"] == "gold" and m["rows_in"]]
    return {
        "events_measured": len(stages["freshness"]),
        "events_not_in_gold": invisible,
        "freshness": _percentiles(stages["freshness"]),
        "stages": {name: _percentiles(values) for name, values in stages.items() if name != "freshness"},
        "gold_batches_with_rows": len(gold_rows),
        "ops_metrics_gold_latency_p95_weighted_s": _weighted_p95(gold_rows),
    }


def _weighted_p95(rows: list[dict]) -> float | None:
    """The ops table's own per-batch latency_p95_s, as a rows_in-weighted median over batches (a cross-check)."""
    pairs = sorted((r["latency_p95_s"], r["rows_in"]) for r in rows if r["latency_p95_s"] is not None)
    total = sum(n for _, n in pairs)
    if not total:
        return None
    running = 0
    for value, n in pairs:
        running += n
        if running >= total / 2:
            return round(value, 2)
    return round(pairs[-1][0], 2)


# -- state and memory -------------------------------------------------------------------------------

def _state_lake(events: int, batch_files: int) -> Path:
    return (landing_data.BENCH_ROOT / f"state-{events}-{batch_files}" / "lakehouse").resolve()


def state_bronze(events: int, batch_files: int) -> dict:
    """Bronze for the state measurement: one Delta file per ``batch_files`` landed files (1,000 lines each),
    left uncompacted, so Silver reads the lines in the order they landed at every size.

    Auto compaction (delta-rs's bin packing) does not keep that order: a stream that starts from the
    snapshot of a compacted Bronze reads its lines out of event-time order, most of them behind the
    watermark, and the dedup state then holds a fraction of what an in-order stream's does.
    """
    from deltalake import DeltaTable

    from lakehouse_local import delta_rs
    from lakehouse_local.notebooks import run_notebook

    info = landing_data.ensure_landing(events)
    lake = _state_lake(events, batch_files)
    marker = lake.parent / "_READY"
    prepared = {"landing": info["parameters"], "compaction": False}
    if marker.exists() and json.loads(marker.read_text()) == prepared:
        return {"cached": True, "path": str(lake)}
    shutil.rmtree(lake.parent, ignore_errors=True)
    lake.mkdir(parents=True)
    spark, _ = _session()
    params = _parameters(info["path"], lake, files=batch_files)
    began = time.perf_counter()
    run_notebook(_notebook(NOTEBOOK_NAMES[0]), spark, params)
    DeltaTable(str(lake / "bronze" / "events")).alter.set_table_properties({delta_rs.AUTO_COMPACT: "false"})
    run_notebook(_notebook(NOTEBOOK_NAMES[1]), spark, params)
    marker.write_text(json.dumps(prepared))
    return {"cached": False, "path": str(lake), "seconds": round(time.perf_counter() - began, 1)}


def _compacted_state_lake(events: int, batch_files: int, *, prepare: bool = True) -> Path:
    """A copy of the state run's lakehouse with its Bronze compacted, as auto compaction leaves a Bronze table
    that has run for a while: what a Silver ``reset`` reads. Made by ``state-compacted``, in a process of its
    own, so the compaction's memory is not counted as the reset's."""
    from deltalake import DeltaTable

    from lakehouse_local import delta_rs

    source = _state_lake(events, batch_files)
    copy = (landing_data.BENCH_ROOT / f"state-{events}-{batch_files}-compacted" / "lakehouse").resolve()
    prepared = (source.parent / "_READY").read_text()
    marker = copy.parent / "_READY"
    if marker.exists() and marker.read_text() == prepared:
        return copy
    if not prepare:
        raise SystemExit(f"run 'state-compacted --events {events} --state-batch-files {batch_files}' first")
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("_scratch"))
    bronze = str(copy / "bronze" / "events")
    DeltaTable(bronze).alter.set_table_properties({delta_rs.AUTO_COMPACT: "auto"})
    delta_rs.auto_compact(bronze)
    marker.write_text(prepared)
    return copy


def _wait_for_query(spark, name: str, runner: threading.Thread):
    """The active streaming query called ``name``, once the notebook running in ``runner`` has started it."""
    while runner.is_alive():
        for query in spark.streams.active:
            if query.name == name:
                return query
        time.sleep(0.2)
    raise SystemExit(f"notebook ended before its query {name!r} started")


def state(events: int, batch_files: int, *, default_limits: bool = False, max_batches: int | None = None) -> dict:
    """The Silver stream over the prepared Bronze table, one Bronze file per micro-batch; with
    ``default_limits``, a reset over a compacted copy of that Bronze with the widgets' default read limits
    instead. ``max_batches`` stops it after that many batches with rows."""
    from lakehouse_local.notebooks import run_notebook

    info = landing_data.ensure_landing(events)
    lake = _state_lake(events, batch_files)
    if not (lake.parent / "_READY").exists():
        raise SystemExit(f"run 'state-bronze --events {events} --state-batch-files {batch_files}' first")
    if default_limits:
        lake = _compacted_state_lake(events, batch_files, prepare=False)
    spark, startup = _session()
    params = _parameters(info["path"], lake, table_files=1, reset=True)
    if default_limits:
        del params["max_table_files_per_trigger"]  # the notebook's widget defaults hold
    began = time.perf_counter()
    # Notebook 02 in a thread; its query is followed from here while it runs.
    failures: list[BaseException] = []

    def silver_notebook() -> None:
        try:
            run_notebook(_notebook(NOTEBOOK_NAMES[2]), spark, params)
        except BaseException as error:  # noqa: BLE001 - reported below with the query's own failure
            failures.append(error)

    runner = threading.Thread(target=silver_notebook, name="silver-notebook")
    runner.start()
    query = _wait_for_query(spark, "clickstream_silver", runner)
    # Resident memory (MiB) when each micro-batch is reported: does it grow with the data?
    memory_at: dict[int, dict] = {}
    while query.isActive:
        time.sleep(1)
        for p in query.recentProgress:
            if p.batchId not in memory_at and _SAMPLER is not None:
                memory_at[p.batchId] = _SAMPLER.current()
        if max_batches is not None and sum(1 for p in query.recentProgress if p.numInputRows) >= max_batches:
            query.stop()
    runner.join()
    failure = f"{failures[0].__class__.__name__}: {_reason(failures[0])}" if failures else None
    seconds = time.perf_counter() - began
    progress = _query_progress(query)
    per_batch = []
    for p in sorted(progress, key=lambda p: p["batchId"]):
        operators = p.get("stateOperators") or []
        per_batch.append(
            {
                "batch": p["batchId"],
                "input_rows": int(p.get("numInputRows") or 0),
                "state_rows": sum(int(op.get("numRowsTotal") or 0) for op in operators),
                "state_memory_bytes": sum(int(op.get("memoryUsedBytes") or 0) for op in operators),
                "rows_dropped_by_watermark": sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in operators),
                "watermark": (p.get("eventTime") or {}).get("watermark"),
                "batch_ms": int((p.get("durationMs") or {}).get("triggerExecution") or 0),
                "rss_mib": memory_at.get(p["batchId"]),
            }
        )
    with_rows = [b for b in per_batch if b["input_rows"]]
    state_rows = [b["state_rows"] for b in with_rows]
    silver_rows = _delta_rows(lake / "silver" / "events") if failure else None
    return {
        "failed": failure,
        "silver_rows_at_failure": silver_rows,
        "what": f"a Silver reset (notebook 02) over bronze.events compacted, with the default read limits, its first "
        f"{max_batches} batches" if default_limits else f"Silver stream (notebook 02) over bronze.events, one "
        f"{batch_files * 1000:,}-line Bronze file per micro-batch",
        # Both of Silver's branches (every line, and the watermark dedup's) read each line: input rows are twice the lines.
        "lines_per_batch_median": int(statistics.median([b["input_rows"] // 2 for b in with_rows])) if with_rows else None,
        "lines_per_batch": batch_files * 1000,
        "lines": info["lines"],
        "seconds": round(seconds, 1),
        "events_per_s": None if failure else round(info["lines"] / seconds),
        "session_start_s": round(startup, 2),
        "batches": len(with_rows),
        "state_rows_last": state_rows[-1] if state_rows else None,
        "state_rows_max": max(state_rows, default=None),
        "state_rows_median": int(statistics.median(state_rows)) if state_rows else None,
        "state_memory_bytes_max": max((b["state_memory_bytes"] for b in with_rows), default=None),
        # Lines the dedup dropped as behind the watermark (Silver recovers them as late): an in-order stream has few.
        "rows_dropped_by_watermark": sum(b["rows_dropped_by_watermark"] for b in with_rows),
        "per_batch": per_batch,
        "progress": progress_summary(progress),
    }


# -- producer ---------------------------------------------------------------------------------------

_PRODUCER_LINES = {
    "generation_only_events_per_s": r"generation only \(no S3\):\s+([\d,]+) events/s",
    "events_per_s": r"into the embedded endpoint:\s+([\d,]+) events/s",
    "cpu_bound_events_per_s": r"CPU-bound rate on 2 cores:\s+([\d,]+) events/s",
    "producer_cpu_us_per_event": r"producer CPU:\s+([\d.]+) µs/event",
    "endpoint_cpu_us_per_event": r"endpoint CPU:\s+([\d.]+) µs/event",
}


def producer(events: int) -> dict:
    """``python -m benchmarks.producer_throughput --events N --faults`` in its own process, parsed."""
    command = [sys.executable, "-m", "benchmarks.producer_throughput", "--events", str(events), "--faults"]
    load_before = load_average()
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    result: dict = {
        "what": "benchmarks/producer_throughput.py --faults: producer (1,000-event objects) into the embedded "
        "S3 endpoint in its own process",
        "command": " ".join(["python", *command[1:]]),
        "lines": events,
        "output": done.stdout.strip().splitlines(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    for key, pattern in _PRODUCER_LINES.items():
        match = re.search(pattern, done.stdout)
        if match:
            result[key] = float(match.group(1).replace(",", ""))
    return result


# -- entry point ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark measurement in this process")
    parser.add_argument("name")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=120.0, help="freshness: producer seconds")
    parser.add_argument("--rate", type=float, default=2000.0, help="freshness: producer events/s")
    parser.add_argument("--trigger", default="2 seconds", help="freshness: processing-time trigger")
    parser.add_argument("--files-per-trigger", type=int, default=200, help="Bronze: max_files_per_trigger")
    parser.add_argument("--table-files-per-trigger", type=int, default=1, help="Silver: max_table_files_per_trigger")
    parser.add_argument("--gold-table-files-per-trigger", type=int, default=3, help="Gold: gold_max_table_files_per_trigger")
    parser.add_argument("--state-batch-files", type=int, default=65, help="state: landed files per Silver batch")
    parser.add_argument("--rounds", type=int, default=3, help="silver-steps: runs of each step (the first warms up)")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("SPARK_LOG_LEVEL", "ERROR")

    runs = {
        "ingest-bronze": lambda: _measure(ingest_bronze, args.events, args.files_per_trigger),
        "ingest-cloudfiles": lambda: _measure(ingest_cloudfiles, args.events, args.files_per_trigger),
        "ingest-spark": lambda: _measure(ingest_spark, args.events),
        "pipeline": lambda: _measure(pipeline, args.events, args.files_per_trigger, args.table_files_per_trigger),
        "pipeline-connect": lambda: _measure(
            pipeline, args.events, args.files_per_trigger, args.table_files_per_trigger, connect=True
        ),
        "pipeline-spark": lambda: _measure(pipeline_spark, args.events),
        "freshness": lambda: _measure(freshness, args.duration, args.rate, args.trigger),
        "freshness-connect": lambda: _measure(freshness, args.duration, args.rate, args.trigger, connect=True),
        "capacity": lambda: _measure(
            capacity, args.events, args.files_per_trigger, args.table_files_per_trigger, args.gold_table_files_per_trigger,
            args.rate,
        ),
        "silver-steps": lambda: _measure(silver_steps, args.events, args.rounds),
        "state-bronze": lambda: state_bronze(args.events, args.state_batch_files),
        "state": lambda: _measure(state, args.events, args.state_batch_files),
        "state-compacted": lambda: {"path": str(_compacted_state_lake(args.events, args.state_batch_files))},
        "state-reset": lambda: _measure(state, args.events, args.state_batch_files, default_limits=True, max_batches=4),
        "producer": lambda: producer(args.events),
    }
    if args.name not in runs:
        parser.error(f"unknown measurement {args.name!r}; one of {', '.join(runs)}")
    result = {"name": args.name, "events": args.events, **runs[args.name]()}
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
