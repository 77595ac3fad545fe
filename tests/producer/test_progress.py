"""Progress: one live line on a terminal, log lines otherwise."""

from __future__ import annotations


def test_progress_is_one_live_line_on_a_terminal_and_log_lines_otherwise(caplog):
    import io
    import logging

    from producer.progress import Progress

    screen = io.StringIO()
    live = Progress(interactive=True, stream=screen, interval_seconds=0.0)
    live.update(lines=1000, batches=1, retries=2, errors=1)
    live.update(lines=2000, batches=2, retries=3, errors=1)
    live.close(lines=2000, batches=2, retries=3, errors=1)
    text = screen.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "2,000 events" in text and "events/s" in text and "2 batches" in text and "3 retries" in text
    assert "1 errors" in text
    with caplog.at_level(logging.INFO, logger="producer.progress"):
        quiet = Progress(interactive=False, stream=io.StringIO(), interval_seconds=0.0)
        quiet.update(lines=500, batches=1, retries=0, errors=0)
    assert "progress: 500 events" in caplog.text
