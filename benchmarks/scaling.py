"""Per-batch cost as the tables grow: the batch code itself on tables built to a size.

* ``lookup``: Silver's search for earlier arrivals of a batch's event_ids (``read_matching`` on
  ``silver.events``, the days a batch can still hold duplicates of), a 10,000-event batch against Silver
  at each size. Silver holds a steady daily volume, so a larger Silver is a longer history.
* ``gold``: one Gold micro-batch (``GoldBatch``: member-key lookup, ``ops.gold_keys`` append, every
  Gold table's MERGE) of 10,000 events into a day that already holds each size.

Each size's tables are built once, untimed (Silver rows appended through delta-rs; a Gold day by one
large Gold batch), and copied aside; every timed repetition starts from a fresh copy, the sizes
alternating, so a load change on the machine falls on both. Figures are medians.

    python -m benchmarks.scaling lookup --sizes 1000000,5000000
    python -m benchmarks.scaling gold --sizes 100000,2000000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks import emit
from benchmarks import landing as landing_data
from benchmarks.procmem import load_average

ROOT = landing_data.BENCH_ROOT / "scaling"
BATCH_EVENTS = 10_000
EVENTS_PER_DAY = 200_000  # Silver's daily volume in the lookup benchmark
LAST_DAY = date(2026, 11, 20)
WHAT = {
    "lookup": "FolderLakehouse.read_matching('silver.events', batch, 'event_id', within_days=lookup_days(72 h)) of a "
    "10,000-event batch (half resent from Silver's last day), 200,000 events per Silver day.",
    "gold": "GoldBatch (member keys looked up in ops.gold_keys, new ones appended, five Gold MERGEs) of 10,000 new "
    "events into a day already holding the size, a user per 20 events.",
}
ACTIONS = "array('page_view', 'page_view', 'page_view', 'click', 'click', 'add_to_cart', 'purchase')"


def events(spark, first_id: int, n: int, day: date, *, users: int):
    """``n`` Silver-shaped events on ``day`` with ids ``first_id ..``: a user per ``users``, sessions of
    about 30 events, the contract's enums."""
    from pyspark.sql import functions as F

    from lakehouse import catalog

    ids = spark.range(first_id, first_id + n)
    digest = F.md5(F.col("id").cast("string"))
    seconds = F.pmod(F.col("id") * 7919, F.lit(86_400))
    frame = ids.select(
        F.concat_ws("-", *(digest.substr(start, length) for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))))
        .alias("event_id"),
        F.lit(1).alias("schema_version"),
        (F.lit(f"{day.isoformat()} 00:00:00").cast("timestamp") + F.make_interval(secs=seconds)).alias("event_time"),
        F.concat(F.lit("u"), F.pmod(F.xxhash64("id"), F.lit(users))).alias("user_id"),
        F.concat(F.lit("s"), F.pmod(F.xxhash64("id"), F.lit(users)), F.lit("-"), (F.col("id") / (30 * users)).cast("long"))
        .alias("session_id"),
        F.expr(f"element_at({ACTIONS}, cast(1 + pmod(xxhash64(id, 1), 7) as int))").alias("action"),
        F.concat(F.lit("/p/"), F.pmod(F.xxhash64("id", F.lit(2)), F.lit(500))).alias("page"),
        F.expr("element_at(array('desktop', 'mobile', 'tablet'), cast(1 + pmod(xxhash64(id, 3), 3) as int))").alias("device_type"),
        F.expr("element_at(array('US', 'DE', 'FR', 'GB', 'IN'), cast(1 + pmod(xxhash64(id, 4), 5) as int))").alias("country"),
        F.expr("element_at(array('direct', 'search', 'social', 'email'), cast(1 + pmod(xxhash64(id, 5), 4) as int))").alias("source"),
        F.concat(F.lit("bench-"), F.col("id")).alias("_record_id"),
        F.md5(F.concat(F.lit("payload"), F.col("id").cast("string"))).alias("payload_hash"),
        F.lit(False).alias("is_late"),
    )
    frame = frame.withColumn("ingest_time", F.col("event_time") + F.expr("INTERVAL 5 SECONDS"))
    frame = frame.withColumn("event_date", F.to_date("event_time"))
    frame = frame.withColumn("_ingested_at", F.col("ingest_time")).withColumn("_processed_at", F.col("ingest_time"))
    present = set(frame.columns)
    for column in catalog.SILVER_EVENTS.columns:
        if column.name not in present:
            frame = frame.withColumn(column.name, F.lit(None).cast(column.type))
    return frame


