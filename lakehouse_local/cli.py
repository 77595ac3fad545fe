"""``python -m lakehouse_local``: run the pipeline on a laptop.

* ``demo``: embedded S3 → producer (100,000 events, every fault) → notebooks 00-04 → Gold summary and
  the conservation check against the producer's manifest.
* ``pipeline``: run the notebooks in order, ``availableNow``, over a landing area (``s3://`` or a folder).
* ``follow``: producer and all three streams together with processing-time triggers, printing freshness.
* ``sdp``: the declarative edition (``databricks/pipelines``) with ``spark-pipelines``, over the embedded S3
  and the producer as ``demo`` does, or over a landing area; then the same summary and reconciliation.
* ``sql``: Spark SQL over the local tables by their Databricks names.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from lakehouse_local.session import REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "databricks" / "notebooks"
NOTEBOOKS = ["00_setup.py", "01_bronze_autoloader.py", "02_silver_stream.py", "03_gold_metrics.py", "04_gold_model.py"]
RETENTION_NOTEBOOK = "90_raw_line_retention.py"
DEMO_DIR = Path(".lakehouse/demo")
DEMO_BUCKET = "clickstream-demo"
DEMO_PREFIX = "landing/clickstream"

log = logging.getLogger("lakehouse")

def notebook_paths() -> list[Path]:
    return [NOTEBOOKS_DIR / name for name in NOTEBOOKS]


def pipeline_parameters(args: argparse.Namespace) -> dict[str, str]:
    return {
        "landing_path": args.landing,
        "lakehouse": str(Path(args.lakehouse).resolve()),
        "checkpoint_root": "",
        "trigger": args.trigger,
        "watermark_delay": args.watermark_delay,
        "max_files_per_trigger": str(args.max_files_per_trigger),
        "max_table_files_per_trigger": str(args.max_table_files_per_trigger),
        "gold_max_table_files_per_trigger": str(args.gold_max_table_files_per_trigger),
        "reset": "false",
    }


def run_pipeline(spark, parameters: dict[str, str]) -> float:
    """Run notebooks 00-04 as the job's tasks depend on each other: 00-02 in order, then the two Gold
    streams (03 and 04 both read only Silver) side by side; returns the seconds it took."""
    from concurrent.futures import ThreadPoolExecutor

    from lakehouse_local.notebooks import run_notebook

    def run(path: Path) -> None:
        t0 = time.time()
        run_notebook(path, spark, parameters)
        print(f"  {path.name:28s} {time.time() - t0:6.1f} s", flush=True)

    started = time.time()
    *in_order, gold, gold_model = notebook_paths()
    for path in in_order:
        run(path)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gold") as pool:
        for done in [pool.submit(run, gold), pool.submit(run, gold_model)]:
            done.result()
    seconds = time.time() - started
    print(f"  {'notebooks in all':28s} {seconds:6.1f} s", flush=True)
    return seconds


def _session(connect: bool = False):
    """The notebooks' ``spark``: classic, or a Spark Connect client as on serverless (``--connect``)."""
    from lakehouse_local.session import connect_session, get_or_create_session

    return connect_session() if connect else get_or_create_session()


def _lakehouse(spark, folder: str):
    from lakehouse_local.tables import FolderLakehouse

    return FolderLakehouse(spark, str(Path(folder).resolve()))


# -- reports --------------------------------------------------------------------------------------


def print_gold_summary(lakehouse) -> None:
    from pyspark.sql import functions as F

    print("\nGold · daily_kpis")
    lakehouse.read("gold.daily_kpis").orderBy("event_date").withColumn(
        "conversion_rate", F.round("conversion_rate", 4)
    ).show(truncate=False)
    print("Gold · funnel_daily")
    lakehouse.read("gold.funnel_daily").orderBy("event_date", "step_order").show(50, truncate=False)


