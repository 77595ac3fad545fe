"""Silver's Spark validator agrees with the contract's jsonschema validator, rule for rule."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from lakehouse import contract
from lakehouse.transforms import validation

EXAMPLES = sorted((contract.SCHEMA_DIR / "examples").glob("*/*.json"))


def _line(path) -> str:
    text = path.read_text()
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return text.rstrip("\n")


def _validate(spark, lines: list[str]):
    df = spark.createDataFrame([(i, line) for i, line in enumerate(lines)], "i int, value string")
    out = validation.with_json_map(df).select(
        "i",
        validation.violation_column().alias("v"),
        validation.rescued_data_column(F.lit("s3://bucket/landing/a.jsonl")).alias("rescued"),
        *validation.typed_columns(),
    )
    return [row for row in sorted(out.collect(), key=lambda r: r.i)]


def test_every_example_gets_the_same_verdict_as_jsonschema(spark):
    lines = [_line(p) for p in EXAMPLES]
    for path, line, row in zip(EXAMPLES, lines, _validate(spark, lines), strict=True):
        expected = contract.violation_of_line(line)
        found = (row.v.reason, row.v.field) if row.v else None
        assert found == ((expected.reason, expected.field) if expected else None), path.name


EDGE_CASES = [
    {"schema_version": 1.0},  # an integer-valued number is an integer for JSON Schema
    {"schema_version": True},
    {"schema_version": 2},
    {"event_time": "2026-02-30T10:00:00Z"},  # no such day
    {"event_time": "2026-11-20t10:15:30z"},  # RFC 3339 allows lower case
    {"event_time": "2026-11-20T10:15:30.123456789Z"},
    {"event_id": "3F1C1D2E-8A4B-4C5D-9E6F-7A8B9C0D1E2F"},
    {"event_id": "{3f1c1d2e-8a4b-4c5d-9e6f-7a8b9c0d1e2f}"},
    {"referrer": None, "source": None, "user_agent": None},
    {"device_type": None},
    {"country": "D1"},
    {"ip_hash": "A" * 64},
    {"page": ""},
    {"action": 1},
    {"nested": {"a": [1, 2]}, "n": 3},
]


@pytest.mark.parametrize("change", EDGE_CASES, ids=[json.dumps(c)[:40] for c in EDGE_CASES])
def test_edge_cases_agree_with_jsonschema(spark, change):
    base = json.loads((contract.SCHEMA_DIR / "examples/valid/view_required_fields_only.json").read_text())
    event = {**base, **change}
    line = json.dumps(event)
    (row,) = _validate(spark, [line])
    expected = contract.violation(event)
    assert ((row.v.reason, row.v.field) if row.v else None) == ((expected.reason, expected.field) if expected else None)


def test_unknown_fields_are_rescued_with_the_file_path_and_the_event_stays_valid(spark):
    base = json.loads((contract.SCHEMA_DIR / "examples/valid/view_required_fields_only.json").read_text())
    (row,) = _validate(spark, [json.dumps({**base, "campaign": "bf", "score": 1.5, "tags": ["a"]})])
    assert row.v is None
    assert json.loads(row.rescued) == {
        "campaign": "bf",
        "score": 1.5,
        "tags": ["a"],
        "_file_path": "s3://bucket/landing/a.jsonl",
    }


def test_valid_event_has_no_rescued_data_and_typed_values(spark):
    from datetime import datetime

    line = _line(contract.SCHEMA_DIR / "examples/valid/click_all_optional_fields.json")
    (row,) = _validate(spark, [line])
    assert row.rescued is None
    assert row.schema_version == 1
    assert row.action == "click"
    assert row.event_time == datetime(2026, 11, 20, 10, 15, 30, 123000)
    assert row.country == "DE"


def test_lines_that_are_not_one_strict_json_object_are_named_for_what_they_are(spark):
    """RFC 8259 JSON only: single quotes, NaN and repeated keys are malformed, as ``parse_json`` reads them."""
    event = (contract.SCHEMA_DIR / "examples/valid/view_required_fields_only.json").read_text().strip()
    cases = {
        event: None,
        "  " + event + "  ": None,
        event[:-1] + ', "extra": NaN}': ("malformed_json", "$"),
        event.replace('"', "'"): ("malformed_json", "$"),
        event[:-1] + ', "page": "/again"}': ("malformed_json", "$"),  # a repeated key
        event[:40]: ("malformed_json", "$"),
        "": ("malformed_json", "$"),
        "[" + event + "]": ("invalid_type", "$"),
        '"a string"': ("invalid_type", "$"),
        "null": ("invalid_type", "$"),
        "{}": ("missing_required_field", "event_id"),
    }
    rows = _validate(spark, list(cases))
    assert [(r.v.reason, r.v.field) if r.v else None for r in rows] == list(cases.values())
    assert rows[7].v.message.startswith("event must be a JSON object, got array<object<")
