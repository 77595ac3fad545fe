"""The Gold model's per-batch cost at two table sizes (``python -m benchmarks.run --only model``).

Does a Gold model micro-batch cost what the batch holds, or what the tables hold?

1. Silver-shaped events come from :class:`Traffic`: a store with a fixed pool of users, each with their own
   device and country, who come back in sessions of a few events with a traffic source drawn per session
   (so users' history changes), ``EVENTS_PER_DAY`` a day. The tables grow as a lakehouse does, with time:
   5× the events is 5× the days of history.
2. Each size's tables are built by the Gold model's own batch function (``lakehouse.pipeline.gold_model.process``)
   over batches of ``BUILD_BATCH`` events in time order, on a folder lakehouse (delta-rs), untimed, and kept.
3. The next batch of ``batch_events`` events (``LATE_SHARE`` of them late, up to 48 hours back into existing
   sessions) is timed on a fresh copy of each size's tables, the sizes alternating over ``repeats`` rounds so
   a change of the machine's load falls on both; each table's reads and writes are timed too, with the rows
   each read returned.

The batch function is called directly (no stream around it): the figures are the batch's own cost.

    python -m benchmarks.model model --sizes 400000,2000000 --batch-events 5000 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import random
import shutil
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from benchmarks import emit
from benchmarks import landing as landing_data
from benchmarks.procmem import load_average

ROOT = landing_data.BENCH_ROOT / "model"
EVENTS_PER_DAY = 10_000
USERS = 5_000
BUILD_BATCH = 250_000
LATE_SHARE = 0.02
START = datetime(2026, 1, 1)
PAGES = ["/", "/search", "/cart", "/checkout"] + [f"/category/c{i}" for i in range(8)] + [
    f"/products/sku-{1000 + i}" for i in range(400)
]
SOURCES = ["organic", "paid_search", "social", "email", "referral", None]
DEVICES = ["mobile", "desktop", "tablet", "other"]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "JP", "ES"]
COLUMNS = ["event_id", "event_time", "event_date", "user_id", "session_id", "page", "action", "device_type",
           "country", "source", "is_late", "ingest_time"]


class Traffic:
    """Sessions of the user pool over event time, ``EVENTS_PER_DAY`` a day; deterministic for a seed."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.clock = START
        self.count = 0
        self.sessions: list[tuple[str, str, datetime, str | None]] = []  # recent sessions, for late events

    def batch(self, n: int, *, late_share: float = 0.0) -> pa.Table:
        rng, rows = self.rng, []
        gap = timedelta(seconds=86_400 / EVENTS_PER_DAY)
        while len(rows) < n:
            if self.sessions and rng.random() < late_share:
                user, session, started, source = self.sessions[rng.randrange(len(self.sessions))]
                when = started + timedelta(seconds=rng.uniform(0, 600))
                rows.append(self._event(user, session, when, source, late=True))
                continue
            user = f"u-{rng.randrange(USERS):05d}"
            session, source = f"s-{self.count:09d}", rng.choice(SOURCES)
            self.sessions.append((user, session, self.clock, source))
            for _ in range(1 + int(rng.expovariate(1 / 4))):
                rows.append(self._event(user, session, self.clock, source, late=False))
                self.clock += gap
        cutoff = self.clock - timedelta(hours=48)
        self.sessions = [s for s in self.sessions if s[2] >= cutoff][-20_000:]
        columns = list(zip(*rows[:n], strict=True))
        return pa.table(dict(zip(COLUMNS, columns, strict=True)))

    def _event(self, user: str, session: str, when: datetime, source: str | None, *, late: bool) -> tuple:
        rng = self.rng
        self.count += 1
        number = int(user[2:])
        action = rng.choices(("view", "click", "add_to_cart", "purchase"), (60, 25, 10, 5))[0]
        page = "/checkout" if action == "purchase" else rng.choice(PAGES)
        return (f"e-{self.count:012d}", when, when.date(), user, session, page, action, DEVICES[number % 4],
                COUNTRIES[number % 10], source, late, when)


