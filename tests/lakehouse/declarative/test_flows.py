"""The declarative edition's datasets on small batches: the same reading as the notebooks' Silver, the
expectations, what Silver does not hold and why, and Gold in the contract's columns."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality

from lakehouse import catalog, rules
from lakehouse.declarative import datasets, expectations, flows
from lakehouse.declarative.settings import PipelineSettings
from lakehouse.transforms import bronze as bronze_t
from lakehouse.transforms import silver as silver_t
from lakehouse.transforms import validation

T0 = datetime(2026, 11, 20, 10, 0, 0)
SETTINGS = PipelineSettings("s3://b/landing", "test-key")


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _event(n: int, *, action="view", event_time=T0, ingest_delay_s=1.0, **extra) -> str:
    return json.dumps({
        "event_id": _uuid(n), "schema_version": 1, "event_time": event_time.isoformat() + "Z",
        "ingest_time": (event_time + timedelta(seconds=ingest_delay_s)).isoformat() + "Z",
        "user_id": "u1", "session_id": "s1", "action": action, "page": "/home", **extra,
    })


LINES = [
    _event(1, referrer="from 10.1.2.3", extra_field=12345678901234567890123),  # valid; an IP in free text; an unknown field
    "{not json",
    _event(2, action="hover"),
    _event(3, event_time=T0 - timedelta(days=4), ingest_delay_s=4 * 86400),  # too late
    json.dumps(["not", "an", "object"]),
]


def _bronze(spark, lines):
    rows = [(line, "s3://b/landing/f.jsonl", 100, T0, i + 1, T0, f"r{i:04d}") for i, line in enumerate(lines)]
    return spark.createDataFrame(rows, catalog.BRONZE_EVENTS.struct())


def test_silver_reads_each_line_as_the_notebooks_silver_does(spark):
    bronze = _bronze(spark, LINES)
    notebooks = silver_t.apply_lateness_rules(silver_t.parse(bronze, hmac_key=b"test-key"),
                                              max_lateness_hours=72, future_tolerance_minutes=5)
    declarative = flows.parsed(bronze, SETTINGS)
    assert declarative.columns == notebooks.columns
    # Everything but the moment each read the line.
    read_at = validation.READ_AT
    assert declarative.filter(f"{read_at} IS NULL").count() == notebooks.filter(f"{read_at} IS NULL").count() == 0
    assert_df_equality(declarative.drop(read_at), notebooks.drop(read_at), ignore_nullable=True, ignore_row_order=True)
    reasons = {r["_record_id"]: r["_violation"] and r["_violation"]["reason"] for r in declarative.collect()}
    assert reasons == {"r0000": None, "r0001": "malformed_json", "r0002": "invalid_enum", "r0003": rules.TOO_LATE,
                       "r0004": "invalid_type"}


def test_the_expectations_are_every_reason_a_line_earns_and_keep_exactly_the_valid_events(spark):
    assert set(expectations.LINE_REASONS) == set(rules.QUARANTINE_REASONS) - {rules.CONFLICTING_DUPLICATE}
    assert len(expectations.SILVER_EXPECTATIONS) == len(expectations.LINE_REASONS)
    read = flows.parsed(_bronze(spark, LINES), SETTINGS)
    parsed = spark.createDataFrame(read.collect(), read.schema)  # read once; each check below filters it
    for name, condition in expectations.SILVER_EXPECTATIONS.items():
        reason = name.removeprefix("not_")
        assert parsed.filter(f"NOT ({condition})").count() == parsed.filter(f"_violation.reason = '{reason}'").count()

    # Open-source pyspark.pipelines has no expectations: the same rows are dropped by a filter.
    @expectations.expect_all_or_drop(expectations.SILVER_EXPECTATIONS)
    def valid():
        return parsed

    assert [r["_record_id"] for r in valid().collect()] == ["r0000"]
    assert valid.__name__ == "valid", "the dataset keeps its function's name"


def test_quarantine_and_arrivals_split_every_line(spark):
    parsed = flows.parsed(_bronze(spark, LINES), SETTINGS)
    quarantine = flows.quarantine(parsed)
    arrivals = flows.arrivals(silver_t.valid_events(parsed))
    assert quarantine.columns == catalog.QUARANTINE.column_names
    assert arrivals.columns == datasets.SILVER_ARRIVALS.column_names
    assert quarantine.count() + arrivals.count() == len(LINES)
    (arrival,) = arrivals.collect()
    assert arrival["referrer"] != "from 10.1.2.3" and "10.1.2.3" not in arrival["referrer"], "IP hashed"
    assert json.loads(arrival["_rescued_data"])["fields"] == {"extra_field": 12345678901234567890123}


def _arrival(spark, rows):
    columns = ["_record_id", "event_id", "payload_hash", "event_time", "ingest_time", "_source_file", "_line_number"]
    return spark.createDataFrame(rows, columns)


def test_every_arrival_silver_does_not_hold_is_a_duplicate_a_conflict_or_late_dropped(spark):
    t = T0
    arrivals = _arrival(spark, [
        ("r1", "e1", "h1", t, t, "f1", 1),   # kept
        ("r2", "e1", "h1", t, t, "f1", 2),   # same payload: duplicate
        ("r3", "e1", "h9", t, t, "f2", 1),   # another payload: conflicting duplicate
        ("r4", "e2", "h2", t, t, "f2", 2),   # kept
        ("r5", "e3", "h3", t, t, "f3", 1),   # no arrival of e3 kept: the watermark dropped it
        ("r6", "e2", "h8", t, t, "f3", 2),   # held by Silver too
        ("r7", "e2", "h2", t, t, "f4", 1),   # a resend of e2's first arrival: one duplicate, not two rows
    ])
    silver = spark.createDataFrame(
        [("e1", "h1", "r1", t), ("e2", "h2", "r4", t), ("e2", "h8", "r6", t + timedelta(days=3))],
        "event_id string, payload_hash string, _record_id string, ingest_time timestamp",
    )  # e2 twice: a conflicting duplicate the watermark had forgotten; the earlier one is the kept one
    found = {(r["_record_id"], r["kind"], r["kept_record_id"]) for r in flows.duplicates(arrivals, silver).collect()}
    assert found == {("r2", datasets.DUPLICATE, "r1"), ("r3", datasets.CONFLICTING_DUPLICATE, "r1"),
                     ("r5", datasets.LATE_DROPPED, None), ("r7", datasets.DUPLICATE, "r4")}
    assert flows.duplicates(arrivals, silver).count() == len(found)
    assert flows.duplicates(arrivals, silver).columns == datasets.SILVER_DUPLICATES.column_names


def test_silver_rows_take_silver_events_columns_none_late(spark):
    parsed = flows.parsed(_bronze(spark, LINES[:1]), SETTINGS)
    events = flows.silver_events(flows.arrivals(silver_t.valid_events(parsed)))
    assert events.columns == catalog.SILVER_EVENTS.column_names
    assert [r["is_late"] for r in events.collect()] == [False]


def test_bronze_opens_landed_files_into_lines_and_one_record_each(spark):
    files = spark.createDataFrame(
        # A .gz object that is not a gzip stream is recorded with the reason, not fatal.
        [("s3://b/a.jsonl", T0, 9, b"one\ntwo\n"), ("s3://b/b.jsonl.gz", T0, 4, b"oops")], bronze_t.LANDED_FILE
    )
    landed = flows.landed(files)
    assert landed.columns == datasets.BRONZE_LANDED.column_names
    lines = flows.bronze_lines(landed)
    assert lines.columns == catalog.BRONZE_EVENTS.column_names
    assert sorted(r["value"] for r in lines.collect()) == ["one", "two"]
    records = {r["file"]: (r["lines"], r["error"] is None) for r in flows.bronze_files(landed).collect()}
    assert records == {"s3://b/a.jsonl": (2, True), "s3://b/b.jsonl.gz": (0, False)}




@pytest.mark.parametrize("name", sorted({**datasets.GOLD, **datasets.MODEL}))
def test_gold_and_model_views_have_their_tables_public_columns_and_types(spark, name):
    parsed = flows.parsed(_bronze(spark, [_event(1), _event(2, action="purchase")]), SETTINGS)
    silver = flows.silver_events(flows.arrivals(silver_t.valid_events(parsed)))
    view, spec = (flows.gold, datasets.GOLD[name]) if name in datasets.GOLD else (flows.model, datasets.MODEL[name])
    frame = view(name, silver)
    assert frame.columns == [c.name for c in spec.columns] == catalog.spec(name).public_columns
    assert [f.dataType.simpleString().upper() for f in frame.schema] == [
        {"INT": "INT", "BIGINT": "BIGINT"}.get(c.type, c.type) for c in spec.columns
    ]
    assert frame.count() > 0
    assert "_batch_id" not in frame.columns, "a column of the notebooks' incremental tables, not of the contract"
