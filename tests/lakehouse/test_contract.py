"""The contract: examples, metaschema, Avro agreement, derived Spark schema, evolution rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import fastavro
import pytest
from jsonschema import Draft202012Validator

from lakehouse import contract

EXAMPLES = contract.SCHEMA_DIR / "examples"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))


def test_schema_passes_the_draft_2020_12_metaschema():
    Draft202012Validator.check_schema(contract.load_schema())


def test_examples_cover_every_action_and_every_rule():
    actions = {json.loads(p.read_text())["action"] for p in VALID}
    assert actions == {"view", "click", "add_to_cart", "purchase"}
    reasons = {p.name.split("__")[0] for p in INVALID}
    assert reasons == set(contract.CONTRACT_REASONS)
    missing = {p.stem.split("__")[1] for p in INVALID if p.name.startswith("missing_required_field")}
    assert missing == set(contract.required_fields())


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_validates(path: Path):
    assert contract.violation_of_line(path.read_text()) is None


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_fails_with_the_rule_its_name_gives(path: Path):
    expected_reason, rest = path.stem.split("__", 1)
    found = contract.violation_of_line(path.read_text())
    assert found is not None, f"{path.name} should be rejected"
    assert found.reason == expected_reason
    if expected_reason not in ("malformed_json",) and rest != "not_an_object":
        assert rest.startswith(found.field), (path.name, found)


def test_validate_raises_a_message_naming_the_rule_and_field():
    event = json.loads((EXAMPLES / "invalid" / "invalid_enum__action.json").read_text())
    with pytest.raises(contract.ContractError, match=r"invalid_enum on 'action'"):
        contract.validate(event)


def test_unknown_fields_do_not_make_an_event_invalid():
    event = json.loads((EXAMPLES / "valid" / "view_required_fields_only.json").read_text())
    event["experiment_bucket"] = "b"
    assert contract.is_valid(event)


def _avro_field_types(avro_type):
    """(logical or primitive type name, nullable) of one Avro field type."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    nullable = "null" in branches
    (branch,) = [b for b in branches if b != "null"]
    if isinstance(branch, dict):
        return branch.get("logicalType") or branch["type"], nullable, branch.get("symbols")
    return branch, nullable, None


def test_avro_and_json_schemas_agree_field_by_field():
    avro = fastavro.schema.load_schema(str(contract.AVRO_PATH))
    schema = contract.load_schema()
    avro_fields = {f["name"]: f for f in avro["fields"]}
    assert list(avro_fields) == contract.field_names()
    expected_avro_type = {
        ("string", "uuid"): "uuid",
        ("string", "date-time"): "timestamp-micros",
        ("string", None): "string",
        ("integer", None): "int",
    }
    for name, prop in schema["properties"].items():
        json_type, json_nullable = contract._json_types(prop)
        avro_type, avro_nullable, symbols = _avro_field_types(avro_fields[name]["type"])
        required = name in schema["required"]
        if "enum" in prop:
            assert avro_type == "enum" and symbols == prop["enum"], name
        else:
            assert avro_type == expected_avro_type[(json_type, prop.get("format"))], name
        # Required fields are non-null in Avro; optional ones are a null union with a null default.
        assert avro_nullable == (not required), name
        if not required:
            assert "default" in avro_fields[name] and avro_fields[name]["default"] is None, name
        assert not (required and json_nullable), name


def test_examples_round_trip_through_avro(tmp_path):
    from datetime import datetime

    avro = fastavro.schema.load_schema(str(contract.AVRO_PATH))
    records = []
    for path in VALID:
        event = json.loads(path.read_text())
        record = {k: v for k, v in event.items() if k in contract.field_names()}
        for ts in ("event_time", "ingest_time"):
            record[ts] = datetime.fromisoformat(record[ts].replace("Z", "+00:00"))
        records.append(record)
    out = tmp_path / "events.avro"
    with out.open("wb") as fh:
        fastavro.writer(fh, avro, records)
    with out.open("rb") as fh:
        back = list(fastavro.reader(fh))
    assert [str(r["event_id"]) for r in back] == [r["event_id"] for r in records]
    assert [r["action"] for r in back] == [r["action"] for r in records]


