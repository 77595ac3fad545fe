"""``python -m benchmarks.run``: the local runtime's benchmarks, a printed table, JSON + Markdown results.

    python -m benchmarks.run                       # everything, 1,000,000 events (make bench)
    python -m benchmarks.run --only ingest,producer
    python -m benchmarks.run --quick               # smoke run: 50,000 events, 20 s of freshness

Scenarios (``--only``): ``ingest``, ``pipeline``, ``freshness``, ``state``, ``scaling``, ``producer``. Each
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

SCENARIOS = ("ingest", "pipeline", "freshness", "state", "scaling", "producer")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_RESULTS_DIR = landing_data.BENCH_ROOT / "results"
LOG_DIR = landing_data.BENCH_ROOT / "logs"

AIMS = {
    "ingest_ratio": 1.0,
    "pipeline_events_per_s": 25_000,
    "freshness_p95_s": 15.0,
    "producer_events_per_s": 50_000,
    "scaling_ratio": 1.5,
}


# -- running measurements ---------------------------------------------------------------------------


def measure(name: str, *args: str, timeout: float, module: str = "benchmarks.scenarios") -> dict:
    """One measurement in a fresh process; its JSON result (or an ``error`` entry)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}{'-' + args[args.index('--events') + 1] if '--events' in args else ''}.log"
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, "-m", module, name, *args, "--out", str(out)]
    print(f"  {name:18s} {' '.join(args):60s}", end="", flush=True)
    began = time.time()
    load = load_average()
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
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
    ours = measure(
        "pipeline", *n, "--files-per-trigger", str(files_per_trigger),
        "--table-files-per-trigger", str(table_files_per_trigger), timeout=timeout,
    )
    return {"plain_spark_single_hop": spark, "notebooks": ours, "ratio_vs_spark_single_hop": _ratio(ours, spark)}


def run_freshness(duration: float, rate: float, trigger: str, timeout: float) -> dict:
    return {
        "run": measure(
            "freshness", "--duration", str(duration), "--rate", str(rate), "--trigger", trigger, timeout=timeout
        )
    }


def run_state(sizes: list[int], batch_files: int, timeout: float) -> dict:
    runs = {}
    for size in sizes:
        args = ("--events", str(size), "--state-batch-files", str(batch_files))
        prepared = measure("state-bronze", *args, timeout=timeout)
        if "error" in prepared:
            runs[str(size)] = prepared
            continue
        runs[str(size)] = measure("state", *args, timeout=timeout)
    return {"sizes": sizes, "lines_per_batch": batch_files * 1000, "runs": runs}


def run_scaling(lookup_sizes: str, gold_sizes: str, repeats: int, timeout: float) -> dict:
    """Per-batch cost at two table sizes: Silver's lookup (benchmarks/scaling.py) and a Gold batch."""
    common = ("--repeats", str(repeats))
    return {
        "lookup": measure("lookup", "--sizes", lookup_sizes, *common, timeout=timeout, module="benchmarks.scaling"),
        "gold": measure("gold", "--sizes", gold_sizes, *common, timeout=timeout, module="benchmarks.scaling"),
    }


def run_producer(events: int, timeout: float) -> dict:
    return {"run": measure("producer", "--events", str(events), timeout=timeout)}


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


# -- results ----------------------------------------------------------------------------------------


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{round(value):,}"


def _load(result: dict) -> str:
    before, after = result.get("load_average_before"), result.get("load_average_after")
    if not before:
        return "n/a"
    return f"{before[0]:.1f} → {after[0]:.1f}" if after else f"{before[0]:.1f}"


