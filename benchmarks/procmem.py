"""Peak memory and CPU time of this process and everything it started (the JVM, Spark's Python workers), from /proc.

No psutil: each process's ``/proc/<pid>/status`` has ``VmHWM`` (its peak resident set, kept by the
kernel) and ``VmRSS`` (now). A background thread walks the process tree every ``interval`` seconds and
keeps, per process, the largest ``VmHWM`` seen, plus the largest *simultaneous* resident total of the
Python workers (a short-lived worker's peak is caught as long as it lives for one sample).

The same walk reads each process's CPU time (``/proc/<pid>/stat``: user + system), so :meth:`MemorySampler.cpu`
says how many CPU seconds each role has used since the sampler started; the difference of two readings over
the wall time between them is how many cores that role kept busy.

Roles: ``driver`` is this Python process, ``jvm`` the Spark driver JVM (``java``), ``workers`` every
``pyspark.daemon`` process and its forks (Python UDF/data source/sink workers).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    values[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return values


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3 of stat(5), utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: the parent pid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree[ppid].append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    tree = _children()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        for child in tree.get(pid, ()):
            found.append(child)
            stack.append(child)
    return found


def role(pid: int, root: int) -> str:
    if pid == root:
        return "driver"
    command = _cmdline(pid)
    if command.split(" ", 1)[0].endswith("/java") or command.startswith("java "):
        return "jvm"
    if "pyspark" in command:
        return "workers"
    return "other"


class MemorySampler:
    """Samples the process tree of ``root`` (default: this process) until stopped."""

    def __init__(self, root: int | None = None, interval: float = 0.5) -> None:
        self.root = root or os.getpid()
        self.interval = interval
        self.peak_hwm: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.peak_workers_rss_total = 0
        self.peak_tree_rss_total = 0
        self.samples = 0
        self.last: dict[str, float] = {}
        # CPU seconds per process: when the sampler first saw it (0 for one started since) and at its last sample.
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def start(self) -> MemorySampler:
        # The first sample, which every CPU reading counts from, is taken now, not when the thread gets to it.
        self.sample()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        with self._lock:
            self._sample()

    def _sample(self) -> None:
        workers_rss = tree_rss = 0
        now_rss: dict[str, int] = defaultdict(int)
        first_sample = self.samples == 0
        for pid in [self.root, *descendants(self.root)]:
            status = _status(pid)
            if not status:
                continue
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                self.cpu_first.setdefault(pid, cpu if first_sample else 0.0)
                self.cpu_last[pid] = cpu
            # Every time: a launcher shell exec()s into the JVM under the same pid.
            self.roles[pid] = role(pid, self.root)
            hwm = max(status.get("VmHWM", 0), status.get("VmRSS", 0))
            self.peak_hwm[pid] = max(self.peak_hwm.get(pid, 0), hwm)
            tree_rss += status.get("VmRSS", 0)
            now_rss[self.roles[pid]] += status.get("VmRSS", 0)
            if self.roles[pid] == "workers":
                workers_rss += status.get("VmRSS", 0)
        self.peak_workers_rss_total = max(self.peak_workers_rss_total, workers_rss)
        self.peak_tree_rss_total = max(self.peak_tree_rss_total, tree_rss)
        self.last = {role: round(rss / 1024 / 1024, 1) for role, rss in now_rss.items() if role != "other"}
        self.samples += 1

    def cpu(self) -> dict[str, float]:
        """CPU seconds each role (driver, jvm, workers) has used since the sampler started, read now.

        A process that ended between two samples counts up to its last sample."""
        self.sample()
        used: dict[str, float] = defaultdict(float)
        for pid, last in self.cpu_last.items():
            used[self.roles.get(pid, "other")] += last - self.cpu_first.get(pid, 0.0)
        return {role: round(used[role], 1) for role in ("driver", "jvm", "workers")}

    def current(self) -> dict[str, float]:
        """Resident MiB per role (driver, jvm, workers: all workers together) at the latest sample."""
        return dict(self.last)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(5)
        self.sample()
        return self.report()

    def report(self) -> dict:
        by_role: dict[str, list[int]] = defaultdict(list)
        for pid, peak in self.peak_hwm.items():
            by_role[self.roles.get(pid, "other")].append(peak)
        mib = 1024 * 1024
        return {
            "driver_python_peak_mib": round(max(by_role["driver"], default=0) / mib, 1),
            "jvm_peak_mib": round(max(by_role["jvm"], default=0) / mib, 1),
            "worker_peak_mib": round(max(by_role["workers"], default=0) / mib, 1),
            "workers_seen": len(by_role["workers"]),
            "workers_peak_total_rss_mib": round(self.peak_workers_rss_total / mib, 1),
            "tree_peak_total_rss_mib": round(self.peak_tree_rss_total / mib, 1),
            "samples": self.samples,
        }


def machine() -> dict:
    """Cores, memory, CPU model, load average: what a figure needs next to it."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": model,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def now() -> float:
    return time.time()
