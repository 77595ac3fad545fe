"""Benchmarks: runnable measurements of the project's throughput (not tests)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: str | None) -> int:
    """A measurement's result as JSON: written to ``out`` when given (where ``benchmarks.run`` reads it),
    printed otherwise. Returns the process's exit code."""
    text = json.dumps(result, indent=2, default=str)
    if out:
        Path(out).write_text(text)
    else:
        print(text)
    return 0
