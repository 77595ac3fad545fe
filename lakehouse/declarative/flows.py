"""What each dataset of the declarative edition holds: ``DataFrame -> DataFrame``, over the shared transforms.

The definitions (``databricks/pipelines/clickstream/``) read the sources (Auto Loader, the pipeline's own
tables), put the watermark and the dedup on Silver's stream, and hand the frames to these functions, which
work the same on a stream and on a batch (the tests run them on small batches).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from lakehouse import catalog
from lakehouse.declarative import datasets
from lakehouse.declarative.settings import PipelineSettings
from lakehouse.transforms import bronze as bronze_t
from lakehouse.transforms import gold as gold_t
from lakehouse.transforms import model as model_t
from lakehouse.transforms import sessions as sessions_t
from lakehouse.transforms import silver as silver_t
from lakehouse.transforms import users as users_t
from lakehouse.transforms import validation

# -- Bronze ---------------------------------------------------------------------------------------


def landed(files: DataFrame) -> DataFrame:
    """Auto Loader's ``binaryFile`` rows as ``bronze_landed``: each file opened (gunzipped, decoded strictly,
    split into lines) as the notebooks' Bronze does, every line with its lineage and one record per file."""
    return bronze_t.bronze_rows(bronze_t.open_files(files)).select(*datasets.BRONZE_LANDED.column_names)


def bronze_lines(landed_rows: DataFrame) -> DataFrame:
    """The landed lines, as the notebooks' ``bronze.events`` rows."""
    return bronze_t.lines_of(landed_rows).select(*catalog.BRONZE_EVENTS.column_names)


def bronze_files(landed_rows: DataFrame) -> DataFrame:
    """The file records, as the notebooks' ``bronze.files`` rows."""
    return bronze_t.file_records(landed_rows).select(*catalog.BRONZE_FILES.column_names)


# -- Silver ---------------------------------------------------------------------------------------


def parsed(lines: DataFrame, settings: PipelineSettings) -> DataFrame:
    """Every line read against the contract, then the lateness rules: ``_violation`` is null for a valid event.

    The same reader and columns as the notebooks' :func:`lakehouse.transforms.silver.parse`, applied as a
    column (:func:`contract_reading`) rather than with ``mapInArrow``: a Spark Connect client asks Spark for a
    frame's columns before ``mapInArrow``, and a pipeline's query function may not ask. Built with ``select``
    only: Spark Connect (4.2) analyses ``withColumn`` as it is planned, which binds a pipeline's flow to its
    input table as the metastore holds it, and the pipeline then no longer runs it after that input's flow.
    """
    reading = contract_reading(settings.hmac_key.encode())
    read = lines.select("*", reading(F.col("value"), F.col("_source_file")).alias("_contract")).select(
        *catalog.BRONZE_EVENTS.column_names, "_contract.*"
    )
    violation = F.when(
        F.col(_VIOLATION_PARTS[0]).isNotNull(),
        F.struct(*[F.col(part).alias(name) for part, name in zip(_VIOLATION_PARTS, _VIOLATION_FIELDS, strict=True)]),
    )
    late = silver_t.lateness_violation(
        max_lateness_hours=settings.max_lateness_hours, future_tolerance_minutes=settings.future_tolerance_minutes
    )
    contract_columns = [f.name for f in validation.output_fields()[1:]]
    return read.select(
        *catalog.BRONZE_EVENTS.column_names, F.coalesce(violation, late).alias(silver_t.VIOLATION), *contract_columns
    )


_VIOLATION_FIELDS = tuple(f.name for f in validation.VIOLATION_TYPE)
_VIOLATION_PARTS = tuple(f"{silver_t.VIOLATION}_{name}" for name in _VIOLATION_FIELDS)


def contract_reading(hmac_key: bytes):
    """A pandas UDF of (``value``, ``_source_file``): :class:`~lakehouse.transforms.validation.ContractReader`'s
    columns for each line, the violation's fields flattened (``_violation_reason``, ...).

    Arrow in and out: the lines become one Arrow batch for the reader, and its typed columns go back as
    Arrow-backed pandas columns, so values are not converted on the way.
    """
    reader = validation.ContractReader(hmac_key)
    fields = validation.output_fields()
    flat = pa.schema([*(pa.field(part, pa.string()) for part in _VIOLATION_PARTS), *fields[1:]])

    @F.pandas_udf(from_arrow_schema(flat))
    def read_contract(values: pd.Series, paths: pd.Series) -> pd.DataFrame:
        batch = pa.RecordBatch.from_arrays(
            [pa.array(values, pa.string(), from_pandas=True), pa.array(paths, pa.string(), from_pandas=True)],
            names=["value", "_source_file"],
        )
        read = reader.read_batch(batch)
        columns = [*read.column(silver_t.VIOLATION).flatten(), *read.columns[3:]]
        return pa.RecordBatch.from_arrays(columns, schema=flat).to_pandas(types_mapper=pd.ArrowDtype)

    return read_contract