def print_model_summary(lakehouse) -> None:
    """Sessions and users per day from the Gold model, and a line on users' history and pages."""
    from pyspark.sql import functions as F

    sessions = lakehouse.read("gold.sessions").groupBy(F.col("session_date").alias("day")).agg(
        F.count(F.lit(1)).alias("sessions"),
        F.round(F.avg(F.col("converted").cast("int")), 4).alias("converted_share"),
        F.round(F.percentile_approx("duration_s", 0.5), 1).alias("median_length_s"),
        F.round(F.avg("events"), 2).alias("events_per_session"),
    )
    first = lakehouse.read("gold.customer_features").select("user_id", F.to_date("first_seen").alias("first_day"))
    users = (
        lakehouse.read("gold.fact_events").select(F.col("event_date").alias("day"), "user_id").distinct()
        .join(first, "user_id")
        .groupBy("day")
        .agg(F.count(F.lit(1)).alias("active_users"), F.count_if(F.col("first_day") == F.col("day")).alias("new_users"))
        .withColumn("returning_users", F.col("active_users") - F.col("new_users"))
    )
    print("Gold model · sessions (by the day they started) and users")
    sessions.join(users, "day", "full").orderBy("day").show(truncate=False)
    versions = lakehouse.read("gold.dim_user").groupBy("user_id").count()
    history = versions.agg(F.count(F.lit(1)).alias("users"), F.count_if(F.col("count") > 1).alias("changed"),
                           F.sum("count").alias("versions")).first()
    pages = {r.page_type: r["count"] for r in lakehouse.read("gold.dim_page").groupBy("page_type").count().collect()}
    print(
        f"  users {history.users or 0:,}: {history.changed or 0:,} changed device, country or source "
        f"({history.versions or 0:,} versions in gold.dim_user); pages "
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(pages.items(), key=lambda kv: -kv[1]))
    )


def print_conservation(lakehouse, manifest: dict | None = None) -> bool:
    from lakehouse import reconcile

    c = reconcile.conservation(lakehouse)
    checks = None
    if manifest is not None:
        checks = reconcile.manifest_checks(c, reconcile.quarantine_by_reason(lakehouse), manifest)
    return report_conservation(c, checks)


def report_conservation(c, checks: list[tuple[str, int, int]] | None = None) -> bool:
    """Print the conservation law's terms (a :class:`lakehouse.reconcile.Conservation`) and, given the checks
    against a producer manifest, each of them; True when everything holds."""
    print("Conservation: landed lines = Silver rows + quarantined + duplicates removed + late not in Silver")
    print(
        f"  {c.landed_lines:,} = {c.silver_rows:,} + {c.quarantined_rows:,} + {c.duplicates_removed:,} "
        f"+ {c.late_not_in_silver:,}   -> {'holds' if c.lines_hold else 'DOES NOT HOLD'}"
        f"   (late events recovered into Silver: {c.late_in_silver:,})"
    )
    print("Files: landed files = files read + files quarantined; the files read hold Bronze's lines")
    print(
        f"  {c.landed_files:,} = {c.files_read:,} + {c.files_quarantined:,};  {c.lines_of_files_read:,} lines "
        f"= {c.landed_lines:,} in Bronze   -> {'holds' if c.files_hold else 'DOES NOT HOLD'}"
    )
    ok = c.holds
    if checks is not None:
        print("\nAgainst the producer's manifest (ground truth):")
        for check, expected, found in checks:
            mark = "ok" if expected == found else "MISMATCH"
            ok &= expected == found
            print(f"  {check:40s} expected {expected:>9,}  found {found:>9,}  {mark}")
    return ok


def print_privacy_scan(tables, specs=None) -> bool:
    """Scan Silver, Gold and ops for IP addresses in clear; True when there are none."""
    from lakehouse_local.privacy_scan import addresses_in_clear

    found = addresses_in_clear(tables) if specs is None else addresses_in_clear(tables, specs)
    print(f"\nIP addresses in clear in Silver, Gold and ops: {len(found) or 'none'}")
    for table, column, address in found[:10]:
        print(f"  {table}.{column}: {address}")
    return not found


# -- commands -------------------------------------------------------------------------------------


DEMO_RATE = 0.7  # events per simulated second


