"""Bronze · Auto Loader from the S3 landing area (the declarative edition of notebook 01).

Reads: the JSON-lines objects under ``clickstream.landing_path`` with Auto Loader (``cloudFiles``,
``binaryFile``: each landed file whole, opened here by the notebooks' Bronze code).
Writes: ``bronze_landed`` (streaming table: every line exactly as it arrived with ``_source_file``,
``_line_number``, ``_ingested_at`` and ``_record_id``, and one record per landed file) and ``bronze_files``
(materialized view: the file records, read or quarantined with the reason).

Guarantees: each landed file is read once across updates (Auto Loader's discovery state is the flow's);
a file that cannot be read (a corrupt gzip stream, bytes that are not UTF-8, an object gone since
discovery) is recorded with the reason and the stream goes on. Malformed lines are kept; Silver decides.
"""

from pyspark import pipelines as dp

from lakehouse import catalog
from lakehouse.declarative import datasets, flows
from lakehouse.declarative.settings import PipelineSettings

settings = PipelineSettings.from_conf(spark.conf)


@dp.table(
    name=datasets.NAMES["bronze.landed"],
    comment=datasets.BRONZE_LANDED.comment,
    schema=datasets.BRONZE_LANDED.struct(),
)
def bronze_landed():
    landed_files = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "binaryFile")  # each file whole: opening it can fail without stopping the stream
        .option("cloudFiles.maxFilesPerTrigger", str(settings.max_files_per_trigger))  # bounds an update's batches
        .option("cloudFiles.includeExistingFiles", "true")  # a new pipeline starts with what has landed
        .option("ignoreMissingFiles", "true")  # an object expired before it was read does not stop the stream
        .load(settings.landing_path)
    )
    # gunzip *.gz, decode UTF-8, split lines as Spark's text source does; a file that cannot be opened
    # gets a record with the reason instead of lines.
    return flows.landed(landed_files)


@dp.materialized_view(
    name=datasets.NAMES["bronze.files"],
    comment=catalog.BRONZE_FILES.comment,
    schema=catalog.BRONZE_FILES.struct(),
)
def bronze_files():
    return flows.bronze_files(spark.read.table(datasets.NAMES["bronze.landed"]))
