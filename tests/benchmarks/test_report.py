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