def measure(spark, sizes: list[int], batch_events: int, repeats: int) -> dict:
    """Build the model's tables at each size (untimed, kept aside), then time ``repeats`` rounds of one
    ``batch_events`` batch per size, each on a fresh copy of that size's tables, the sizes alternating so a
    change of the machine's load falls on both."""
    from lakehouse import catalog
    from lakehouse.pipeline import gold_model
    from lakehouse.pipeline.metrics import MicroBatch

    def run(tables, batch_id: int, rows: pa.Table) -> float:
        began = time.perf_counter()
        gold_model.process(MicroBatch(tables.bind(spark), gold_model.STREAM, "bench", batch_id),
                           spark.createDataFrame(rows), lookup_days=4)
        return time.perf_counter() - began

    built, builds, sizes_of, traffic_after = {}, {}, {}, {}
    for size in sizes:
        folder = (ROOT / f"model-{size}").resolve()
        shutil.rmtree(folder, ignore_errors=True)
        tables = _timed_class()(spark, str(folder))
        tables.create_schemas()
        for spec in (*catalog.MODEL_TABLES, catalog.PIPELINE_METRICS):
            tables.create_table(spec)
        traffic, began, batch_id = Traffic(), time.perf_counter(), 0
        while traffic.count < size:
            run(tables, batch_id, traffic.batch(min(BUILD_BATCH, size - traffic.count)))
            batch_id += 1
        run(tables, batch_id, traffic.batch(batch_events, late_share=LATE_SHARE))  # plans a small batch once
        builds[size] = round(time.perf_counter() - began, 1)
        sizes_of[size] = {spec.name: _rows(folder, spec.name) for spec in catalog.MODEL_TABLES}
        built[size], traffic_after[size] = folder, (traffic, batch_id + 1)

    # The batch timed at each size: the traffic's next batch, the same in every round, each round on a fresh
    # copy of the tables as built.
    batches = {size: traffic_after[size][0].batch(batch_events, late_share=LATE_SHARE) for size in sizes}
    timings: dict[int, list[dict]] = {size: [] for size in sizes}
    for _ in range(repeats):
        for size in sizes:
            copy = built[size].parent / f"{built[size].name}-run"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(built[size], copy)
            tables = _timed_class()(spark, str(copy))
            seconds = run(tables, traffic_after[size][1], batches[size])
            timings[size].append({"seconds": round(seconds, 2), "steps": dict(tables.steps)})
    runs = {}
    for size in sizes:
        per_step = defaultdict(list)
        for timing in timings[size]:
            for step, (seconds, rows) in timing["steps"].items():
                per_step[step].append((seconds, rows))
        runs[str(size)] = {
            "events": size,
            "history_days": round(size / EVENTS_PER_DAY),
            "build_seconds": builds[size],
            "table_rows": sizes_of[size],
            "batch_events": batch_events,
            "batch_seconds": [t["seconds"] for t in timings[size]],
            "batch_seconds_median": round(statistics.median(t["seconds"] for t in timings[size]), 2),
            "steps_median": {
                step: {"seconds": round(statistics.median(v for v, _ in values), 3),
                       "rows": int(statistics.median(r for _, r in values))}
                for step, values in sorted(per_step.items())
            },
        }
    return {"sizes": sizes, "repeats": repeats, "runs": runs}


def _rows(root: Path, name: str) -> int:
    from lakehouse import catalog
    from lakehouse_local import delta_rs

    layer, table = name.split(".")
    return delta_rs.read(str(root / layer / table), columns=[catalog.spec(name).keys[0]]).num_rows


@functools.cache
def _timed_class():
    from lakehouse_local.tables import ROWS_ATTRIBUTE, FolderLakehouse

    class TimedLakehouse(FolderLakehouse):
        """A folder lakehouse that records the seconds and rows of each table's reads and writes."""

        steps: dict[str, tuple[float, int]]

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.steps = {}

        def bind(self, spark):
            bound = super().bind(spark)
            bound.steps = self.steps  # one record for the batch, whichever copy writes it
            return bound

        @contextlib.contextmanager
        def together(self):
            # Writes given together run when the block ends: they are timed as one step named after them all.
            given: list[str] = []
            with super().together() as writes:
                writes.given = given
                yield writes
                began = time.perf_counter()
            self._record("together: " + ", ".join(given), time.perf_counter() - began, 0)

        def _record(self, key: str, seconds: float, rows: int) -> None:
            held_seconds, held_rows = self.steps.get(key, (0.0, 0))
            self.steps[key] = (held_seconds + seconds, held_rows + rows)

    def timed(method: str, rows_of, *, write: bool):
        original = getattr(FolderLakehouse, method)

        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            began = time.perf_counter()
            result = original(self, *args, **kwargs)
            name = args[1] if len(args) > 1 and isinstance(args[1], str) else args[0]
            key = f"{method} {name}"
            if write and vars(self).get("given") is not None:
                self.given.append(key)  # given together: timed with its block
            else:
                self._record(key, time.perf_counter() - began, rows_of(result))
            return result

        setattr(TimedLakehouse, method, wrapper)

    for method in ("append", "upsert", "apply_changes"):
        timed(method, lambda result: 0, write=True)
    timed("read_matching", lambda result: vars(result)[ROWS_ATTRIBUTE].num_rows, write=False)
    return TimedLakehouse


