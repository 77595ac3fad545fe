"""``python -m benchmarks.run``: the local runtime's benchmarks, a printed table, JSON + Markdown results.

    python -m benchmarks.run                       # everything, 1,000,000 events (make bench)
    python -m benchmarks.run --only ingest,producer
    python -m benchmarks.run --quick               # smoke run: 50,000 events, 20 s of freshness

Scenarios (``--only``): ``ingest``, ``pipeline``, ``freshness``, ``state``, ``scaling``, ``producer``,
``discovery`` (:mod:`benchmarks.discovery`: a trigger's file discovery at 10,000 and 100,000 landed
files; :mod:`benchmarks.scaling`: a Silver lookup and a Gold batch at two table sizes), ``model``
(:mod:`benchmarks.model`: a Gold model batch at two table sizes), ``compaction``
(:mod:`benchmarks.compaction`: a micro-batch's table work after 100 and 1,000 micro-batches),
``stream_start`` (:mod:`benchmarks.stream_start`: starting a stream of a Python data source), ``silver_steps``
(the steps of Silver's stream job one by one: CPU per line of each), ``capacity``
(each layer alone in micro-batches of the freshness run's size: CPU per event, cores needed at its rate). Each
measurement runs in its own process (:mod:`benchmarks.scenarios`), so every one gets a fresh JVM and
its own memory peaks. The landing data is generated once by the producer into
``.lakehouse/bench/landing-<n>/`` (see :mod:`benchmarks.landing`) and shared by both sides of every
comparison. Results go to ``benchmarks/results/results.json`` and ``results.md`` (a partial run
updates only its own sections); ``--quick`` writes to ``.lakehouse/bench/results/`` instead, so a
smoke run never replaces the committed figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import landing as landing_data
from benchmarks.procmem import load_average, machine
from benchmarks.report import SCENARIOS, print_table, render_markdown
from lakehouse_local.session import JAVA_OPTIONS_ENV

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_RESULTS_DIR = landing_data.BENCH_ROOT / "results"
LOG_DIR = landing_data.BENCH_ROOT / "logs"


# -- running measurements ---------------------------------------------------------------------------


# Both of the JIT's tiers (the JVM's default), for the measurement that compares them with the local runtime's
# first tier only (lakehouse_local.session.FIRST_TIER_JIT): a later flag overrides the runtime's.
BOTH_TIERS_JIT = "-XX:TieredStopAtLevel=4"
# G1 (the JVM's default collector), for the measurement that compares it with the local runtime's parallel collector
# (lakehouse_local.session.THROUGHPUT_GC): two collectors cannot both be selected, so the runtime's is turned off.
G1_GC = "-XX:-UseParallelGC -XX:+UseG1GC"


def measure(name: str, *args: str, timeout: float, module: str = "benchmarks.scenarios", java_options: str = "",
            label: str = "") -> dict:
    """One measurement in a fresh process (``python -m module name args``); its JSON result (or an ``error`` entry).
    ``java_options``: JVM flags the process's local Spark adds (``$LAKEHOUSE_JAVA_OPTIONS``)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}{label}{'-' + args[args.index('--events') + 1] if '--events' in args else ''}.log"
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, "-m", module, *([name] if module == "benchmarks.scenarios" else []), *args, "--out", str(out)]
    print(f"  {name + label:18s} {' '.join(args):60s}", end="", flush=True)
    env = {**os.environ, JAVA_OPTIONS_ENV: java_options} if java_options else None
    began = time.time()
    load = load_average()
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False, env=env)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    elapsed = time.time() - began
    if code == 0 and out.stat().st_size:
        result = json.loads(out.read_text())
        print(f" {elapsed:7.0f} s  (load {load[0]:.1f} -> {load_average()[0]:.1f})", flush=True)
    else:
        tail = log_path.read_text().splitlines()[-15:]
        result = {"name": name, "error": f"exit {code} after {elapsed:.0f} s", "log": str(log_path), "log_tail": tail}
        print(f" FAILED ({code}); see {log_path}", flush=True)
    out.unlink(missing_ok=True)
    result["process_seconds"] = round(elapsed, 1)
    return result


