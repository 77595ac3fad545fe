"""``Lakehouse`` reads that the pipeline relies on, against real Delta tables."""

from __future__ import annotations

import pyarrow as pa
from chispa import assert_df_equality

from lakehouse.local import delta_rs
from lakehouse.tables import Lakehouse

COLUMNS = ["event_id", "payload_hash", "_record_id"]


def test_read_matching_returns_the_rows_of_the_given_keys_only(spark, tmp_path):
    lakehouse = Lakehouse(spark, str(tmp_path / "lh"))
    stored = pa.table({"event_id": ["e1", "e2", "e3"], "payload_hash": ["h1", "h2", "h3"], "_record_id": [1, 2, 3]})
    delta_rs.write(lakehouse.path("silver.events"), stored, mode="append")
    # A micro-batch's keys: repeated, and one the table does not hold.
    batch = spark.createDataFrame([("e3",), ("e1",), ("e3",), ("new",)], "event_id string")

    got = lakehouse.read_matching("silver.events", batch, "event_id", columns=COLUMNS)

    expected = spark.createDataFrame([("e1", "h1", 1), ("e3", "h3", 3)], "event_id string, payload_hash string, _record_id long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_read_matching_with_no_match_or_no_keys_is_empty_with_the_columns(spark, tmp_path):
    lakehouse = Lakehouse(spark, str(tmp_path / "lh"))
    stored = pa.table({"event_id": ["e1"], "payload_hash": ["h1"], "_record_id": [1]})
    delta_rs.write(lakehouse.path("silver.events"), stored, mode="append")

    for keys in ([("other",)], []):
        got = lakehouse.read_matching(
            "silver.events", spark.createDataFrame(keys, "event_id string"), "event_id", columns=COLUMNS
        )
        assert got.columns == COLUMNS
        assert got.count() == 0
