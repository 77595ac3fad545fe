"""The clickstream data contract: one JSON Schema drives validation, the Spark schema and evolution checks.

`schemas/clickstream.schema.json` is the single source. Everything here is derived from it:

* :func:`parse_line` reads a line strictly: one RFC 8259 JSON value and nothing else;
* :func:`validate` / :func:`violation` check an event with jsonschema (formats enforced) and name the
  first broken rule as a typed quarantine reason. Two readings are pinned down where Python's
  jsonschema would be looser than JSON Schema itself: a ``pattern`` is an ECMA-262 regular expression,
  so ``$`` ends the value (Python's ``$`` also matches before a final line break); and a ``date-time``
  is a whole RFC 3339 value that Python, Spark and Delta can all hold (years 0001-9999);
* :func:`spark_schema` derives the Spark ``StructType`` used by Silver;
* :func:`classify_change` tells a compatible schema change from a breaking one (which needs a
  ``schema_version`` bump).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from jsonschema import Draft202012Validator, FormatChecker
from rfc3339_validator import validate_rfc3339

# Installed (the wheel deployed to Databricks), the contract is package data: lakehouse/schemas/. In a
# checkout it is the repository's top-level schemas/ folder, the single source the wheel copies.
_PACKAGED = resources.files(__package__) / "schemas"
SCHEMA_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_PATH = SCHEMA_DIR / "clickstream.schema.json"
AVRO_PATH = SCHEMA_DIR / "clickstream.avsc"

# Quarantine reasons that come from the contract itself, in the order they are reported when an
# event breaks several rules at once. Silver's Spark validator uses the same order.
MALFORMED_JSON = "malformed_json"
CONTRACT_REASONS = (
    MALFORMED_JSON,
    "missing_required_field",
    "invalid_type",
    "unsupported_schema_version",
    "invalid_enum",
    "invalid_uuid",
    "invalid_timestamp",
    "invalid_format",
)


@cache
def load_schema(path: str | None = None) -> dict[str, Any]:
    """Load the contract (or another version of it, by path)."""
    return json.loads((Path(path) if path else SCHEMA_PATH).read_text())


# -- reading a pattern and a date-time as JSON Schema means them ------------------------------------

# An unescaped ``$`` outside a character class: the end of the value in ECMA-262.
_DOLLAR = re.compile(r"(\\.|\[(?:\\.|[^\]])*\])|\$")


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled with ECMA-262's meaning of ``$`` (end of input) and ASCII classes (``\\d``)."""
    return re.compile(_DOLLAR.sub(lambda m: m.group(1) or r"\Z", pattern), re.ASCII)


def _ecma_pattern(validator, pattern: str, instance: Any, schema: dict[str, Any]):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def is_date_time(instance: object) -> bool:
    """RFC 3339 date-time, as jsonschema checks it (either case of T and Z), and nothing after it."""
    if not isinstance(instance, str):
        return True
    return not instance.endswith("\n") and validate_rfc3339(instance.upper())


FORMAT_CHECKER = FormatChecker(formats=())
FORMAT_CHECKER.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
FORMAT_CHECKER.checks("date-time")(is_date_time)
ContractValidator = jsonschema.validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def _validator(path: str | None = None) -> Draft202012Validator:
    schema = load_schema(path)
    Draft202012Validator.check_schema(schema)
    return ContractValidator(schema, format_checker=FORMAT_CHECKER)


def sensitive_fields(schema: dict[str, Any] | None = None) -> frozenset[str]:
    """Fields the contract marks ``"x-sensitive": true``: a rejected value of one is never echoed."""
    schema = schema or load_schema()
    return frozenset(name for name, prop in schema["properties"].items() if prop.get("x-sensitive"))


def schema_version(schema: dict[str, Any] | None = None) -> int:
    """The ``schema_version`` value events of this contract carry."""
    schema = schema or load_schema()
    return int(schema["properties"]["schema_version"]["const"])


