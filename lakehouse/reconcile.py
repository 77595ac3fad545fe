"""Reconciliation: the conservation law over the tables, and the comparison with a producer manifest.

``landed lines = Silver rows + quarantined rows + duplicates removed + late rows not in Silver``, and
for files ``landed files = files read + files quarantined``, the files read holding exactly Bronze's lines;
every term is read from a table, none is derived from another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from lakehouse.tables import Lakehouse


@dataclass(frozen=True)
class Conservation:
    landed_lines: int
    silver_rows: int
    quarantined_rows: int
    duplicates_removed: int
    late_not_in_silver: int
    late_in_silver: int
    landed_files: int = 0
    files_read: int = 0
    files_quarantined: int = 0
    lines_of_files_read: int = 0

    @property
    def accounted(self) -> int:
        return self.silver_rows + self.quarantined_rows + self.duplicates_removed + self.late_not_in_silver

    @property
    def files_hold(self) -> bool:
        """Every landed file was read or quarantined, and the files read hold exactly Bronze's lines."""
        return (
            self.landed_files == self.files_read + self.files_quarantined
            and self.lines_of_files_read == self.landed_lines
        )

    @property
    def lines_hold(self) -> bool:
        return self.landed_lines == self.accounted

    @property
    def holds(self) -> bool:
        return self.lines_hold and self.files_hold


def conservation(lakehouse: Lakehouse) -> Conservation:
    """Read every term of the conservation law from the tables."""
    ops = lakehouse.read("ops.pipeline_metrics").filter(F.col("layer") == "silver")
    sums = ops.agg(
        F.coalesce(F.sum("duplicates_removed"), F.lit(0)).alias("dups"),
        F.coalesce(F.sum("late_dropped"), F.lit(0)).alias("late_dropped"),
    ).first()
    silver = lakehouse.read("silver.events")
    files = file_counts(lakehouse.read("bronze.files"))
    return Conservation(
        landed_files=files["landed"],
        files_read=files["read"],
        files_quarantined=files["quarantined"],
        lines_of_files_read=int(files["lines"]),
        landed_lines=lakehouse.read("bronze.events").count(),
        silver_rows=silver.count(),
        quarantined_rows=lakehouse.read("silver.quarantine").count(),
        duplicates_removed=int(sums["dups"]),
        late_not_in_silver=int(sums["late_dropped"]),
        late_in_silver=silver.filter("is_late").count(),
    )


def quarantine_by_reason(lakehouse: Lakehouse) -> dict[str, int]:
    rows = lakehouse.read("silver.quarantine").groupBy("reason").count().collect()
    return {r["reason"]: r["count"] for r in rows}


def against_manifest(lakehouse: Lakehouse, manifest: dict) -> list[tuple[str, int, int]]:
    """(check, expected from the producer's manifest, found in the tables) for each ground-truth count."""
    return manifest_checks(conservation(lakehouse), quarantine_by_reason(lakehouse), manifest)


def manifest_checks(c: Conservation, found: dict[str, int], manifest: dict) -> list[tuple[str, int, int]]:
    """(check, expected, found) for the conservation terms ``c`` and quarantined lines by reason ``found``."""
    counts = manifest["counts"]
    checks = [
        ("landed files", counts["objects"], c.landed_files),
        ("files read", counts["objects"], c.files_read),
        ("landed lines", counts["lines_sent"], c.landed_lines),
        ("silver events (valid, unique)", counts["valid_unique_events"], c.silver_rows),
        ("duplicates removed", counts["natural_duplicates"], c.duplicates_removed),
        ("quarantined", sum(counts["expected_quarantine"].values()), c.quarantined_rows),
    ]
    for reason, expected in sorted(counts["expected_quarantine"].items()):
        checks.append((f"quarantine: {reason}", expected, found.get(reason, 0)))
    return checks


def file_counts(files: DataFrame) -> Row:
    """``bronze.files`` in one row: files landed, read and quarantined, and the lines of the files read."""
    return files.agg(
        F.count(F.lit(1)).alias("landed"),
        F.count_if(F.col("error").isNull()).alias("read"),
        F.count_if(F.col("error").isNotNull()).alias("quarantined"),
        F.coalesce(F.sum(F.when(F.col("error").isNull(), F.col("lines"))), F.lit(0)).alias("lines"),
    ).first()