def _ratio(ours: dict, theirs: dict) -> float | None:
    if "events_per_s" in ours and "events_per_s" in theirs and theirs["events_per_s"]:
        return round(ours["events_per_s"] / theirs["events_per_s"], 3)
    return None


def run_ingest(events: int, files_per_trigger: int, timeout: float) -> dict:
    n = ["--events", str(events)]
    spark = measure("ingest-spark", *n, timeout=timeout)
    bronze = measure("ingest-bronze", *n, "--files-per-trigger", str(files_per_trigger), timeout=timeout)
    cloudfiles = measure("ingest-cloudfiles", *n, "--files-per-trigger", str(files_per_trigger), timeout=timeout)
    return {
        "plain_spark": spark,
        "bronze_notebook": bronze,
        "cloudfiles_delta": cloudfiles,
        "ratio_bronze_vs_spark": _ratio(bronze, spark),
        "ratio_cloudfiles_vs_spark": _ratio(cloudfiles, spark),
    }


def run_pipeline(events: int, files_per_trigger: int, table_files_per_trigger: int, timeout: float) -> dict:
    n = ["--events", str(events)]
    spark = measure("pipeline-spark", *n, timeout=timeout)
    batches = ("--files-per-trigger", str(files_per_trigger), "--table-files-per-trigger", str(table_files_per_trigger))
    ours = measure("pipeline", *n, *batches, timeout=timeout)
    connect = measure("pipeline-connect", *n, *batches, timeout=timeout)
    return {
        "plain_spark_single_hop": spark,
        "notebooks": ours,
        "notebooks_connect": connect,
        "ratio_vs_spark_single_hop": _ratio(ours, spark),
        "ratio_connect_vs_spark_single_hop": _ratio(connect, spark),
    }


def run_freshness(duration: float, rate: float, trigger: str, timeout: float) -> dict:
    args = ("--duration", str(duration), "--rate", str(rate), "--trigger", trigger)
    return {
        "run": measure("freshness", *args, timeout=timeout),
        "run_connect": measure("freshness-connect", *args, timeout=timeout),
        "run_both_tiers_jit": measure("freshness", *args, timeout=timeout, java_options=BOTH_TIERS_JIT, label="-c2"),
    }


def run_capacity(events: int, rate: float, timeout: float) -> dict:
    """Each layer alone, in micro-batches of the freshness run's size: CPU per event and cores needed at ``rate``."""
    args = ("--events", str(events), "--rate", str(rate), "--files-per-trigger", "5", "--table-files-per-trigger", "3",
            "--gold-table-files-per-trigger", "3")
    return {"run": measure("capacity", *args, timeout=timeout),
            "run_g1": measure("capacity", *args, timeout=timeout, java_options=G1_GC, label="-g1")}


def run_state(sizes: list[int], batch_files: int, timeout: float) -> dict:
    runs = {}
    for size in sizes:
        args = ("--events", str(size), "--state-batch-files", str(batch_files))
        prepared = measure("state-bronze", *args, timeout=timeout)
        if "error" in prepared:
            runs[str(size)] = prepared
            continue
        runs[str(size)] = measure("state", *args, timeout=timeout)
    # A reset over the largest Bronze table compacted (a copy), with the read limits users get by default.
    largest = ("--events", str(max(sizes)), "--state-batch-files", str(batch_files))
    reset = None
    if "error" not in runs[str(max(sizes))]:
        compacted = measure("state-compacted", *largest, timeout=timeout)
        reset = compacted if "error" in compacted else measure("state-reset", *largest, timeout=timeout)
    return {"sizes": sizes, "lines_per_batch": batch_files * 1000, "runs": runs, "reset": reset}


def run_producer(events: int, timeout: float) -> dict:
    return {"run": measure("producer", "--events", str(events), timeout=timeout)}


