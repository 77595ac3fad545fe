"""The benchmark results as a table and as ``results.md``: :mod:`benchmarks.run` measures, this renders.

Each scenario's section in ``results.json`` gives one or more summary rows (measurement, figure,
aim, met, load average) and a details list in Markdown.
"""

from __future__ import annotations

from benchmarks import compaction, discovery, model, scaling, stream_start

SCENARIOS = (
    "ingest", "pipeline", "freshness", "capacity", "state", "scaling", "producer", "discovery", "model", "compaction", "stream_start",
    "silver_steps",
)

FRESHNESS_RUNS = (
    ("classic", "run"), ("Spark Connect", "run_connect"), ("classic, both of the JIT's tiers", "run_both_tiers_jit"),
)

CAPACITY_RUNS = (("parallel collector", "run"), ("G1 collector", "run_g1"))

AIMS = {
    "ingest_ratio": 1.0,
    "pipeline_ratio": 0.35,
    "freshness_p95_s": 15.0,
    "producer_events_per_s": 50_000,
}



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
        runs = [("classic", ours, p["ratio_vs_spark_single_hop"])]
        if "notebooks_connect" in p:
            runs.append(("Spark Connect", p["notebooks_connect"], p.get("ratio_connect_vs_spark_single_hop")))
        for mode, run, ratio in runs:
            rows.append((
                f"Pipeline · notebooks 00-03 landing → Gold ({mode})",
                f"{_num(run.get('events_per_s'))} ev/s = {_num(ratio, 2)}× single hop",
                "≥ 0.35×", _met(ratio, AIMS["pipeline_ratio"]), _load(run),
            ))
    if "freshness" in s:
        for mode, key in FRESHNESS_RUNS:
            if key not in s["freshness"]:
                continue
            f = s["freshness"][key]
            fr = f.get("freshness") or {}
            rows.append((
                f"Freshness · produced → visible in Gold ({mode})",
                f"p50 {_num(fr.get('p50_s'), 1)} s · p95 {_num(fr.get('p95_s'), 1)} s · max {_num(fr.get('max_s'), 1)} s",
                "p95 ≤ 15 s", _met(fr.get("p95_s"), AIMS["freshness_p95_s"], higher_is_better=False), _load(f),
            ))
    for mode, key in CAPACITY_RUNS:
        c = s.get("capacity", {}).get(key, {})
        if "layers" not in c:
            continue
        per_layer = ", ".join(f"{name[3:].split('_')[0]} {layer['cores_at_rate']}" for name, layer in c["layers"].items())
        rows.append((
            f"Capacity · cores the three streams need at {_num(c['rate'])} ev/s, each layer measured alone ({mode})",
            f"{c['cores_at_rate']} of {c['cores']} ({per_layer})", "", "", _load(c),
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
        reset = s["state"].get("reset")
        if reset and "error" not in reset:
            m = reset.get("memory") or {}
            rows.append((
                f"State · a Silver reset at {int(max(s['state']['runs'], key=int)):,} events over Bronze compacted, default read limits",
                f"{'FAILED: ' if reset.get('failed') else ''}{reset.get('batches')} batches of median "
                f"{_num(reset.get('lines_per_batch_median'))} lines; peak JVM {_num(m.get('jvm_peak_mib'))} MiB, "
                f"driver {_num(m.get('driver_python_peak_mib'))} MiB",
                "", "", _load(reset),
            ))
    if "producer" in s:
        r = s["producer"]["run"]
        rows.append((
            "Producer · into embedded S3",
            f"{_num(r.get('events_per_s'))} ev/s (CPU-bound {_num(r.get('cpu_bound_events_per_s'))} ev/s)",
            "≥ 50,000 ev/s", _met(r.get("events_per_s"), AIMS["producer_events_per_s"]), _load(r),
        ))
    if "scaling" in s:
        rows += scaling.summary_rows(s["scaling"])
    if "discovery" in s:
        rows += discovery.summary_rows(s["discovery"]["run"])
    if "model" in s:
        rows += model.summary_rows(s["model"])
    if "compaction" in s:
        rows += compaction.summary_rows(s["compaction"]["run"])
    if "stream_start" in s:
        rows += stream_start.summary_rows(s["stream_start"]["run"])
    if "silver_steps" in s and "medians" in s["silver_steps"]["run"]:
        r = s["silver_steps"]["run"]
        rows.append((
            f"Silver's stream job step by step · CPU µs per line over {_num(r['lines'])} lines",
            ", ".join(f"{name} {_step_cpu(m)}" for name, m in r["medians"].items()), "", "", _load(r),
        ))
    return rows


def _step_cpu(medians: dict) -> str:
    """A step's CPU per line in all, and of it the Python workers'."""
    total = sum(medians[f"{role}_us_per_line"] for role in ("jvm", "workers", "driver"))
    return f"{total:.1f} (Python workers {medians['workers_us_per_line']:.1f})"


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
        for key, label in (("notebooks", "notebooks 00-03"), ("notebooks_connect", "notebooks 00-03, Spark Connect")):
            if key not in section:
                continue
            describe(label, section[key])
            c = section[key].get("conservation")
            if c:
                out.append(f"  - conservation check after the run: {'holds' if c['holds'] else 'DOES NOT HOLD'} ({c})")
        out.append(
            f"- Ratio to plain Spark's single hop: classic {section['ratio_vs_spark_single_hop']}×, "
            f"Spark Connect {section.get('ratio_connect_vs_spark_single_hop')}×."
        )
    elif name == "freshness":
        for mode, key in FRESHNESS_RUNS:
            if key in section:
                out.append(f"- **{mode}**")
                _describe_freshness(out, section[key])
    elif name == "capacity":
        for mode, key in CAPACITY_RUNS:
            if key not in section:
                continue
            r = section[key]
            out.append(f"- **{mode}**")
            if _failed(out, r):
                continue
            out.append(f"  - {r['what']}.")
            for layer, v in r["layers"].items():
                out.append(
                    f"  - {layer}: {v['batches']} micro-batches in {v['seconds']} s; CPU {v['cpu_s']} s = "
                    f"{v['cpu_ms_per_1000_events']} ms per 1,000 events → {v['cores_at_rate']} cores at {_num(r['rate'])} ev/s"
                )
            out.append(f"  - The three together: {r['cores_at_rate']} cores of {r['cores']}.")
            if _memory(r):
                out.append(f"  - {_memory(r)}")
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
                    f"- **{int(size):,} events**: {r.get('batches')} Silver batches of median "
                    f"{_num(r.get('lines_per_batch_median') or r.get('lines_per_batch'))} lines in {r.get('seconds')} s "
                    f"({_num(r.get('events_per_s'))} events/s)."
                )
            out.append(
                f"  - dedup state rows after each batch: median {_num(r.get('state_rows_median'))}, max "
                f"{_num(r.get('state_rows_max'))}; first batches {rows[:4]}, last {rows[-3:]}"
            )
            out.append(f"  - seconds per batch: first {times[:4]}, last {times[-4:]}")
            if r.get("rows_dropped_by_watermark") is not None and r.get("lines"):
                out.append(
                    f"  - lines behind the watermark (recovered as late): {_num(r['rows_dropped_by_watermark'])} of "
                    f"{_num(r['lines'])}"
                )
            if _rss_trend(r):
                out.append(f"  - resident memory: {_rss_trend(r)}")
            out.append(f"  - {_memory(r)}")
            out.append(f"  - load average before/after: {r.get('load_average_before')} / {r.get('load_average_after')}")
        flat = state_flat(section)
        if flat:
            out.append(f"- Between sizes: {flat['verdict']} → {'flat' if flat['flat'] else 'NOT flat'}.")
        reset = section.get("reset")
        if reset:
            out.append(f"- **{reset.get('what', 'a Silver reset')}**" + (f": failed ({reset['error']})" if "error" in reset else ""))
            if "error" not in reset:
                sizes = [b["input_rows"] // 2 for b in reset.get("per_batch", []) if b["input_rows"]]
                out.append(f"  - lines per batch {sizes}; seconds per batch "
                           f"{[round(b['batch_ms'] / 1000) for b in reset.get('per_batch', []) if b['input_rows']]}")
                out.append(f"  - {_memory(reset)}")
    elif name == "scaling":
        out += scaling.details(section)
    elif name == "discovery":
        out += discovery.details(section["run"])
    elif name == "model":
        out += model.details(section)
    elif name == "compaction":
        out += compaction.details(section["run"])
    elif name == "stream_start":
        out += stream_start.details(section["run"])
    elif name == "silver_steps":
        r = section["run"]
        if not _failed(out, r):
            out.append(f"- {r['what']}.")
            for step, m in r["medians"].items():
                per_round = ", ".join(f"{run['seconds']} s" for run in r["runs"][step])
                out.append(
                    f"  - **{step}**, {r['steps'][step]}: JVM {m['jvm_us_per_line']}, Python workers "
                    f"{m['workers_us_per_line']}, driver {m['driver_us_per_line']} µs per line; rounds {per_round}"
                )
            out.append(f"- load average before/after: {r.get('load_average_before')} / {r.get('load_average_after')}")
    elif name == "producer":
        r = section["run"]
        if not _failed(out, r):
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


def _failed(out: list[str], r: dict) -> bool:
    """Whether measurement ``r`` failed; if so, says so (and where its log is) in ``out``."""
    if "error" in r:
        out.append(f"- failed ({r['error']}); log {r.get('log')}")
        return True
    return False


def _describe_freshness(out: list[str], r: dict) -> None:
    if not _failed(out, r):
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
        busy = r.get("cores_busy")
        if busy:
            out.append(
                f"- Cores busy from the producer's start until drained ({busy['seconds']} s): {busy['total']} of "
                f"{busy['cores']} (JVM {busy['jvm']}, Python driver with producer and S3 endpoint {busy['driver']}, "
                f"Python workers {busy['workers']})."
            )
        if _memory(r):
            out.append(f"- {_memory(r)}")
        if r.get("stream_errors"):
            out.append(f"- stream errors: {r['stream_errors']}")
        out.append(f"- load average before/after: {r.get('load_average_before')} / {r.get('load_average_after')}")
