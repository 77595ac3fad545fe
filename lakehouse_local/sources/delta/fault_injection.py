"""Test-only fault injection for the crash tests of the delta sink (``tests/test_streaming_restart.py``).

Inert unless ``LAKEHOUSE_DELTA_SINK_HOLD`` is set, which nothing but those tests does. With
``LAKEHOUSE_DELTA_SINK_HOLD="<table folder name>:<phase>:<batch id>[;...]"`` (phase ``before_commit``
or ``after_commit``), the sink's commit of that batch to that table writes
``<LAKEHOUSE_DELTA_SINK_HOLD_MARKERS>/<table folder name>.held`` and waits there until the process is
killed, so a test can kill a streaming query at an exact point of a commit and check the restart.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

HOLD_ENV = "LAKEHOUSE_DELTA_SINK_HOLD"
HOLD_MARKERS_ENV = "LAKEHOUSE_DELTA_SINK_HOLD_MARKERS"


def hold_if_asked(phase: str, batch_id: int, table: str) -> None:
    """Wait at ``phase`` of ``batch_id`` until killed, when the environment asks for it; else return."""
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    name = Path(table).name
    if f"{name}:{phase}:{batch_id}" not in spec.split(";"):
        return
    log.warning("delta stream to %s: holding at %s of batch %d (%s)", table, phase, batch_id, HOLD_ENV)
    Path(os.environ[HOLD_MARKERS_ENV], name + ".held").write_text(str(os.getpid()))
    parent = os.getppid()
    deadline = time.monotonic() + 600
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(1)