def demo_start_time(events: int, rate: float, now: float | None = None) -> str:
    """The simulated clock's start such that its last event is due at ``now`` (within half a second)."""
    start = round((now if now is not None else time.time()) - events / rate)
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_demo(args: argparse.Namespace) -> int:
    from lakehouse_local.s3server import EmbeddedS3

    started = time.time()
    demo_dir = DEMO_DIR.resolve()
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    # The endpoint must be up before Spark starts, so Spark's Python workers inherit AWS_ENDPOINT_URL.
    s3 = EmbeddedS3().start(export_env=True)
    # The JVM starts while the producer writes (a second core does it; it takes as long).
    session_start = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start")
    spark_future = session_start.submit(_session, args.connect)
    try:
        manifest = _produce_demo(s3, demo_dir, args)
        spark = spark_future.result()
        args.landing = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}"
        args.lakehouse = str(demo_dir / "lakehouse")
        print("notebooks (availableNow):")
        run_pipeline(spark, pipeline_parameters(args))
        lakehouse = _lakehouse(spark, args.lakehouse)
        print_gold_summary(lakehouse)
        print_model_summary(lakehouse)
        ok = print_conservation(lakehouse, manifest)
        ok &= print_privacy_scan(lakehouse)
        print(f"\ndemo finished in {time.time() - started:.0f} s; tables in {Path(args.lakehouse).resolve()}")
        print(f'query them: make sql LAKEHOUSE={args.lakehouse} Q="SELECT * FROM gold.daily_kpis"')
        return 0 if ok else 1
    finally:
        session_start.shutdown(wait=True)
        s3.stop()


def _produce_demo(s3, demo_dir: Path, args: argparse.Namespace) -> dict:
    """The demo's landing data: the producer into the embedded S3 (every fault); returns its manifest."""
    from producer import ProducerConfig, profiles, run

    s3.client().create_bucket(Bucket=DEMO_BUCKET)
    print(f"embedded S3 endpoint: {s3.endpoint_url}  bucket: {DEMO_BUCKET}")
    config = ProducerConfig(
        bucket=DEMO_BUCKET,
        prefix=DEMO_PREFIX,
        endpoint_url=s3.endpoint_url,
        events=args.events,
        seed=args.seed,
        # About 0.7 events per simulated second: 100,000 events span two days, ending as the demo runs,
        # so the ops latencies read in seconds. Only the dates change between runs of one seed.
        start_time=demo_start_time(args.events, DEMO_RATE),
        rate=DEMO_RATE,
        batch_size=1000,
        batch_interval_seconds=3600,
        **profiles.DEMO,
        manifest_path=str(demo_dir / "manifest.json"),
        progress=False,
    )
    t0 = time.time()
    manifest = run(config).to_dict()
    counts = manifest["counts"]
    print(
        f"producer: {counts['lines_sent']:,} lines in {counts['objects']} objects "
        f"({time.time() - t0:.1f} s) -> s3://{DEMO_BUCKET}/{DEMO_PREFIX}"
    )
    return manifest


def cmd_pipeline(args: argparse.Namespace) -> int:
    spark = _session(args.connect)
    print(f"landing {args.landing} -> lakehouse {Path(args.lakehouse).resolve()}")
    seconds = run_pipeline(spark, pipeline_parameters(args))
    lakehouse = _lakehouse(spark, args.lakehouse)
    print_gold_summary(lakehouse)
    print_model_summary(lakehouse)
    ok = print_conservation(lakehouse)
    print(f"pipeline finished in {seconds:.0f} s")
    return 0 if ok else 1


def cmd_sdp(args: argparse.Namespace) -> int:
    """The declarative edition: ``spark-pipelines`` over the demo's embedded S3 (or ``--landing``), then the
    same summary and reconciliation as ``demo``."""
    from lakehouse import reconcile
    from lakehouse.declarative import datasets
    from lakehouse.declarative import reconcile as declarative_reconcile
    from lakehouse_local.declarative import LocalPipeline, WarehouseTables, settings_for
    from lakehouse_local.s3server import EmbeddedS3

    started = time.time()
    folder = Path(args.folder).resolve()
    s3 = manifest = None
    if args.landing is None:
        # A fresh demo, as `demo` runs it; over a landing area of your own the folder is kept, so a
        # second run continues incrementally.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        s3 = EmbeddedS3().start(export_env=True)
    # The session that reads the tables afterwards starts while the producer (or the pipeline) runs.
    session_start = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start")
    spark_future = session_start.submit(_session)
    try:
        if s3 is not None:
            manifest = _produce_demo(s3, folder, args)
            args.landing = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}"
        pipeline = LocalPipeline(folder / "pipeline")
        print(f"declarative pipeline (spark-pipelines, steps in {pipeline.plan_path}): {args.landing}")
        settings = settings_for(
            args.landing,
            max_files_per_trigger=args.max_files_per_trigger,
            max_table_files_per_trigger=args.max_table_files_per_trigger,
        )
        seconds = pipeline.run(settings, echo=True)
        print(f"pipeline update: {seconds:.0f} s")
        tables = WarehouseTables(spark_future.result(), pipeline.warehouse)
        print_gold_summary(tables)
        print_model_summary(tables)
        c = declarative_reconcile.conservation(tables)
        checks = None
        if manifest is not None:
            found = declarative_reconcile.quarantine_by_reason(tables)
            checks = reconcile.manifest_checks(c, found, manifest)
        ok = report_conservation(c, checks)
        by_kind = declarative_reconcile.duplicates_by_kind(tables)
        print("Silver's arrivals it does not hold (silver_duplicates): "
              + ", ".join(f"{kind} {count:,}" for kind, count in by_kind.items()))
        ok &= print_privacy_scan(tables, datasets.DATASETS)
        print(f"\nsdp finished in {time.time() - started:.0f} s; tables (parquet) in {pipeline.warehouse}")
        return 0 if ok else 1
    finally:
        session_start.shutdown(wait=True)
        if s3 is not None:
            s3.stop()


