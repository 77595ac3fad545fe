"""Silver · contract expectations and quarantine (the declarative edition of notebook 02, first half).

Reads: the ``bronze_landed`` stream (its lines).
Writes: ``silver_arrivals`` (streaming table: every valid event line, duplicates included) and
``silver_quarantine`` (streaming table: every line that cannot be an event, with its typed reason, the
offending field and the raw line). ``03_silver_events`` deduplicates the arrivals.

Guarantees:
- Lines are read against ``schemas/clickstream.schema.json`` by the notebooks' contract reader; every
  quarantine reason a line can earn is an expectation, so the event log counts the lines dropped per reason.
- Every line is in exactly one of ``silver_arrivals`` and ``silver_quarantine``.
- Lateness is measured within the event: ``ingest_time - event_time`` over ``max_lateness_hours`` is
  ``too_late``; ``event_time`` more than ``future_tolerance_minutes`` after ``ingest_time`` is ``future_event_time``.
"""

from pyspark import pipelines as dp

from lakehouse import catalog
from lakehouse.declarative import datasets, expectations, flows
from lakehouse.declarative.settings import PipelineSettings

settings = PipelineSettings.from_conf(spark.conf)
ARRIVALS = datasets.NAMES["silver.arrivals"]


@dp.temporary_view(name="silver_parsed")
def silver_parsed():
    # Each line read once, strictly (one JSON object per line): a `_violation` (null for a valid event),
    # the typed columns, `_rescued_data` and a `payload_hash`; IP addresses in free text keyed-hashed.
    landed = spark.readStream.option("maxFilesPerTrigger", str(settings.max_table_files_per_trigger)).table(
        datasets.NAMES["bronze.landed"]
    )
    lines = flows.bronze_lines(landed)
    return flows.parsed(lines, settings)


@dp.temporary_view(name="silver_valid")
@expectations.expect_all_or_drop(expectations.SILVER_EXPECTATIONS)
def silver_valid():
    return spark.readStream.table("silver_parsed")


@dp.table(name=ARRIVALS, comment=datasets.SILVER_ARRIVALS.comment, schema=datasets.SILVER_ARRIVALS.struct())
def silver_arrivals():
    return flows.arrivals(spark.readStream.table("silver_valid"))


@dp.table(
    name=datasets.NAMES["silver.quarantine"], comment=catalog.QUARANTINE.comment, schema=catalog.QUARANTINE.struct()
)
def silver_quarantine():
    return flows.quarantine(spark.readStream.table("silver_parsed"))