# -- in benchmarks.run: the section, its table row and its details ------------------------------------------------

AIM = 1.5  # the larger size's median batch cost / the smaller size's


def summary_rows(section: dict) -> list[tuple[str, str, str, str, str]]:
    """The summary table's row: the median batch cost at each size, their ratio and the fact rows each batch read."""
    label = "Gold model · per-batch cost vs table size"
    if "error" in section:
        return [(label, f"failed ({section['error']})", f"≤ {AIM}×", "no", "")]
    sizes = section["sizes"]
    small, large = section["runs"][str(sizes[0])], section["runs"][str(sizes[-1])]
    ratio = large["batch_seconds_median"] / small["batch_seconds_median"]
    read = "read_matching gold.fact_events"
    rows = [r["steps_median"].get(read, {}).get("rows", 0) for r in (small, large)]
    before, after = section.get("load_average_before"), section.get("load_average_after")
    figure = (
        f"{small['batch_events']:,}-event batch: median {small['batch_seconds_median']:.2f} s at {sizes[0]:,} events vs "
        f"{large['batch_seconds_median']:.2f} s at {sizes[-1]:,} = ×{ratio:.2f} for ×{sizes[-1] / sizes[0]:g} the data; "
        f"fact rows read per batch {rows[0]:,} vs {rows[1]:,}"
    )
    load = f"{before[0]:.1f} → {after[0]:.1f}" if before and after else ""
    return [(label, figure, f"≤ {AIM}×", "yes" if ratio <= AIM else "no", load)]


def details(section: dict) -> list[str]:
    if "error" in section:
        return [f"- failed ({section['error']}); log {section.get('log')}"]
    out = [f"- {section.get('what', '')}"]
    for size, r in section["runs"].items():
        out.append(f"- **{int(size):,} events** ({r['history_days']} days of history), built in {r['build_seconds']} s "
                   "(untimed); rows: " + ", ".join(f"{n.split('.')[1]} {v:,}" for n, v in r["table_rows"].items()))
        out.append(f"  - seconds per {r['batch_events']:,}-event batch: {r['batch_seconds']} (median "
                   f"{r['batch_seconds_median']})")
        out.append("  - median per step, seconds (rows read): " + ", ".join(
            f"{step} {v['seconds']}" + (f" ({v['rows']:,})" if step.startswith("read") else "")
            for step, v in r["steps_median"].items()))
    out.append(f"- load average (1, 5, 15 min) before/after: {section.get('load_average_before')} / "
               f"{section.get('load_average_after')}")
    return out


WHAT = (
    "The Gold model's batch function (lakehouse.pipeline.gold_model.process) on a folder lakehouse: tables built "
    f"to each size from a store's traffic ({USERS:,} users, {EVENTS_PER_DAY:,} events a day, so 5× the events is 5× "
    f"the days of history) in batches of {BUILD_BATCH:,}; then the next batch ({LATE_SHARE:.0%} of it late, up to 48 h "
    "back into existing sessions) timed on a fresh copy of each size's tables, the sizes alternating."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=("model",))
    parser.add_argument("--sizes", required=True, help="comma-separated table sizes (events)")
    parser.add_argument("--batch-events", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    from lakehouse_local.session import get_or_create_session

    spark = get_or_create_session("clickstream-benchmark-model")
    before = load_average()
    result = {"name": "model", **measure(spark, [int(s) for s in args.sizes.split(",")], args.batch_events, args.repeats)}
    result.update(load_average_before=before, load_average_after=load_average(), what=WHAT)
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