def actions(schema: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The ``action`` values, in funnel order (view, click, add_to_cart, purchase)."""
    schema = schema or load_schema()
    return tuple(schema["properties"]["action"]["enum"])


def required_fields(schema: dict[str, Any] | None = None) -> list[str]:
    schema = schema or load_schema()
    return list(schema["required"])


def field_names(schema: dict[str, Any] | None = None) -> list[str]:
    schema = schema or load_schema()
    return list(schema["properties"])


@dataclass(frozen=True)
class Violation:
    """The first contract rule an event breaks."""

    reason: str
    field: str
    message: str


def _reason_for(error: jsonschema.ValidationError, schema: dict[str, Any]) -> tuple[str, str]:
    field = str(error.path[0]) if error.path else "$"
    keyword = error.validator
    prop = schema["properties"].get(field, {})
    if keyword == "required":
        missing = [f for f in schema["required"] if f not in error.instance]
        return "missing_required_field", missing[0] if missing else "$"
    if keyword == "type":
        return "invalid_type", field
    if keyword == "const" and field == "schema_version":
        return "unsupported_schema_version", field
    if keyword == "enum":
        return "invalid_enum", field
    if prop.get("format") == "uuid":
        return "invalid_uuid", field
    if prop.get("format") == "date-time":
        return "invalid_timestamp", field
    return "invalid_format", field


def _rank(reason: str, field: str, schema: dict[str, Any]) -> tuple[int, int]:
    names = field_names(schema)
    return CONTRACT_REASONS.index(reason), names.index(field) if field in names else -1


def _message(error: jsonschema.ValidationError, reason: str, field: str, sensitive: frozenset[str]) -> str:
    if field in sensitive and error.validator not in ("required", "type"):
        return f"'{field}' is not a valid {field} ({reason}); the value is not repeated here"
    return error.message


def violations(event: Any, *, schema_path: str | None = None) -> list[Violation]:
    """Every rule ``event`` (a parsed JSON value) breaks, first first (see :func:`violation`)."""
    schema = load_schema(schema_path)
    sensitive = sensitive_fields(schema)
    found = []
    for error in _validator(schema_path).iter_errors(event):
        reason, field = _reason_for(error, schema)
        found.append((_rank(reason, field, schema), Violation(reason, field, _message(error, reason, field, sensitive))))
    return [v for _, v in sorted(found, key=lambda item: item[0])]


def violation(event: Any, *, schema_path: str | None = None) -> Violation | None:
    """Return the first rule ``event`` (a parsed JSON value) breaks, or ``None`` when it is valid.

    "First" is fixed by :data:`CONTRACT_REASONS` and then by the field order of the schema, so the
    producer, the tests and Silver all name the same reason for the same event. Messages never repeat
    a rejected value of a field the contract marks sensitive.
    """
    found = violations(event, schema_path=schema_path)
    return found[0] if found else None


# -- strict JSON lines -------------------------------------------------------------------------------


class MalformedLineError(ValueError):
    """A line that is not exactly one RFC 8259 JSON value."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise MalformedLineError(f"member {twice!r} is given more than once")
    return members


def _not_json(constant: str) -> None:
    raise MalformedLineError(f"{constant} is not a JSON value")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def parse_line(line: str, **hooks: Any) -> Any:
    """The JSON value of one line, read strictly, or :class:`MalformedLineError` saying why not.

    Strict means RFC 8259 and nothing else: one value, surrounded by whitespace at most (two values,
    trailing text or comments are malformed); no ``NaN``/``Infinity``; no member name given twice; no
    string holding an unpaired UTF-16 surrogate (it cannot be stored as UTF-8). ``hooks`` go to
    :func:`json.loads` (``parse_float``, ``parse_int``).

    Most lines are compact JSON as producers write it. For those, orjson reads the line and writes the
    value back byte for byte, which proves the line strict (a dict has no repeated member; orjson reads
    one value and rejects NaN and surrogates) at a fifth of the cost; any other line takes the checks above.
    """
    if not hooks:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
        else:
            if orjson.dumps(value) == line.encode():
                return value
    try:
        value = json.loads(line, object_pairs_hook=_unique_members, parse_constant=_not_json, **hooks)
    except MalformedLineError:
        raise
    except RecursionError:
        raise MalformedLineError("nested too deeply to read") from None
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise MalformedLineError(f"not valid JSON: {detail}") from None
    if "\\u" in line and _has_lone_surrogate(value):
        raise MalformedLineError("a string holds an unpaired UTF-16 surrogate, which is not valid Unicode text")
    return value


def violation_of_line(line: str) -> Violation | None:
    """Like :func:`violation` for one raw line, read by :func:`parse_line`; unreadable text is ``malformed_json``."""
    try:
        event = parse_line(line)
    except MalformedLineError as exc:
        return Violation(MALFORMED_JSON, "$", str(exc))
    return violation(event)


def validate(event: Any) -> None:
    """Raise :class:`ContractError` naming the broken rule when ``event`` does not satisfy the contract."""
    found = violation(event)
    if found is not None:
        raise ContractError(
            f"event {event.get('event_id', '?') if isinstance(event, dict) else '?'} breaks the "
            f"clickstream contract ({found.reason} on '{found.field}'): {found.message}. "
            f"Fix the event or the contract in {SCHEMA_PATH.name}."
        )


def is_valid(event: Any) -> bool:
    return violation(event) is None


class ContractError(ValueError):
    """An event does not satisfy the clickstream contract."""


# ---------------------------------------------------------------------------------------------
# Spark schema
# ---------------------------------------------------------------------------------------------


def _json_types(prop: dict[str, Any]) -> tuple[str, bool]:
    """The JSON type of a property and whether JSON null is allowed."""
    declared = prop["type"]
    types = [declared] if isinstance(declared, str) else list(declared)
    nullable = "null" in types
    non_null = [t for t in types if t != "null"]
    if len(non_null) != 1:
        raise ContractError(f"property type {declared!r} is not supported: use one type, optionally with null")
    return non_null[0], nullable


def spark_type_name(prop: dict[str, Any]) -> str:
    """The Spark SQL type name a contract property maps to."""
    json_type, _ = _json_types(prop)
    if json_type == "string" and prop.get("format") == "date-time":
        return "timestamp"
    return {"string": "string", "integer": "int", "number": "double", "boolean": "boolean"}[json_type]


def spark_schema(schema: dict[str, Any] | None = None):
    """Derive the Spark ``StructType`` of a contract event. Required fields are non-nullable."""
    from pyspark.sql import types as T

    spark_types = {
        "timestamp": T.TimestampType(),
        "string": T.StringType(),
        "int": T.IntegerType(),
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
    }
    schema = schema or load_schema()
    required = set(schema["required"])
    fields = []
    for name, prop in schema["properties"].items():
        fields.append(
            T.StructField(
                name,
                spark_types[spark_type_name(prop)],
                nullable=name not in required,
                metadata={"comment": prop.get("description", "")},
            )
        )
    return T.StructType(fields)


# ---------------------------------------------------------------------------------------------
# Schema evolution
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaChange:
    """One difference between two versions of the contract."""

    kind: str
    field: str
    compatible: bool
    detail: str = ""


def _constraints(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: prop[k] for k in ("format", "pattern", "minLength", "const") if k in prop}


def classify_change(old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    """List every difference between two contract versions and whether old events stay valid.

    Follows the contract's evolution rules: adding an optional field is compatible; removing or
    renaming a required field, changing a type, or tightening a rule is breaking. A compatible
    change keeps every event valid under ``old`` valid under ``new``.
    """
    changes: list[SchemaChange] = []
    old_props, new_props = old["properties"], new["properties"]
    old_req, new_req = set(old["required"]), set(new["required"])
    removed_required = [f for f in old_props if f not in new_props and f in old_req]
    added_required = [f for f in new_props if f not in old_props and f in new_req]
    renamed = set()
    for gone in removed_required:
        for came in added_required:
            if came not in renamed and _json_types(old_props[gone]) == _json_types(new_props[came]):
                changes.append(SchemaChange("required_field_renamed", f"{gone}->{came}", False))
                renamed.update({gone, came})
                break
    for name, prop in old_props.items():
        if name in renamed:
            continue
        if name not in new_props:
            required = name in old_req
            kind = "required_field_removed" if required else "optional_field_removed"
            changes.append(SchemaChange(kind, name, not required))
            continue
        new_prop = new_props[name]
        if _json_types(prop)[0] != _json_types(new_prop)[0] or spark_type_name(prop) != spark_type_name(new_prop):
            changes.append(SchemaChange("type_changed", name, False, f"{prop['type']} -> {new_prop['type']}"))
        old_null, new_null = _json_types(prop)[1], _json_types(new_prop)[1]
        if old_null and not new_null:
            changes.append(SchemaChange("null_no_longer_allowed", name, False))
        elif new_null and not old_null:
            changes.append(SchemaChange("null_now_allowed", name, True))
        if name not in old_req and name in new_req:
            changes.append(SchemaChange("field_made_required", name, False))
        elif name in old_req and name not in new_req:
            changes.append(SchemaChange("field_made_optional", name, True))
        old_enum, new_enum = set(prop.get("enum", [])), set(new_prop.get("enum", []))
        if "enum" in prop and "enum" not in new_prop:
            changes.append(SchemaChange("enum_removed", name, True))
        elif "enum" in new_prop and "enum" not in prop:
            changes.append(SchemaChange("enum_added", name, False))
        elif old_enum - new_enum:
            changes.append(SchemaChange("enum_values_removed", name, False, str(sorted(old_enum - new_enum))))
        elif new_enum - old_enum:
            # Compatible for old data, but downstream consumers may not know the new values.
            changes.append(SchemaChange("enum_values_added", name, True, str(sorted(new_enum - old_enum))))
        if name == "schema_version":
            continue
        old_c, new_c = _constraints(prop), _constraints(new_prop)
        for key in sorted(set(old_c) | set(new_c)):
            if key not in new_c:
                changes.append(SchemaChange(f"{key}_relaxed", name, True))
            elif key not in old_c or old_c[key] != new_c[key]:
                changes.append(SchemaChange(f"{key}_tightened", name, False, f"{old_c.get(key)!r} -> {new_c[key]!r}"))
    for name in new_props:
        if name in old_props or name in renamed:
            continue
        required = name in new_req
        changes.append(SchemaChange("required_field_added" if required else "optional_field_added", name, not required))
    if old.get("additionalProperties", True) and new.get("additionalProperties", True) is False:
        changes.append(SchemaChange("unknown_fields_rejected", "$", False))
    return changes


def is_breaking(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(not change.compatible for change in classify_change(old, new))


def check_evolution(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise :class:`ContractError` when ``new`` breaks ``old`` without bumping ``schema_version``."""
    breaking = [c for c in classify_change(old, new) if not c.compatible]
    if breaking and schema_version(new) <= schema_version(old):
        listed = ", ".join(f"{c.kind} ({c.field})" for c in breaking)
        raise ContractError(
            f"breaking contract change without a schema_version bump: {listed}. "
            f"Bump schema_version above {schema_version(old)} and write a migration note, "
            "or make the change backward compatible (add fields as optional)."
        )