def run_scaling(lookup_sizes: str, gold_sizes: str, repeats: int, timeout: float) -> dict:
    """Per-batch cost at two table sizes: Silver's lookup of earlier arrivals and a Gold batch."""
    common = ("--repeats", str(repeats))
    return {
        key: measure(f"scaling-{key}", key, "--sizes", sizes, *common, timeout=timeout, module="benchmarks.scaling")
        for key, sizes in (("lookup", lookup_sizes), ("gold", gold_sizes))
    }


def run_model(sizes: str, batch_events: int, repeats: int, timeout: float) -> dict:
    """The Gold model's per-batch cost at two table sizes (benchmarks/model.py)."""
    return measure("model", "model", "--sizes", sizes, "--batch-events", str(batch_events), "--repeats", str(repeats),
                   timeout=timeout, module="benchmarks.model")


def run_discovery(sizes: list[int], new_files: int, timeout: float) -> dict:
    args = ("--sizes", ",".join(str(size) for size in sizes), "--new-files", str(new_files))
    return {"run": measure("discovery", *args, timeout=timeout, module="benchmarks.discovery")}


def run_compaction(sizes: str, repeats: int, timeout: float) -> dict:
    """A micro-batch's table work after many micro-batches, with and without the tables' properties."""
    args = ("--sizes", sizes, "--repeats", str(repeats))
    return {"run": measure("compaction", *args, timeout=timeout, module="benchmarks.compaction")}


def run_silver_steps(events: int, timeout: float) -> dict:
    """Silver's stream job step by step over one Bronze table: what each step costs per line."""
    return {"run": measure("silver-steps", "--events", str(events), timeout=timeout)}


def run_stream_start(timeout: float) -> dict:
    """Starting a stream of the ``delta`` source, with pyspark's zip on the workers' path and as configured."""
    return {"run": measure("stream_start", timeout=timeout, module="benchmarks.stream_start")}


# -- environment ------------------------------------------------------------------------------------