def arrivals(valid_lines: DataFrame) -> DataFrame:
    """``silver_arrivals`` rows from the lines the expectations kept (valid events)."""
    return valid_lines.select(*datasets.SILVER_ARRIVALS.column_names)


def quarantine(parsed_lines: DataFrame) -> DataFrame:
    """The lines that are not valid events, as ``silver.quarantine`` rows with their typed reason."""
    return silver_t.quarantine_rows(silver_t.invalid_lines(parsed_lines))


def silver_events(first_arrivals: DataFrame) -> DataFrame:
    """``silver.events`` rows from the first arrival of each event_id.

    ``is_late`` is false: Silver holds no event that arrived behind its watermark (an arrival the watermark
    dropped is in ``silver_duplicates`` as ``late_dropped``).
    """
    computed = {"is_late": F.lit(False), "_processed_at": F.current_timestamp()}
    return first_arrivals.select(
        *[computed[name].alias(name) if name in computed else F.col(name) for name in catalog.SILVER_EVENTS.column_names]
    )


def duplicates(arrivals_rows: DataFrame, silver: DataFrame) -> DataFrame:
    """The arrivals Silver does not hold, each with its kind: the same payload as the arrival Silver kept
    (``duplicate``), another payload (``conflicting_duplicate``), or no arrival of that event_id kept
    (``late_dropped``: the watermark dropped the first arrival)."""
    # The arrival Silver holds for each event_id: its earliest, should Silver hold two (a conflicting duplicate
    # that came after the watermark had forgotten the id).
    first_kept = F.min_by(F.struct("payload_hash", "_record_id"), "ingest_time")
    kept = silver.groupBy("event_id").agg(first_kept.alias("_kept")).select(
        "event_id", F.col("_kept.payload_hash").alias("_kept_hash"), F.col("_kept._record_id").alias("kept_record_id")
    )
    not_kept = arrivals_rows.join(silver.select("_record_id"), "_record_id", "left_anti")
    kind = (
        F.when(F.col("kept_record_id").isNull(), F.lit(datasets.LATE_DROPPED))
        .when(F.col("payload_hash") == F.col("_kept_hash"), F.lit(datasets.DUPLICATE))
        .otherwise(F.lit(datasets.CONFLICTING_DUPLICATE))
    )
    joined = not_kept.join(kept, "event_id", "left")
    return joined.select(
        *[kind.alias(name) if name == "kind" else F.col(name) for name in datasets.SILVER_DUPLICATES.column_names]
    )


# -- Gold -----------------------------------------------------------------------------------------


def gold(name: str, silver: DataFrame) -> DataFrame:
    """Gold table ``name`` (``gold.daily_kpis``, ...) from all of Silver, in its contract's columns and types."""
    metrics = gold_t.GOLD_METRICS[name](silver)
    return metrics.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in datasets.GOLD[name].columns])


def model(name: str, silver: DataFrame) -> DataFrame:
    """Gold model table ``name`` (``gold.fact_events``, ...) from all of Silver, in its public columns and types.

    The notebooks' transforms, given all of Silver as one batch and no stored rows: each folds a batch into the
    rows a table holds, and from nothing that is the table itself.
    """
    tables = {
        "gold.fact_events": lambda: model_t.fact_events(silver),
        # A grouping, not distinct(): Spark Connect 4.2 analyses a deduplication when its flow is registered.
        "gold.dim_date": lambda: model_t.calendar_of(silver.groupBy(F.year("event_date").alias("year")).count()),
        "gold.dim_page": lambda: model_t.page_rows(silver),
        "gold.sessions": lambda: sessions_t.updated_sessions(sessions_t.session_partials(silver), None, 0),
        "gold.dim_user": lambda: users_t.user_versions(silver.select("user_id", "event_time", "event_id", *users_t.TRACKED)),
        "gold.customer_features": lambda: users_t.customer_features(silver.select(*users_t.HISTORY_COLUMNS)),
    }
    rows = tables[name]()
    return rows.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in datasets.MODEL[name].columns])