def _lakehouse(spark, folder: Path):
    from lakehouse import catalog
    from lakehouse_local.tables import FolderLakehouse

    tables = FolderLakehouse(spark, str(folder))
    tables.create_schemas()
    for spec in catalog.ALL_TABLES:
        tables.create_table(spec)
    return tables


def _fresh_copy(built: Path, name: str) -> Path:
    target = built.parent / f"{name}-run"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(built, target)
    return target


def _alternate(sizes: list[int], repeats: int, once) -> dict[int, list[float]]:
    """``once(size, repetition)`` for each size in turn, ``repeats`` rounds; the seconds of each call."""
    timings: dict[int, list[float]] = {size: [] for size in sizes}
    for repetition in range(repeats):
        for size in sizes:
            timings[size].append(once(size, repetition))
    return timings


def _summary(sizes: list[int], timings: dict[int, list[float]], builds: dict[int, float]) -> dict:
    medians = {size: statistics.median(values) for size, values in timings.items()}
    return {
        "sizes": sizes,
        "batch_events": BATCH_EVENTS,
        "median_s": {str(s): round(medians[s], 3) for s in sizes},
        "runs_s": {str(s): [round(v, 3) for v in timings[s]] for s in sizes},
        "build_s": {str(s): round(builds[s], 1) for s in sizes},
        "ratio_last_vs_first": round(medians[sizes[-1]] / medians[sizes[0]], 2),
    }


