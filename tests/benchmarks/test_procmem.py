"""The benchmarks' process sampler: memory peaks and CPU time of a process tree, from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.procmem import MemorySampler

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_counts_each_roles_seconds_since_the_sampler_started_including_a_worker_that_ended():
    _burn(0.3)  # before the sampler: not counted
    sampler = MemorySampler(interval=0.05).start()
    try:
        began = time.process_time()  # this process's CPU, every thread's (the sampler's own included)
        _burn(0.5)
        # A short-lived "Spark Python worker" (the role goes by the command line) that burns a second and exits.
        worker = "import time; end = time.process_time() + 1.0\nwhile time.process_time() < end: pass  # pyspark"
        subprocess.run([sys.executable, "-c", worker], check=True)
        this_process = time.process_time() - began
        used = sampler.cpu()
    finally:
        sampler.stop()

    assert this_process >= 0.5
    assert used["driver"] == pytest.approx(this_process, abs=0.25)
    assert 0.6 <= used["workers"] <= 1.2
    assert used["jvm"] == 0
