"""Silver transforms on small hand-made frames: parsing, quarantine reasons, lateness, dedup."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.transforms import silver

T0 = datetime(2026, 11, 20, 10, 0, 0)


def _event(event_id: str, *, action="view", page="/home", event_time=T0, ingest_time=None, **extra) -> str:
    ingest_time = ingest_time or event_time + timedelta(seconds=1)
    return json.dumps(
        {
            "event_id": event_id,
            "schema_version": 1,
            "event_time": event_time.isoformat() + "Z",
            "ingest_time": ingest_time.isoformat() + "Z",
            "user_id": "u1",
            "session_id": "s1",
            "action": action,
            "page": page,
            **extra,
        }
    )


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _bronze(spark, lines: list[str], *, file="s3://b/landing/f1.jsonl", start=0):
    rows = [(line, file, 100, T0, start + i + 1, T0, f"r{start + i:04d}") for i, line in enumerate(lines)]
    return spark.createDataFrame(rows, catalog.BRONZE_EVENTS.struct())


def _parsed(spark, lines, **kwargs):
    # localCheckpoint cuts the lineage as the pipeline's persisted micro-batch does, so each test
    # plans a small query instead of re-optimising the whole validation expression per branch.
    return silver.apply_lateness_rules(
        silver.parse(_bronze(spark, lines, **kwargs), hmac_key=b"test-key"), max_lateness_hours=72, future_tolerance_minutes=5
    ).localCheckpoint()


def test_parse_extracts_typed_contract_columns(spark):
    parsed = _parsed(spark, [_event(_uuid(1), action="purchase", page="/checkout", country="FR")])
    actual = parsed.select("event_id", "schema_version", "event_time", "action", "page", "country", "event_date")
    expected = spark.createDataFrame(
        [(_uuid(1), 1, T0, "purchase", "/checkout", "FR", T0.date())],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
    assert parsed.first()["_violation"] is None


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [
        ('{"event_id": "x", broken', "malformed_json", "$"),
        (json.dumps({"schema_version": 1}), "missing_required_field", "event_id"),
        (_event(_uuid(2)).replace('"view"', '"hover"'), "invalid_enum", "action"),
        (_event(_uuid(3)).replace('"schema_version": 1', '"schema_version": "1"'), "invalid_type", "schema_version"),
        (_event("not-a-uuid"), "invalid_uuid", "event_id"),
        (_event(_uuid(4)).replace("2026-11-20T10:00:00Z", "2026-11-20T10:00:00+02:00"), "invalid_timestamp", "event_time"),
        (_event(_uuid(5)).replace('"schema_version": 1', '"schema_version": 7'), "unsupported_schema_version", "schema_version"),
        (_event(_uuid(6), ip_hash="10.0.0.1"), "invalid_format", "ip_hash"),
        (_event(_uuid(7), event_time=T0, ingest_time=T0 - timedelta(minutes=6)), "future_event_time", "event_time"),
        (_event(_uuid(8), event_time=T0, ingest_time=T0 + timedelta(hours=72, seconds=1)), "too_late", "event_time"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_each_quarantine_reason(spark, line, reason, field):
    parsed = _parsed(spark, [line])
    quarantine = silver.quarantine_rows(silver.invalid_lines(parsed), quarantined_at=F.lit(T0).cast("timestamp"))
    actual = quarantine.select("_record_id", "reason", "field", "raw_line")
    expected = spark.createDataFrame([("r0000", reason, field, line)], actual.schema)
    assert_df_equality(actual, expected, ignore_nullable=True)
    assert silver.valid_events(parsed).count() == 0


def test_lateness_limits_are_inclusive_at_the_boundary(spark):
    lines = [
        _event(_uuid(1), event_time=T0, ingest_time=T0 + timedelta(hours=72)),  # exactly at the limit: kept
        _event(_uuid(2), event_time=T0, ingest_time=T0 - timedelta(minutes=5)),  # exactly 5 min ahead: kept
        _event(_uuid(3), event_time=T0, ingest_time=T0 + timedelta(hours=5)),  # hours late: valid (late)
    ]
    assert silver.valid_events(_parsed(spark, lines)).count() == 3


def _classify(spark, batch_lines, *, kept, silver_rows=(), start=0):
    valid = silver.valid_events(_parsed(spark, batch_lines, start=start))
    kept_df = spark.createDataFrame([(k,) for k in kept], "event_id string")
    existing = spark.createDataFrame(list(silver_rows), "event_id string, payload_hash string, _record_id string")
    return silver.classify_duplicates(valid, kept_df, existing).localCheckpoint()


def _outcomes(classified):
    return sorted((r["_record_id"], r["event_id"], r["_outcome"], r["is_late"]) for r in classified.collect())


def test_natural_and_conflicting_duplicates_in_one_batch_first_arrival_wins(spark):
    original = _event(_uuid(1), page="/a")
    resent = _event(_uuid(1), page="/a", ingest_time=T0 + timedelta(minutes=3))  # same payload, later ingest
    conflicting = _event(_uuid(1), page="/b", ingest_time=T0 + timedelta(minutes=5))
    classified = _classify(spark, [conflicting, resent, original], kept=[_uuid(1)])
    assert _outcomes(classified) == [
        ("r0000", _uuid(1), silver.CONFLICTING, False),
        ("r0001", _uuid(1), silver.DUPLICATE, False),
        ("r0002", _uuid(1), silver.INSERT, False),
    ]
    inserted = silver.silver_rows(classified)
    assert [(r.event_id, r.page) for r in inserted.collect()] == [(_uuid(1), "/a")]
    q = silver.conflicting_quarantine_rows(classified).collect()
    assert [(r.reason, r.field, r._record_id) for r in q] == [("conflicting_duplicate", "event_id", "r0000")]


def test_event_not_kept_by_the_watermark_is_recovered_as_late(spark):
    classified = _classify(spark, [_event(_uuid(1)), _event(_uuid(2))], kept=[_uuid(2)])
    assert _outcomes(classified) == [
        ("r0000", _uuid(1), silver.INSERT, True),
        ("r0001", _uuid(2), silver.INSERT, False),
    ]
    assert {r.event_id: r.is_late for r in silver.silver_rows(classified).collect()} == {_uuid(1): True, _uuid(2): False}


def test_duplicate_of_an_event_already_in_silver_hours_later(spark):
    first = _parsed(spark, [_event(_uuid(1))]).first()
    later = _event(_uuid(1), ingest_time=T0 + timedelta(hours=6))
    conflicting = _event(_uuid(1), action="click", ingest_time=T0 + timedelta(hours=7))
    classified = _classify(
        spark, [later, conflicting], kept=[], silver_rows=[(first.event_id, first.payload_hash, "older-record")], start=10
    )
    assert _outcomes(classified) == [
        ("r0010", _uuid(1), silver.DUPLICATE, True),
        ("r0011", _uuid(1), silver.CONFLICTING, True),
    ]
    assert silver.silver_rows(classified).count() == 0


def test_replayed_batch_recognises_its_own_rows(spark):
    lines = [_event(_uuid(1)), _event(_uuid(1), ingest_time=T0 + timedelta(minutes=1))]
    own = _parsed(spark, lines[:1]).first()
    classified = _classify(spark, lines, kept=[_uuid(1)], silver_rows=[(own.event_id, own.payload_hash, "r0000")])
    assert _outcomes(classified) == [
        ("r0000", _uuid(1), silver.ALREADY_IN_SILVER, False),
        ("r0001", _uuid(1), silver.DUPLICATE, False),
    ]


def test_payload_hash_ignores_ingest_time_only(spark):
    rows = _parsed(
        spark,
        [
            _event(_uuid(1)),
            _event(_uuid(1), ingest_time=T0 + timedelta(hours=1)),
            _event(_uuid(1), page="/other"),
        ],
    ).collect()
    hashes = {r._record_id: r.payload_hash for r in rows}
    assert hashes["r0000"] == hashes["r0001"] != hashes["r0002"]


def test_silver_rows_have_the_silver_table_columns(spark):
    classified = _classify(spark, [_event(_uuid(1), campaign="x")], kept=[_uuid(1)])
    rows = silver.silver_rows(classified)
    assert rows.columns == catalog.SILVER_EVENTS.column_names
    assert json.loads(rows.first()["_rescued_data"]) == {"_file_path": "s3://b/landing/f1.jsonl", "fields": {"campaign": "x"}}


def test_classification_meets_each_event_ids_rows_in_one_shuffle_without_joins(spark, capsys):
    """The batch's rows, Silver's rows and the dedup's verdicts meet in one shuffle on ``event_id``: joins
    shuffled or broadcast each side on its own (three Spark jobs, six shuffles and broadcasts, per batch)."""
    valid = silver.valid_events(_parsed(spark, [_event(_uuid(1)), _event(_uuid(2))]))
    kept = spark.createDataFrame([(_uuid(1),)], "event_id string")
    existing = spark.createDataFrame([], "event_id string, payload_hash string, _record_id string")
    silver.classify_duplicates(valid.select(*silver.DEDUP_COLUMNS), kept, existing).explain()
    plan = capsys.readouterr().out
    exchanges = [line.strip(" +-:") for line in plan.splitlines() if "Exchange" in line]
    assert len(exchanges) == 1 and exchanges[0].startswith("Exchange hashpartitioning(event_id"), plan
    assert "Join" not in plan, plan


def test_silver_and_quarantine_rows_say_when_the_batch_read_their_line_from_the_line_not_the_query(spark):
    """``_processed_at`` and ``quarantined_at`` come with the parsed line: ``current_timestamp()`` would put a
    constant of each micro-batch into the code Spark generates for the writes, which every batch then compiled
    again."""
    original = _event(_uuid(1), page="/a")
    conflicting = _event(_uuid(1), page="/b", ingest_time=T0 + timedelta(minutes=5))
    parsed = _parsed(spark, [original, conflicting, "not json"])
    read_at = {r._record_id: r._processed_at for r in parsed.collect()}
    assert None not in read_at.values()
    classified = _classify(spark, [original, conflicting], kept=[_uuid(1)])
    inserted = silver.silver_rows(classified)
    quarantined = silver.conflicting_quarantine_rows(classified).unionByName(
        silver.quarantine_rows(silver.invalid_lines(parsed))
    )
    for frame in (inserted, quarantined):
        plan = frame._jdf.queryExecution().analyzed().toString().lower()
        assert "current_timestamp" not in plan and "now()" not in plan, plan
    assert [r._processed_at is not None for r in inserted.collect()] == [True]
    assert {r._record_id: r.quarantined_at for r in quarantined.filter("_record_id = 'r0002'").collect()} == {
        "r0002": read_at["r0002"]
    }
    assert quarantined.filter("quarantined_at IS NULL").count() == 0
