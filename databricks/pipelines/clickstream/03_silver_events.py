"""Silver · watermark dedup (the declarative edition of notebook 02, second half).

Reads: the ``silver_arrivals`` stream.
Writes: ``silver_events`` (streaming table: one row per ``event_id``) and ``silver_duplicates`` (materialized
view: the arrivals Silver does not hold, each a duplicate, a conflicting duplicate or a first arrival the
watermark dropped).

Guarantees:
- ``withWatermark("event_time", ...)`` + ``dropDuplicatesWithinWatermark(["event_id"])`` keep the first arrival
  Spark processes of each ``event_id``. The watermark spans the lateness limit (``max_lateness_hours`` +
  ``future_tolerance_minutes``): a flow cannot recover what the watermark drops, so it must drop nothing the
  lateness rules accept. What it drops anyway (a backfill older than that behind the newest event) is in
  ``silver_duplicates`` as ``late_dropped``: counted, not lost without a trace.
- Every valid arrival is in exactly one of ``silver_events`` and ``silver_duplicates``.
"""

from pyspark import pipelines as dp

from lakehouse import catalog
from lakehouse.declarative import datasets, flows
from lakehouse.declarative.settings import PipelineSettings

settings = PipelineSettings.from_conf(spark.conf)
ARRIVALS = datasets.NAMES["silver.arrivals"]
EVENTS = datasets.NAMES["silver.events"]


@dp.table(
    name=EVENTS,
    comment=catalog.SILVER_EVENTS.comment,
    schema=catalog.SILVER_EVENTS.struct(),
    cluster_by=["event_date"],
)
def silver_events():
    # The watermark bounds the dedup state: an event_id is remembered for the lateness limit of event time.
    first_arrivals = (
        spark.readStream.option("maxFilesPerTrigger", str(settings.max_table_files_per_trigger))
        .table(ARRIVALS)
        .withWatermark("event_time", settings.watermark_delay)
        .dropDuplicatesWithinWatermark(["event_id"])
    )
    return flows.silver_events(first_arrivals)


@dp.materialized_view(
    name=datasets.NAMES["silver.duplicates"],
    comment=datasets.SILVER_DUPLICATES.comment,
    schema=datasets.SILVER_DUPLICATES.struct(),
)
def silver_duplicates():
    return flows.duplicates(spark.read.table(ARRIVALS), spark.read.table(EVENTS))