def lookup(spark, sizes: list[int], repeats: int) -> dict:
    """Silver's lookup of a batch's event_ids at each Silver size."""
    from lakehouse.pipeline.silver import LOOKUP_COLUMNS, lookup_days
    from lakehouse.rules import MAX_LATENESS_HOURS

    builds, folders = {}, {}
    for size in sizes:
        began = time.perf_counter()
        folder = ROOT / f"lookup-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        tables = _lakehouse(spark, folder)
        days = max(1, size // EVENTS_PER_DAY)
        for d in range(days):  # one append per day, as a day's batches would leave it
            day = LAST_DAY - timedelta(days=days - 1 - d)
            tables.append(events(spark, d * EVENTS_PER_DAY, EVENTS_PER_DAY, day, users=20_000), "silver.events",
                          app_id="bench", batch_id=d)
        builds[size], folders[size] = time.perf_counter() - began, folder
    within = lookup_days(MAX_LATENESS_HOURS)

    def once(size: int, repetition: int) -> float:
        from lakehouse_local.tables import FolderLakehouse

        tables = FolderLakehouse(spark, str(folders[size]))
        # Half the batch resends events of the last day (found), half is new.
        resent = (max(1, size // EVENTS_PER_DAY) - 1) * EVENTS_PER_DAY + repetition * BATCH_EVENTS
        batch = events(spark, resent, BATCH_EVENTS // 2, LAST_DAY, users=20_000).unionByName(
            events(spark, 10**9 + repetition * BATCH_EVENTS, BATCH_EVENTS // 2, LAST_DAY, users=20_000)
        )
        batch = tables.reusable(batch)
        began = time.perf_counter()
        found = tables.read_matching("silver.events", batch, "event_id", columns=LOOKUP_COLUMNS, within_days=within)
        count = found.count()
        elapsed = time.perf_counter() - began
        assert count == BATCH_EVENTS // 2, f"lookup found {count} of {BATCH_EVENTS // 2} resent events"
        return elapsed

    return {**_summary(sizes, _alternate(sizes, repeats, once), builds), "lookup_days": within,
            "events_per_day": EVENTS_PER_DAY}


def gold(spark, sizes: list[int], repeats: int) -> dict:
    """One Gold micro-batch of 10,000 events into a day that holds each size already."""
    from lakehouse.pipeline.gold import GoldBatch
    from lakehouse_local.tables import FolderLakehouse

    builds, folders = {}, {}
    for size in sizes:
        began = time.perf_counter()
        folder = ROOT / f"gold-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        tables = _lakehouse(spark, folder)
        GoldBatch(tables)(events(spark, 0, size, LAST_DAY, users=max(1000, size // 20)), 0)
        builds[size], folders[size] = time.perf_counter() - began, folder

    def once(size: int, repetition: int) -> float:
        folder = _fresh_copy(folders[size], f"gold-{size}")
        tables = FolderLakehouse(spark, str(folder))
        batch = events(spark, 10**9 + repetition * BATCH_EVENTS, BATCH_EVENTS, LAST_DAY, users=max(1000, size // 20))
        began = time.perf_counter()
        GoldBatch(tables)(batch, 1)
        elapsed = time.perf_counter() - began
        total = tables.read("gold.daily_kpis").where("event_date = DATE'2026-11-20'").first()["events"]
        assert total == size + BATCH_EVENTS, f"Gold counted {total}, expected {size + BATCH_EVENTS}"
        return elapsed

    return {**_summary(sizes, _alternate(sizes, repeats, once), builds)}


LABELS = {
    "lookup": "Scaling · Silver lookup of a 10,000-event batch, Silver at",
    "gold": "Scaling · Gold batch of 10,000 events into a day of",
}
AIM = 1.5  # larger size's batch cost / smaller size's


def summary_rows(section: dict) -> list[tuple[str, str, str, str, str]]:
    """A row per measurement: median batch cost at each size and their ratio, against the 1.5× aim."""
    rows = []
    for key, label in LABELS.items():
        r = section.get(key) or {"error": "not run"}
        if "error" in r:
            rows.append((label, f"failed ({r['error']})", f"≤ {AIM}×", "no", ""))
            continue
        small, large = str(r["sizes"][0]), str(r["sizes"][-1])
        before, after = r.get("load_average_before"), r.get("load_average_after")
        rows.append((
            f"{label} {int(small):,} vs {int(large):,} events",
            f"{r['median_s'][small]:.2f} s vs {r['median_s'][large]:.2f} s (median of {len(r['runs_s'][small])}) "
            f"= {r['ratio_last_vs_first']:.2f}×",
            f"≤ {AIM}×", "yes" if r["ratio_last_vs_first"] <= AIM else "no",
            f"{before[0]:.1f} → {after[0]:.1f}" if before and after else "",
        ))
    return rows


def details(section: dict) -> list[str]:
    out = []
    for key in LABELS:
        r = section.get(key) or {"error": "not run"}
        if "error" in r:
            out.append(f"- **{key}**: failed ({r['error']}); log {r.get('log')}")
            continue
        out.append(
            f"- **{key}**: {r['what']} Medians {r['median_s']} s over runs {r['runs_s']}; tables built in "
            f"{r['build_s']} s (untimed); ratio {r['ratio_last_vs_first']}×."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=("lookup", "gold"))
    parser.add_argument("--sizes", required=True, help="comma-separated table sizes (events)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    from lakehouse_local.session import get_or_create_session

    spark = get_or_create_session("clickstream-benchmark-scaling")
    sizes = [int(s) for s in args.sizes.split(",")]
    before = load_average()
    result = {"name": args.name, **(lookup if args.name == "lookup" else gold)(spark, sizes, args.repeats)}
    result.update(load_average_before=before, load_average_after=load_average(), what=WHAT[args.name])
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
