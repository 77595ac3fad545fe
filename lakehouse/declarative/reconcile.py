"""The conservation law over the declarative edition's tables (the notebooks' is :mod:`lakehouse.reconcile`).

The same law, every term read from a table, none derived from another:

``landed lines = Silver rows + quarantined rows + duplicates removed + late rows not in Silver``

- landed lines: ``bronze_landed``'s lines; files: ``bronze_files``;
- quarantined rows: ``silver_quarantine`` and the conflicting duplicates of ``silver_duplicates`` (the
  notebooks quarantine those);
- duplicates removed and late rows not in Silver: ``silver_duplicates`` by kind (the notebooks count them
  per micro-batch in ``ops.pipeline_metrics``; a declarative flow has no such hook, so they are a table).

``tables`` is anything that reads a table by name (``read("silver.events")``): the local warehouse reader, or
the pipeline's catalog and schema on Databricks.
"""

from __future__ import annotations

from typing import Protocol

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import reconcile
from lakehouse.declarative import datasets
from lakehouse.reconcile import Conservation


class Tables(Protocol):
    def read(self, name: str) -> DataFrame: ...


def duplicates_by_kind(tables: Tables) -> dict[str, int]:
    rows = tables.read("silver.duplicates").groupBy("kind").count().collect()
    return {kind: 0 for kind in datasets.DUPLICATE_KINDS} | {r["kind"]: r["count"] for r in rows}


def conservation(tables: Tables) -> Conservation:
    """Read every term of the conservation law from the declarative edition's tables."""
    landed = tables.read("bronze.landed")
    files = reconcile.file_counts(tables.read("bronze.files"))
    kinds = duplicates_by_kind(tables)
    silver = tables.read("silver.events")
    return Conservation(
        landed_files=files["landed"],
        files_read=files["read"],
        files_quarantined=files["quarantined"],
        lines_of_files_read=int(files["lines"]),
        landed_lines=landed.filter(F.col("_line_number").isNotNull()).count(),
        silver_rows=silver.count(),
        quarantined_rows=tables.read("silver.quarantine").count() + kinds[datasets.CONFLICTING_DUPLICATE],
        duplicates_removed=kinds[datasets.DUPLICATE],
        late_not_in_silver=kinds[datasets.LATE_DROPPED],
        late_in_silver=silver.filter("is_late").count(),
    )


def quarantine_by_reason(tables: Tables) -> dict[str, int]:
    """Quarantined lines by reason, conflicting duplicates (from ``silver_duplicates``) included."""
    rows = tables.read("silver.quarantine").groupBy("reason").count().collect()
    found = {r["reason"]: r["count"] for r in rows}
    conflicting = duplicates_by_kind(tables)[datasets.CONFLICTING_DUPLICATE]
    if conflicting:
        found[datasets.CONFLICTING_DUPLICATE] = found.get(datasets.CONFLICTING_DUPLICATE, 0) + conflicting
    return found


def arrivals_hold(tables: Tables) -> bool:
    """Every valid arrival is in Silver or in ``silver_duplicates``, and every line in arrivals or quarantine."""
    arrivals = tables.read("silver.arrivals").count()
    landed = tables.read("bronze.landed").filter(F.col("_line_number").isNotNull()).count()
    accounted = tables.read("silver.events").count() + tables.read("silver.duplicates").count()
    return arrivals == accounted and landed == arrivals + tables.read("silver.quarantine").count()