def cmd_purge_raw(args: argparse.Namespace) -> int:
    from lakehouse_local.notebooks import run_notebook

    parameters = {"lakehouse": str(Path(args.lakehouse).resolve()), "checkpoint_root": "",
                  "raw_retention_days": str(args.retention_days)}
    run_notebook(NOTEBOOKS_DIR / RETENTION_NOTEBOOK, _session(), parameters)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from lakehouse_local.sql import run_sql

    spark = _session()
    run_sql(_lakehouse(spark, args.lakehouse), args.query).show(args.limit, truncate=False)
    return 0


def _print_freshness(lakehouse, stop: threading.Event, interval: float) -> None:
    from pyspark.sql import functions as F

    while not stop.wait(interval):
        try:
            if not lakehouse.exists("ops.pipeline_metrics"):
                continue
            latest = (
                lakehouse.read("ops.pipeline_metrics")
                .filter((F.col("layer") == "gold") & (F.col("rows_in") > 0))
                .orderBy(F.col("committed_at").desc())
                .first()
            )
            silver = lakehouse.read("silver.events").count()
            if latest is None:
                print(f"[follow] waiting for the first Gold batch (silver rows: {silver:,})", flush=True)
                continue
            print(
                f"[follow] gold batch {latest['batch_id']}: freshness (produced -> visible in Gold) "
                f"p50 {latest['latency_p50_s'] or 0:.1f} s, p95 {latest['latency_p95_s'] or 0:.1f} s, "
                f"max {latest['latency_max_s'] or 0:.1f} s; silver rows {silver:,}",
                flush=True,
            )
        except Exception as exc:  # noqa: BLE001 - a report that fails once must not stop the streams
            print(f"[follow] freshness not available yet: {exc.__class__.__name__}", flush=True)


def stop_between_batches(spark, timeout_s: float = 120.0) -> None:
    """Stop every active stream when it is between triggers, so no micro-batch is interrupted."""
    deadline = time.time() + timeout_s
    for query in spark.streams.active:
        while time.time() < deadline and query.isActive and query.status.get("isTriggerActive"):
            time.sleep(0.2)
        query.stop()


