"""The benchmark report: what a measurement's section turns into in the table and in ``results.md``."""

from benchmarks.report import render_markdown, summary_rows


def _results(run: dict) -> dict:
    return {
        "machine": {"cores": 2, "memory_gib": 24, "cpu_model": "test cpu"},
        "updated_at": "2026-12-03T17:33:13Z",
        "git": {"commit": "abc1234"},
        "load_average_at_start": [0.5, 0.5, 0.5],
        "command": "python -m benchmarks.run --only silver_steps",
        "versions": {"python": "3.11"},
        "scenarios": {"silver_steps": {"run": run, "commit": "abc1234", "measured_at": "2026-12-03T17:33:13Z"}},
    }


def _step(jvm: float, workers: float, driver: float, seconds: float) -> dict:
    return {"seconds": seconds, "jvm_us_per_line": jvm, "workers_us_per_line": workers, "driver_us_per_line": driver}


def test_silver_steps_give_each_steps_cpu_per_line_in_all_and_in_python_workers():
    run = {
        "what": "each step over bronze.events of 200,000 lines",
        "lines": 200_000,
        "steps": {"read": "read bronze.events", "parse": "read + the parse"},
        "runs": {"read": [_step(5, 3, 0, 1.2), _step(4.0, 2.2, 0.0, 0.7)],
                 "parse": [_step(15, 35, 1, 6.5), _step(13.8, 34.5, 0.2, 5.1)]},
        "medians": {"read": _step(4.0, 2.2, 0.0, 0.7), "parse": _step(13.8, 34.5, 0.2, 5.1)},
        "load_average_before": [1.1, 1.0, 1.0],
        "load_average_after": [2.8, 1.5, 1.2],
    }
    [row] = summary_rows(_results(run))

    assert row[0] == "Silver's stream job step by step · CPU µs per line over 200,000 lines"
    assert row[1] == "read 6.2 (Python workers 2.2), parse 48.5 (Python workers 34.5)"
    assert row[4] == "1.1 → 2.8"
    markdown = render_markdown(_results(run))
    assert ("  - **parse**, read + the parse: JVM 13.8, Python workers 34.5, driver 0.2 µs per line; "
            "rounds 6.5 s, 5.1 s") in markdown


def test_a_failed_silver_steps_run_names_its_log_and_gives_no_figures():
    failed = {"name": "silver-steps", "error": "exit 1 after 12 s", "log": ".lakehouse/bench/logs/silver-steps.log"}

    assert summary_rows(_results(failed)) == []
    assert "- failed (exit 1 after 12 s); log .lakehouse/bench/logs/silver-steps.log" in render_markdown(_results(failed))


def _state_run(lines: int, behind: int, state_rows: int, jvm: float) -> dict:
    batches = [{"batch": n, "input_rows": 130_000, "state_rows": state_rows, "batch_ms": 10_000, "rss_mib": None}
               for n in range(lines // 65_000)]
    return {
        "lines": lines, "batches": len(batches), "seconds": 200.0, "events_per_s": 5000, "lines_per_batch": 65_000,
        "lines_per_batch_median": 65_000, "state_rows_median": state_rows, "state_rows_max": state_rows,
        "rows_dropped_by_watermark": behind, "per_batch": batches,
        "memory": {"jvm_peak_mib": jvm, "driver_python_peak_mib": 500.0, "worker_peak_mib": 300.0},
    }


def test_state_runs_say_how_many_lines_came_behind_the_watermark_and_whether_state_and_memory_stay_flat():
    section = {
        "sizes": [1_000_000, 5_000_000],
        "runs": {"1000000": _state_run(1_000_000, 5_072, 121_000, 3_000.0),
                 "5000000": _state_run(5_000_000, 2_977_827, 58_000, 4_000.0)},
        "reset": {"batches": 4, "lines_per_batch_median": 196_608, "memory": {"jvm_peak_mib": 3_000.0},
                  "what": "a Silver reset (notebook 02) over bronze.events compacted", "per_batch": []},
    }
    results = _results({})
    results["scenarios"] = {"state": {**section, "commit": "abc1234", "measured_at": "2026-12-03T21:00:00Z"}}

    rows = {row[0]: row for row in summary_rows(results)}
    assert rows["State · 1st size → last size"][1] == (
        "5× the data → state rows ×0.48, JVM peak ×1.33, driver peak ×1.0, worker peak ×1.0"
    )
    assert rows["State · 1st size → last size"][3] == "no"
    assert "State · a Silver reset at 5,000,000 events over Bronze compacted, default read limits" in rows
    markdown = render_markdown(results)
    assert "  - lines behind the watermark (recovered as late): 5,072 of 1,000,000" in markdown
    assert "  - lines behind the watermark (recovered as late): 2,977,827 of 5,000,000" in markdown
