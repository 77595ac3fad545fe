"""Spark SQL validation of raw JSON lines, derived from the contract's JSON Schema.

The same rules as :func:`lakehouse.contract.violation` (jsonschema), expressed as Spark column
expressions so Silver validates at JVM speed instead of one Python call per event. Reasons are
checked in :data:`lakehouse.contract.CONTRACT_REASONS` order, then in the schema's field order, so
both validators name the same first broken rule; a test holds them to that on every example.

Two projections keep the generated code small: :func:`with_json_map` reads each contract field's
JSON type and text once; :func:`violation_column` and :func:`typed_columns` only combine those.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse import contract

# Same shape the jsonschema `uuid` format accepts (hyphens at 8, 13, 18, 23; any case hex).
UUID_REGEX = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# RFC 3339 date-time, as rfc3339-validator checks it (case-insensitive T and Z).
RFC3339_REGEX = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
INTEGER_TYPES = ("BIGINT", "INT", "SMALLINT", "TINYINT")
HELPER_PREFIX = "_v_"


def _type_col(name: str) -> Column:
    """JSON type of field ``name`` as schema_of_variant names it; null when absent, 'VOID' for JSON null."""
    return F.col(f"{HELPER_PREFIX}type_{name}")


def _text_col(name: str) -> Column:
    """Field ``name`` as text (strings unquoted, other values as JSON)."""
    return F.col(f"{HELPER_PREFIX}text_{name}")


def _type_matches(json_type: str, variant_type: Column) -> Column:
    if json_type == "string":
        return variant_type == F.lit("STRING")
    if json_type == "integer":
        # A number without fraction digits (1.0) is an integer for JSON Schema too.
        return variant_type.isin(*INTEGER_TYPES) | variant_type.rlike(r"^DECIMAL\(\d+,0\)$")
    if json_type == "number":
        return variant_type.isin(*INTEGER_TYPES, "DOUBLE", "FLOAT") | variant_type.startswith("DECIMAL")
    if json_type == "boolean":
        return variant_type == F.lit("BOOLEAN")
    raise ValueError(f"JSON type {json_type!r} is not supported by the Spark validator")


def with_json_map(df: DataFrame, *, value_col: str = "value", schema: dict[str, Any] | None = None) -> DataFrame:
    """Parse each line once: ``_json_map`` (top-level object as map<string, variant>) and, per contract
    field, its JSON type and text, plus the whole line's JSON type (null when it is not JSON)."""
    schema = schema or contract.load_schema()
    value = F.col(value_col)
    # Strict JSON, as parse_json reads it: no single quotes, no NaN/Infinity.
    json_map = F.from_json(value, "map<string,variant>", {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false"})
    parsed_object = F.col("_json_map").isNotNull() & (
        F.size(F.array_distinct(F.map_keys("_json_map"))) == F.size("_json_map")
    )
    # A line that parsed to an object with distinct keys is an object; only the rest (broken lines,
    # arrays, scalars, repeated keys) pays for a second, strict parse that names what it is.
    line_type = F.when(parsed_object, F.lit("OBJECT")).otherwise(F.schema_of_variant(F.try_parse_json(value)))
    with_map = df.withColumn("_json_map", json_map).withColumn(f"{HELPER_PREFIX}line_type", line_type)
    helpers = []
    for name in schema["properties"]:
        raw = F.col("_json_map").getItem(name)
        helpers.append(F.schema_of_variant(raw).alias(f"{HELPER_PREFIX}type_{name}"))
        helpers.append(
            F.coalesce(F.try_variant_get(raw, "$", "string"), F.to_json(raw)).alias(f"{HELPER_PREFIX}text_{name}")
        )
    return with_map.select("*", *helpers)


def _field_checks(name: str, prop: dict[str, Any], required: bool) -> list[tuple[str, Column, Column]]:
    """(reason, failing condition, message) for one contract field, in reporting order."""
    json_type, nullable = contract._json_types(prop)
    vtype, text = _type_col(name), _text_col(name)
    present = vtype.isNotNull()
    is_null = vtype == F.lit("VOID")
    type_ok = _type_matches(json_type, vtype)
    # Rules below the type check only apply to a present, non-null value of the right type.
    typed = present & ~is_null & type_ok
    checks: list[tuple[str, Column, Column]] = []
    if required:
        checks.append(("missing_required_field", ~present, F.lit(f"'{name}' is a required property")))
    bad_type = (is_null & F.lit(not nullable)) | (present & ~is_null & ~type_ok)
    expected = json_type + (" or null" if nullable else "")
    checks.append(("invalid_type", bad_type, F.format_string(f"'{name}' must be {expected}, got %s", F.lower(vtype))))
    if "const" in prop and name == "schema_version":
        checks.append(
            (
                "unsupported_schema_version",
                typed & (text.try_cast("decimal(38,0)") != F.lit(prop["const"])),
                F.format_string(f"schema_version %s is not supported (expected {prop['const']})", text),
            )
        )
    if "enum" in prop:
        checks.append(
            (
                "invalid_enum",
                typed & ~text.isin(*prop["enum"]),
                F.format_string(f"'{name}' '%s' is not one of {', '.join(map(str, prop['enum']))}", text),
            )
        )
    fmt = prop.get("format")
    if fmt == "uuid":
        checks.append(("invalid_uuid", typed & ~text.rlike(UUID_REGEX), F.format_string(f"'{name}' '%s' is not a UUID", text)))
    if fmt == "date-time":
        bad_ts = ~text.rlike(RFC3339_REGEX) | F.upper(text).try_cast("timestamp").isNull()
        if "pattern" in prop:
            bad_ts = bad_ts | ~text.rlike(prop["pattern"])
        checks.append(
            ("invalid_timestamp", typed & bad_ts, F.format_string(f"'{name}' '%s' is not an RFC 3339 UTC timestamp", text))
        )
    elif "pattern" in prop or "minLength" in prop:
        bad = F.lit(False)
        if "pattern" in prop:
            bad = bad | ~text.rlike(prop["pattern"])
        if "minLength" in prop:
            bad = bad | (F.length(text) < F.lit(prop["minLength"]))
        rule = f"match {prop['pattern']}" if "pattern" in prop else f"have at least {prop['minLength']} characters"
        checks.append(("invalid_format", typed & bad, F.format_string(f"'{name}' '%s' does not {rule}", text)))
    return checks


def violation_column(schema: dict[str, Any] | None = None) -> Column:
    """A struct<reason, field, message> naming the first contract rule the line breaks (null if valid).

    Needs the columns :func:`with_json_map` adds.
    """
    schema = schema or contract.load_schema()
    line_type = F.col(f"{HELPER_PREFIX}line_type")
    # Whole-line problems come first: field rules only mean something for a JSON object.
    candidates: list[tuple[tuple[int, int], str, str, Column, Column]] = [
        ((-2, 0), "malformed_json", "$", line_type.isNull(), F.lit("line is not valid JSON")),
        (
            (-1, 0),
            "invalid_type",
            "$",
            ~line_type.startswith("OBJECT"),
            F.format_string("event must be a JSON object, got %s", F.lower(line_type)),
        ),
    ]
    required = set(schema["required"])
    for position, (name, prop) in enumerate(schema["properties"].items()):
        for reason, condition, message in _field_checks(name, prop, name in required):
            candidates.append(((contract.CONTRACT_REASONS.index(reason), position), reason, name, condition, message))
    candidates.sort(key=lambda c: c[0])
    result = F.lit(None).cast("struct<reason:string,field:string,message:string>")
    for _, reason, field, condition, message in reversed(candidates):
        result = F.when(
            condition,
            F.struct(F.lit(reason).alias("reason"), F.lit(field).alias("field"), message.alias("message")),
        ).otherwise(result)
    return result


def typed_columns(schema: dict[str, Any] | None = None) -> list[Column]:
    """The contract's fields with their Spark types (null where absent or not convertible)."""
    schema = schema or contract.load_schema()
    columns = []
    for name, prop in schema["properties"].items():
        spark_type = contract.spark_type_name(prop)
        text = F.when(_type_col(name) != F.lit("VOID"), _text_col(name))
        if spark_type == "timestamp":
            # RFC 3339 allows a lower-case 't' and 'z'; Spark's cast only reads upper case.
            column = F.upper(text).try_cast("timestamp")
        elif spark_type == "string":
            column = F.when(_type_col(name) == F.lit("STRING"), text)
        else:
            column = text.try_cast(spark_type)
        columns.append(column.alias(name))
    return columns


def rescued_data_column(file_path: Column, schema: dict[str, Any] | None = None) -> Column:
    """Fields the contract does not name, as a JSON object with ``_file_path`` (Auto Loader's shape); null if none."""
    schema = schema or contract.load_schema()
    known = F.array(*[F.lit(n) for n in schema["properties"]])
    unknown = F.map_filter(F.col("_json_map"), lambda k, _v: ~F.array_contains(known, k))
    with_path = F.map_concat(unknown, F.create_map(F.lit("_file_path"), file_path.cast("variant")))
    return F.when(F.size(unknown) > 0, F.to_json(with_path))
