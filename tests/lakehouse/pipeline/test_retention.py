"""Raw lines are kept for the retention and no longer: their text goes, their rows and counts stay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import catalog
from lakehouse.pipeline import retention
from lakehouse_local import delta_rs
from lakehouse_local.tables import FolderLakehouse

NOW = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)


def _bronze(record_id: str, ingested: datetime) -> dict:
    return {"value": f'{{"line": "{record_id}"}}', "_source_file": "s3://b/f", "_file_size": 10,
            "_file_modification_time": ingested, "_line_number": 1, "_ingested_at": ingested, "_record_id": record_id}


OLD, RECENT = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC)


def _lakehouse_with_old_and_recent_lines(spark, tmp_path) -> FolderLakehouse:
    """Bronze and the quarantine tables, Bronze holding one line ingested long ago and one recently."""
    tables = FolderLakehouse(spark, str(tmp_path / "lh"))
    for spec in (catalog.BRONZE_EVENTS, catalog.QUARANTINE):
        tables.create_table(spec)
    rows = spark.createDataFrame([_bronze("old", OLD), _bronze("recent", RECENT)], catalog.BRONZE_EVENTS.struct())
    tables.append(rows, "bronze.events", app_id="b", batch_id=0)
    return tables


def test_text_older_than_the_retention_is_removed_and_the_rows_stay(spark, tmp_path):
    tables = _lakehouse_with_old_and_recent_lines(spark, tmp_path)
    old, recent = OLD, RECENT
    quarantined = {c.name: None for c in catalog.QUARANTINE.columns}
    tables.upsert_rows([quarantined | {"_record_id": "q-old", "raw_line": "x", "quarantined_at": old},
                        quarantined | {"_record_id": "q-recent", "raw_line": "y", "quarantined_at": recent}],
                       "silver.quarantine", app_id="q", batch_id=0)

    cutoff = retention.purge_raw_lines(tables, retention_days=30, now=NOW)
    retention.purge_raw_lines(tables, retention_days=30, now=NOW)  # again: nothing changes

    assert cutoff == datetime(2026, 12, 1, 12, 0)
    bronze = {r._record_id: r.value for r in tables.read("bronze.events").collect()}
    assert bronze == {"old": None, "recent": '{"line": "recent"}'}
    quarantine = {r._record_id: r.raw_line for r in tables.read("silver.quarantine").collect()}
    assert quarantine == {"q-old": None, "q-recent": "y"}


def test_a_retention_under_a_day_is_refused(spark, tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        retention.purge_raw_lines(FolderLakehouse(spark, str(tmp_path / "lh")), retention_days=0)


def _files_holding(tables: FolderLakehouse, text: str) -> list[str]:
    """The Parquet files under bronze.events (used by the table or not) whose ``value`` column holds ``text``."""
    import pyarrow.parquet as pq

    folder = Path(tables.path("bronze.events"))
    return [p.name for p in folder.rglob("*.parquet") if text in pq.read_table(p, columns=["value"]).column(0).to_pylist()]


@pytest.mark.parametrize("retention_passed", [False, True])
def test_vacuum_deletes_the_files_still_holding_purged_text_once_the_retention_of_removed_files_passed(
    spark, tmp_path, monkeypatch, retention_passed
):
    if retention_passed:  # the table's 7 days of retention of removed files, made to pass at once
        monkeypatch.setattr(FolderLakehouse, "vacuum", lambda self, name: delta_rs.vacuum(self.path(name), retention_hours=0))
    tables = _lakehouse_with_old_and_recent_lines(spark, tmp_path)
    old_text = _bronze("old", OLD)["value"]

    retention.purge_raw_lines(tables, retention_days=30, now=NOW)

    # The table no longer reads the text either way; the file that held it goes only after the retention.
    assert {r._record_id: r.value for r in tables.read("bronze.events").collect()}["old"] is None
    assert bool(_files_holding(tables, old_text)) is not retention_passed