def test_derived_spark_schema_equals_the_expected_struct():
    from pyspark.sql import types as T

    expected = T.StructType(
        [
            T.StructField("event_id", T.StringType(), False),
            T.StructField("schema_version", T.IntegerType(), False),
            T.StructField("event_time", T.TimestampType(), False),
            T.StructField("ingest_time", T.TimestampType(), False),
            T.StructField("user_id", T.StringType(), False),
            T.StructField("session_id", T.StringType(), False),
            T.StructField("action", T.StringType(), False),
            T.StructField("page", T.StringType(), False),
            T.StructField("referrer", T.StringType(), True),
            T.StructField("device_type", T.StringType(), True),
            T.StructField("country", T.StringType(), True),
            T.StructField("ip_hash", T.StringType(), True),
            T.StructField("user_agent", T.StringType(), True),
            T.StructField("source", T.StringType(), True),
        ]
    )
    derived = contract.spark_schema()
    assert [(f.name, f.dataType, f.nullable) for f in derived] == [(f.name, f.dataType, f.nullable) for f in expected]
    assert all(f.metadata["comment"] for f in derived)


def _schema():
    return copy.deepcopy(contract.load_schema())


def _add_optional(s):
    s["properties"]["coupon_code"] = {"type": ["string", "null"]}


def _add_required(s):
    s["properties"]["tenant_id"] = {"type": "string"}
    s["required"].append("tenant_id")


def _remove_required(s):
    del s["properties"]["page"]
    s["required"].remove("page")


def _rename_required(s):
    s["properties"]["page_path"] = s["properties"].pop("page")
    s["required"] = ["page_path" if f == "page" else f for f in s["required"]]


def _remove_optional(s):
    del s["properties"]["user_agent"]


def _change_type(s):
    s["properties"]["user_id"]["type"] = "integer"


def _make_required(s):
    s["required"].append("country")


def _make_optional(s):
    s["required"].remove("page")


def _add_enum_value(s):
    s["properties"]["action"]["enum"].append("search")


def _remove_enum_value(s):
    s["properties"]["action"]["enum"].remove("add_to_cart")


def _drop_null(s):
    s["properties"]["referrer"]["type"] = "string"


def _tighten_pattern(s):
    s["properties"]["country"]["pattern"] = "^(US|DE)$"


def _relax_pattern(s):
    del s["properties"]["country"]["pattern"]


def _reject_unknown(s):
    s["additionalProperties"] = False


CHANGES = [
    (_add_optional, "optional_field_added", True),
    (_add_required, "required_field_added", False),
    (_remove_required, "required_field_removed", False),
    (_rename_required, "required_field_renamed", False),
    (_remove_optional, "optional_field_removed", True),
    (_change_type, "type_changed", False),
    (_make_required, "field_made_required", False),
    (_make_optional, "field_made_optional", True),
    (_add_enum_value, "enum_values_added", True),
    (_remove_enum_value, "enum_values_removed", False),
    (_drop_null, "null_no_longer_allowed", False),
    (_tighten_pattern, "pattern_tightened", False),
    (_relax_pattern, "pattern_relaxed", True),
    (_reject_unknown, "unknown_fields_rejected", False),
]


@pytest.mark.parametrize(("mutate", "kind", "compatible"), CHANGES, ids=[c[1] for c in CHANGES])
def test_compatibility_check_classifies_each_kind_of_change(mutate, kind, compatible):
    old, new = _schema(), _schema()
    mutate(new)
    changes = contract.classify_change(old, new)
    assert [(c.kind, c.compatible) for c in changes] == [(kind, compatible)]
    assert contract.is_breaking(old, new) is (not compatible)


def test_compatible_changes_keep_every_valid_example_valid():
    for mutate, _, compatible in CHANGES:
        if not compatible:
            continue
        new = _schema()
        mutate(new)
        validator = Draft202012Validator(new, format_checker=Draft202012Validator.FORMAT_CHECKER)
        for path in VALID:
            assert validator.is_valid(json.loads(path.read_text())), (mutate.__name__, path.name)


def test_breaking_change_without_version_bump_is_refused_and_with_a_bump_is_accepted():
    old, new = _schema(), _schema()
    _rename_required(new)
    with pytest.raises(contract.ContractError, match="schema_version bump"):
        contract.check_evolution(old, new)
    new["properties"]["schema_version"]["const"] = 2
    contract.check_evolution(old, new)


def test_current_contract_is_compatible_with_the_released_version_it_claims():
    """Editing the contract in place must not break events of the version it still carries."""
    current = contract.load_schema()
    released = contract.SCHEMA_DIR / "history" / f"clickstream.v{contract.schema_version(current)}.schema.json"
    assert released.exists(), f"add {released.name} when bumping schema_version"
    contract.check_evolution(json.loads(released.read_text()), current)
    for path in VALID:
        assert contract.is_valid(json.loads(path.read_text())), path.name