def _met(value, aim, higher_is_better: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value >= aim if higher_is_better else value <= aim
    return "yes" if ok else "no"


def summary_rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(measurement, figure, aim, met, load average 1-min before → after) for the table."""
    rows = []
    s = results.get("scenarios", {})
    if "ingest" in s:
        ing = s["ingest"]
        spark, bronze, cf = ing["plain_spark"], ing["bronze_notebook"], ing["cloudfiles_delta"]
        rows.append(("Ingest · plain Spark json → parquet", f"{_num(spark.get('events_per_s'))} ev/s", "", "", _load(spark)))
        rows.append((
            f"Ingest · Bronze notebook (01) [{bronze.get('max_files_per_trigger', '?')} files/batch]",
            f"{_num(bronze.get('events_per_s'))} ev/s = {_num(ing['ratio_bronze_vs_spark'], 2)}× plain",
            "≥ 1.0×", _met(ing["ratio_bronze_vs_spark"], AIMS["ingest_ratio"]), _load(bronze),
        ))
        rows.append((
            f"Ingest · cloudFiles json → delta [{cf.get('max_files_per_trigger', '?')} files/batch]",
            f"{_num(cf.get('events_per_s'))} ev/s = {_num(ing['ratio_cloudfiles_vs_spark'], 2)}× plain",
            "≥ 1.0×", _met(ing["ratio_cloudfiles_vs_spark"], AIMS["ingest_ratio"]), _load(cf),
        ))
    if "pipeline" in s:
        p = s["pipeline"]
        spark, ours = p["plain_spark_single_hop"], p["notebooks"]
        rows.append(("Pipeline · plain Spark single hop (dedup)", f"{_num(spark.get('events_per_s'))} ev/s", "", "", _load(spark)))
        rows.append((
            "Pipeline · notebooks 00-03 landing → Gold",
            f"{_num(ours.get('events_per_s'))} ev/s = {_num(p['ratio_vs_spark_single_hop'], 2)}× single hop",
            "≥ 25,000 ev/s", _met(ours.get("events_per_s"), AIMS["pipeline_events_per_s"]), _load(ours),
        ))
    if "freshness" in s:
        f = s["freshness"]["run"]
        fr = f.get("freshness") or {}
        rows.append((
            "Freshness · produced → visible in Gold",
            f"p50 {_num(fr.get('p50_s'), 1)} s · p95 {_num(fr.get('p95_s'), 1)} s · max {_num(fr.get('max_s'), 1)} s",
            "p95 ≤ 15 s", _met(fr.get("p95_s"), AIMS["freshness_p95_s"], higher_is_better=False), _load(f),
        ))
    if "state" in s:
        for size, r in s["state"]["runs"].items():
            m = r.get("memory") or {}
            failed = f"FAILED at batch {r.get('batches')} (Silver {_num(r.get('silver_rows_at_failure'))} rows): " if r.get("failed") else ""
            rows.append((
                f"State · Silver at {int(size):,} events",
                f"{failed}dedup state rows median {_num(r.get('state_rows_median'))} (max {_num(r.get('state_rows_max'))}); "
                f"peak JVM {_num(m.get('jvm_peak_mib'))} MiB, driver {_num(m.get('driver_python_peak_mib'))} MiB, "
                f"worker {_num(m.get('worker_peak_mib'))} MiB; {_num(r.get('seconds'))} s",
                "flat", "", _load(r),
            ))
        flat = state_flat(s["state"])
        if flat is not None:
            rows.append(("State · 1st size → last size", flat["verdict"], "flat", "yes" if flat["flat"] else "no", ""))
    if "scaling" in s:
        labels = {
            "lookup": "Scaling · Silver lookup of a 10,000-event batch, Silver at",
            "gold": "Scaling · Gold batch of 10,000 events into a day of",
        }
        for key, label in labels.items():
            r = s["scaling"].get(key) or {}
            if "error" in r or not r:
                rows.append((label, f"failed ({r.get('error', 'not run')})", "≤ 1.5×", "no", ""))
                continue
            small, large = r["sizes"][0], r["sizes"][-1]
            rows.append((
                f"{label} {small:,} vs {large:,} events",
                f"{r['median_s'][str(small)]:.2f} s vs {r['median_s'][str(large)]:.2f} s (median of "
                f"{len(r['runs_s'][str(small)])}) = {r['ratio_last_vs_first']:.2f}×",
                "≤ 1.5×", _met(r["ratio_last_vs_first"], AIMS["scaling_ratio"], higher_is_better=False), _load(r),
            ))
    if "producer" in s:
        r = s["producer"]["run"]
        rows.append((
            "Producer · into embedded S3",
            f"{_num(r.get('events_per_s'))} ev/s (CPU-bound {_num(r.get('cpu_bound_events_per_s'))} ev/s)",
            "≥ 50,000 ev/s", _met(r.get("events_per_s"), AIMS["producer_events_per_s"]), _load(r),
        ))
    return rows


def state_flat(state: dict) -> dict | None:
    """Smallest vs largest size: dedup state rows (median over batches) and memory peaks within 25%."""
    runs = {int(k): v for k, v in state.get("runs", {}).items() if "error" not in v and v.get("batches")}
    if len(runs) < 2:
        return None
    small, large = runs[min(runs)], runs[max(runs)]
    growth = max(runs) / min(runs)

    def ratio(key: str, sub: str | None = None) -> float | None:
        a = small.get(sub, {}).get(key) if sub else small.get(key)
        b = large.get(sub, {}).get(key) if sub else large.get(key)
        return round(b / a, 2) if a and b is not None else None

    ratios = {
        "state rows": ratio("state_rows_median"),
        "JVM peak": ratio("jvm_peak_mib", "memory"),
        "driver peak": ratio("driver_python_peak_mib", "memory"),
        "worker peak": ratio("worker_peak_mib", "memory"),
    }
    flat = not large.get("failed") and all(r is not None and r <= 1.25 for r in ratios.values())
    verdict = f"{growth:g}× the data → " + ", ".join(f"{k} ×{v}" for k, v in ratios.items())
    if large.get("failed"):
        verdict += f"; the {max(runs):,} run failed ({large['failed'][:120]})"
    return {"flat": flat, "data_growth": growth, "ratios": ratios, "verdict": verdict}


def _rss_trend(r: dict) -> str:
    """Resident memory at the first, middle and last reported batch: growth with the Silver table shows here."""
    points = [(b["batch"], b["rss_mib"]) for b in r.get("per_batch", []) if b.get("rss_mib") and b["input_rows"]]
    if len(points) < 2:
        return ""
    picks = [points[0], points[len(points) // 2], points[-1]]
    return "; ".join(
        f"batch {batch}: JVM {m.get('jvm', 0):,.0f}, driver {m.get('driver', 0):,.0f}, workers {m.get('workers', 0):,.0f} MiB"
        for batch, m in picks
    )


def render_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Last run {results['updated_at']} on {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu_model']} "
        f"(git {results['git']['commit']}). Load average at the start of the last run: "
        f"{', '.join(str(x) for x in results['load_average_at_start'])} (1, 5, 15 min).",
        "",
        "Reproduce: `" + results["command"] + "` (`make bench` runs `python -m benchmarks.run`).",
        "",
        "| measurement | figure | aim | met | load avg (1 min, before → after) |",
        "|---|---|---|---|---|",
    ]
    for row in summary_rows(results):
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v), ""]
    if results["git"].get("uncommitted_changes"):
        lines += [
            "Measured with uncommitted changes in: " + ", ".join(results["git"]["uncommitted_changes"]) + ".",
            "",
        ]
    s = results.get("scenarios", {})
    for name in SCENARIOS:
        if name not in s:
            continue
        commit = f" at git {s[name]['commit']}" if s[name].get("commit") else ""
        lines += [f"## {name}", "", f"Measured {s[name].get('measured_at', '?')}{commit}.", ""]
        lines += _details(name, s[name])
    notes = results.get("notes")
    if notes:
        lines += ["## Notes", "", *notes, ""]
    return "\n".join(lines).rstrip() + "\n"


def _breakdown(progress: dict) -> str:
    d = progress.get("duration_ms") or {}
    parts = [f"{k} {v / 1000:.1f} s" for k, v in d.items() if v and k != "triggerExecution"]
    return f"{progress.get('batches', '?')} batches; " + ", ".join(parts)


def _memory(r: dict) -> str:
    m = r.get("memory") or {}
    if not m:
        return ""
    return (
        f"peak RSS: JVM {m.get('jvm_peak_mib')} MiB, Python driver {m.get('driver_python_peak_mib')} MiB, "
        f"largest Python worker {m.get('worker_peak_mib')} MiB (workers together {m.get('workers_peak_total_rss_mib')} MiB)"
    )


def _details(name: str, section: dict) -> list[str]:
    out: list[str] = []

    def describe(label: str, r: dict) -> None:
        if "error" in r:
            out.append(f"- **{label}**: failed ({r['error']}); log {r.get('log')}")
            return
        figure = f"{_num(r.get('events_per_s'))} events/s ({_num(r.get('lines'))} lines in {r.get('seconds')} s)"
        out.append(f"- **{label}**: {figure}. {r.get('what', '')}.")
        if "progress" in r and "duration_ms" in r["progress"]:
            out.append(f"  - Spark progress: {_breakdown(r['progress'])}")
        elif isinstance(r.get("progress"), dict):
            for stream, p in r["progress"].items():
                if isinstance(p, dict) and "duration_ms" in p:
                    out.append(f"  - {stream}: {_breakdown(p)}")
        if r.get("per_notebook_s"):
            out.append("  - per notebook: " + ", ".join(f"{k} {v} s" for k, v in r["per_notebook_s"].items()))
        if _memory(r):
            out.append(f"  - {_memory(r)}")
        out.append(f"  - load average before/after: {r.get('load_average_before')} / {r.get('load_average_after')}")

    if name == "ingest":
        describe("plain Spark", section["plain_spark"])
        describe("Bronze notebook", section["bronze_notebook"])
        describe("cloudFiles → delta", section["cloudfiles_delta"])
        out.append(
            f"- Ratios: Bronze notebook {section['ratio_bronze_vs_spark']}×, "
            f"cloudFiles → delta {section['ratio_cloudfiles_vs_spark']}× plain Spark."
        )
    elif name == "pipeline":
        describe("plain Spark single hop", section["plain_spark_single_hop"])
        describe("notebooks 00-03", section["notebooks"])
        c = section["notebooks"].get("conservation")
        if c:
            out.append(f"  - conservation check after the run: {'holds' if c['holds'] else 'DOES NOT HOLD'} ({c})")
        out.append(f"- Ratio to plain Spark's single hop: {section['ratio_vs_spark_single_hop']}×.")
    elif name == "freshness":
        r = section["run"]
        if "error" in r:
            out.append(f"- failed ({r['error']}); log {r.get('log')}")
        else:
            fr = r.get("freshness", {})
            out.append(f"- {r.get('what')}.")
            out.append(
                f"- Freshness over {_num(r.get('events_measured'))} events: p50 {fr.get('p50_s')} s, "
                f"p95 {fr.get('p95_s')} s, max {fr.get('max_s')} s (mean {fr.get('mean_s')} s); "
                f"{r.get('lines')} lines produced; drained {r.get('drained')} after {r.get('drain_seconds')} s."
            )
            out.append("- Where the time goes (per event, p50 / p95 / max seconds):")
            for stage, v in (r.get("stages") or {}).items():
                out.append(f"  - {stage}: {v.get('p50_s')} / {v.get('p95_s')} / {v.get('max_s')}")
            for stream, p in (r.get("progress") or {}).items():
                if isinstance(p, dict) and "duration_ms" in p:
                    out.append(f"  - {stream}: {_breakdown(p)}")
            if _memory(r):
                out.append(f"- {_memory(r)}")
            if r.get("stream_errors"):
                out.append(f"- stream errors: {r['stream_errors']}")
            out.append(f"- load average before/after: {r.get('load_average_before')} / {r.get('load_average_after')}")
    elif name == "state":
        for size, r in section["runs"].items():
            if "error" in r:
                out.append(f"- **{int(size):,} events**: failed ({r['error']}); log {r.get('log')}")
                continue
            batches = [b for b in r.get("per_batch", []) if b["input_rows"]]
            rows = [b["state_rows"] for b in batches]
            times = [round(b["batch_ms"] / 1000) for b in batches]
            if r.get("failed"):
                out.append(
                    f"- **{int(size):,} events: the Silver stream FAILED** after {r.get('batches')} batches "
                    f"({_num(r.get('silver_rows_at_failure'))} Silver rows): {r['failed']}"
                )
            else:
                out.append(
                    f"- **{int(size):,} events**: {r.get('batches')} Silver batches of {_num(r.get('lines_per_batch'))} "
                    f"lines in {r.get('seconds')} s ({_num(r.get('events_per_s'))} events/s)."
                )
            out.append(
                f"  - dedup state rows after each batch: median {_num(r.get('state_rows_median'))}, max "
                f"{_num(r.get('state_rows_max'))}; first batches {rows[:4]}, last {rows[-3:]}"
            )
            out.append(f"  - seconds per batch: first {times[:4]}, last {times[-4:]}")
            if _rss_trend(r):
                out.append(f"  - resident memory: {_rss_trend(r)}")
            out.append(f"  - {_memory(r)}")
            out.append(f"  - load average before/after: {r.get('load_average_before')} / {r.get('load_average_after')}")
        flat = state_flat(section)
        if flat:
            out.append(f"- Between sizes: {flat['verdict']} → {'flat' if flat['flat'] else 'NOT flat'}.")
    elif name == "scaling":
        for key, r in section.items():
            if not isinstance(r, dict):
                continue
            if "error" in r:
                out.append(f"- **{key}**: failed ({r['error']}); log {r.get('log')}")
                continue
            out.append(
                f"- **{key}**: {r.get('what', '')} Medians {r['median_s']} s over runs {r['runs_s']}; "
                f"tables built in {r['build_s']} s (untimed); ratio {r['ratio_last_vs_first']}×."
            )
    elif name == "producer":
        r = section["run"]
        if "error" in r:
            out.append(f"- failed ({r['error']})")
        else:
            out.append(f"- `{r.get('command')}`:")
            out += [f"  - {line}" for line in r.get("output", [])]
    return out + [""]


def print_table(results: dict) -> None:
    rows = [("measurement", "figure", "aim", "met", "load")] + summary_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


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
    parser.add_argument("--state-batch-files", type=int, default=50, help="state: landed files (1,000 lines) per Silver batch")
    parser.add_argument("--producer-events", type=int, default=200_000)
    parser.add_argument("--lookup-sizes", default="1000000,5000000", help="scaling: Silver sizes for the lookup")
    parser.add_argument("--gold-sizes", default="100000,2000000", help="scaling: events already in the Gold day")
    parser.add_argument("--scaling-repeats", type=int, default=5)
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
        state_sizes = [50_000, 100_000]
        args.state_batch_files = 10
        args.lookup_sizes, args.gold_sizes, args.scaling_repeats = "200000,400000", "20000,100000", 2
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
        elif name == "state":
            section = run_state(state_sizes, args.state_batch_files, timeout)
        elif name == "scaling":
            section = run_scaling(args.lookup_sizes, args.gold_sizes, args.scaling_repeats, timeout)
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