def cmd_follow(args: argparse.Namespace) -> int:
    from lakehouse_local.notebooks import run_notebook
    from lakehouse_local.s3server import EmbeddedS3
    from producer import ProducerConfig, profiles, run

    # Absolute: the notebook threads change the working directory while they run.
    folder = Path(".lakehouse/follow").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    s3 = EmbeddedS3().start(export_env=True)
    stop = threading.Event()
    try:
        s3.client().create_bucket(Bucket=DEMO_BUCKET)
        spark = _session(args.connect)
        args.landing = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}"
        args.lakehouse = str(folder / "lakehouse")
        params = pipeline_parameters(args)
        run_notebook(NOTEBOOKS_DIR / NOTEBOOKS[0], spark, params)
        params["trigger"] = args.trigger_interval
        lakehouse = _lakehouse(spark, args.lakehouse)
        threads = [
            threading.Thread(target=run_notebook, args=(NOTEBOOKS_DIR / name, spark, params), daemon=True, name=name)
            for name in NOTEBOOKS[1:]
        ]
        for thread in threads:
            thread.start()
        threading.Thread(target=_print_freshness, args=(lakehouse, stop, 10.0), daemon=True).start()
        print(f"follow: producer at {args.rate:g} events/s, streams every {args.trigger_interval}; Ctrl+C to stop")
        config = ProducerConfig(
            bucket=DEMO_BUCKET,
            prefix=DEMO_PREFIX,
            endpoint_url=s3.endpoint_url,
            rate=args.rate,
            duration_seconds=args.duration,
            batch_size=1000,
            batch_interval_seconds=2.0,
            start_time="now",
            **profiles.LIVE,
            manifest_path=str(folder / "manifest.json"),
            progress=False,
        )
        # Ctrl+C ends the producer (it flushes its batch and writes the manifest); then the streams stop.
        with contextlib.suppress(KeyboardInterrupt):
            run(config)
        print("stopping streams (each after its current micro-batch)", flush=True)
        stop.set()
        stop_between_batches(spark)
        return 0
    finally:
        stop.set()
        s3.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def stream_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--connect", action="store_true",
            help="run the notebooks through Spark Connect, as Databricks serverless runs them",
        )
        p.add_argument("--trigger", default="availableNow", help="availableNow or a processing-time interval")
        p.add_argument("--watermark-delay", default="10 minutes", help="Silver's event_time watermark delay")
        p.add_argument("--max-files-per-trigger", type=int, default=20, help="landed files per Bronze micro-batch")
        p.add_argument(
            "--max-table-files-per-trigger", type=int, default=1, help="Bronze Delta files per Silver micro-batch"
        )
        p.add_argument(
            "--gold-max-table-files-per-trigger", type=int, default=1000, help="Silver Delta files per Gold micro-batch"
        )

    demo = sub.add_parser("demo", help="the whole pipeline on the embedded default, then the Gold metrics")
    demo.add_argument("--events", type=int, default=100_000)
    demo.add_argument("--seed", type=int, default=42)
    stream_options(demo)
    # Three Bronze micro-batches: few enough to be quick, enough for Silver's watermark to advance.
    demo.set_defaults(max_files_per_trigger=34)
    demo.set_defaults(func=cmd_demo)

    pipe = sub.add_parser("pipeline", help="run notebooks 00-04 (availableNow) over a landing area")
    pipe.add_argument("--landing", required=True, help="s3://bucket/prefix (AWS_ENDPOINT_URL honoured) or a folder")
    pipe.add_argument("--lakehouse", default=".lakehouse/lakehouse", help="folder of the Delta tables")
    stream_options(pipe)
    pipe.set_defaults(func=cmd_pipeline)

    follow = sub.add_parser("follow", help="producer and all streams running together, printing freshness")
    follow.add_argument("--rate", type=float, default=200.0, help="producer events per second")
    follow.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    follow.add_argument("--trigger-interval", default="5 seconds", help="processing-time trigger of the streams")
    stream_options(follow)
    follow.set_defaults(func=cmd_follow)

    sdp = sub.add_parser("sdp", help="the declarative edition with spark-pipelines, then the Gold metrics")
    sdp.add_argument(
        "--landing", default=None,
        help="s3://bucket/prefix (AWS_ENDPOINT_URL honoured) or a folder; default: the demo's producer into the "
        "embedded S3",
    )
    sdp.add_argument("--folder", default=".lakehouse/sdp", help="the pipeline's spec, storage, metastore and tables")
    sdp.add_argument("--events", type=int, default=100_000)
    sdp.add_argument("--seed", type=int, default=42)
    sdp.add_argument(
        "--max-files-per-trigger", type=int, default=10,
        help="landed files per Bronze micro-batch (10 of the demo's: one Bronze file, its lines in landing order)",
    )
    sdp.add_argument(
        "--max-table-files-per-trigger", type=int, default=1,
        help="Bronze (and arrivals) files per Silver micro-batch: one keeps arrivals in landing order",
    )
    sdp.set_defaults(func=cmd_sdp)

    purge = sub.add_parser("purge-raw", help="remove the raw text of lines older than the retention (notebook 90)")
    purge.add_argument("--lakehouse", default=".lakehouse/lakehouse")
    purge.add_argument("--retention-days", type=int, default=30)
    purge.set_defaults(func=cmd_purge_raw)

    sql = sub.add_parser("sql", help="Spark SQL over the local tables by their Databricks names")
    sql.add_argument("query")
    sql.add_argument("--lakehouse", default=".lakehouse/lakehouse")
    sql.add_argument("--limit", type=int, default=50)
    sql.set_defaults(func=cmd_sql)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)