def versions() -> dict:
    found = {"python": platform.python_version()}
    for module in ("pyspark", "pyarrow", "deltalake", "boto3", "moto"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing module is reported as such
            found[module] = None
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
        found["java"] = java.splitlines()[0] if java else None
    except OSError:
        found["java"] = None
    return found


def git_state() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30).stdout
        except OSError:
            return ""

    # Porcelain lines are "XY path": the status columns may start with a space, so no strip() first.
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        # Other modules edited but not committed when the figures were taken (they are what was measured).
        "uncommitted_changes": [c for c in changed if not c.startswith("benchmarks/")],
    }


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="landed events for ingest and pipeline")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50,000 events, 20 s of freshness")
    parser.add_argument("--state-sizes", default="1000000,5000000", help="Silver state runs at these sizes")
    parser.add_argument("--freshness-duration", type=float, default=120.0)
    parser.add_argument("--freshness-rate", type=float, default=2000.0)
    parser.add_argument("--trigger", default="2 seconds", help="freshness: processing-time trigger of the streams")
    # 65,000 lines: about what the local delta source reads at a time from a compacted Bronze file (65,536 lines in
    # the benchmark's data), which the largest size's Bronze mostly is; so both sizes run batches of one size.
    parser.add_argument("--state-batch-files", type=int, default=65, help="state: landed files (1,000 lines) per Silver batch")
    parser.add_argument("--capacity-events", type=int, default=200_000, help="capacity: landed events")
    parser.add_argument("--producer-events", type=int, default=200_000)
    parser.add_argument("--silver-steps-events", type=int, default=200_000, help="silver_steps: landed events")
    parser.add_argument("--lookup-sizes", default="1000000,5000000", help="scaling: Silver sizes for the lookup")
    parser.add_argument("--gold-sizes", default="100000,2000000", help="scaling: events already in the Gold day")
    parser.add_argument("--scaling-repeats", type=int, default=5)
    parser.add_argument("--model-sizes", default="400000,2000000", help="model: events in the Gold model's tables")
    parser.add_argument("--model-batch-events", type=int, default=5_000, help="model: events in the timed batch")
    parser.add_argument("--discovery-sizes", default="10000,100000", help="discovery: landed files, comma-separated")
    parser.add_argument("--discovery-new-files", type=int, default=100, help="discovery: new files per trigger")
    parser.add_argument("--compaction-sizes", default="100,1000", help="compaction: micro-batches already written")
    parser.add_argument("--files-per-trigger", type=int, default=200, help="Bronze max_files_per_trigger")
    parser.add_argument("--table-files-per-trigger", type=int, default=1, help="Silver max_table_files_per_trigger")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per measurement")
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--render", action="store_true", help="only re-render results.md (and the table) from results.json")
    args = parser.parse_args(argv)

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    state_sizes = [int(x) for x in args.state_sizes.split(",") if x.strip()]
    if args.quick:
        args.events = 50_000
        args.freshness_duration = 20.0
        args.producer_events = 50_000
        args.capacity_events = 50_000
        args.silver_steps_events = 50_000
        args.discovery_sizes = "1000,10000"
        args.compaction_sizes = "20,200"
        args.model_sizes, args.model_batch_events = "50000,250000", 2_000
        args.lookup_sizes, args.gold_sizes, args.scaling_repeats = "200000,400000", "20000,100000", 2
        state_sizes = [50_000, 100_000]
        args.state_batch_files = 10
    results_dir = Path(args.results_dir) if args.results_dir else (QUICK_RESULTS_DIR if args.quick else RESULTS_DIR)
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / "results.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    if args.render:
        (results_dir / "results.md").write_text(render_markdown(results))
        print_table(results)
        return 0
    if results.get("quick") != args.quick:
        results = {}  # never mix a smoke run's figures with a full run's

    info = machine()
    started = load_average()
    print(f"machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu_model']}; load average {started}")
    sizes = sorted({args.events} if {"ingest", "pipeline"} & set(only) else set()) + (
        state_sizes if "state" in only else []
    )
    for size in sorted(set(sizes)):
        landing_data.ensure_landing(size)

    scenarios = results.setdefault("scenarios", {})
    timeout = args.timeout
    for name in only:
        print(f"{name}:")
        began = datetime.now(UTC)
        if name == "ingest":
            section = run_ingest(args.events, args.files_per_trigger, timeout)
        elif name == "pipeline":
            section = run_pipeline(args.events, args.files_per_trigger, args.table_files_per_trigger, timeout)
        elif name == "freshness":
            section = run_freshness(args.freshness_duration, args.freshness_rate, args.trigger, timeout)
        elif name == "capacity":
            section = run_capacity(args.capacity_events, args.freshness_rate, timeout)
        elif name == "state":
            section = run_state(state_sizes, args.state_batch_files, timeout)
        elif name == "scaling":
            section = run_scaling(args.lookup_sizes, args.gold_sizes, args.scaling_repeats, timeout)
        elif name == "model":
            section = run_model(args.model_sizes, args.model_batch_events, args.scaling_repeats, timeout)
        elif name == "discovery":
            sizes = [int(x) for x in args.discovery_sizes.split(",") if x.strip()]
            section = run_discovery(sizes, args.discovery_new_files, timeout)
        elif name == "compaction":
            section = run_compaction(args.compaction_sizes, args.scaling_repeats, timeout)
        elif name == "stream_start":
            section = run_stream_start(timeout)
        elif name == "silver_steps":
            section = run_silver_steps(args.silver_steps_events, timeout)
        else:
            section = run_producer(args.producer_events, timeout)
        section["measured_at"] = began.isoformat(timespec="seconds").replace("+00:00", "Z")
        section["commit"] = git_state()["commit"]
        scenarios[name] = section
        # Written after every scenario, so an interrupted run keeps what it measured.
        results.update(
            {
                "quick": args.quick,
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
                "machine": info,
                "load_average_at_start": started,
                "versions": versions(),
                "git": git_state(),
                "landing": {
                    "generator": landing_data.parameters(args.events),
                    "note": "producer output (simulated clock, 50 events/s of event time) written to a local "
                    "folder, 1,000 lines per file; see benchmarks/landing.py",
                },
            }
        )
        results.setdefault("notes", [])
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        (results_dir / "results.md").write_text(render_markdown(results))
    print()
    print_table(results)
    print(f"\nresults: {json_path} and {results_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
