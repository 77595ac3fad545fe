"""Spark SQL validation of raw JSON lines, derived from the contract's JSON Schema.

The same rules as :func:`lakehouse.contract.violation` (jsonschema), expressed as Spark column
expressions so Silver validates at JVM speed instead of one Python call per event. Reasons are
checked in :data:`lakehouse.contract.CONTRACT_REASONS` order, then in the schema's field order, so
both validators name the same first broken rule; a test holds them to that on every example.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse import contract

# Same shape the jsonschema `uuid` format accepts (hyphens at 8, 13, 18, 23; any case hex).
UUID_REGEX = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# RFC 3339 date-time, as rfc3339-validator checks it (case-insensitive T and Z).
RFC3339_REGEX = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)

_JSON_TYPE_TEST = {
    # schema_of_variant names; a JSON number with no fraction digits is an integer for jsonschema too.
    "string": lambda t: t == F.lit("STRING"),
    "integer": lambda t: t.isin("BIGINT", "INT", "SMALLINT", "TINYINT") | t.rlike(r"^DECIMAL\(\d+,0\)$"),
    "number": lambda t: t.isin("BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT") | t.startswith("DECIMAL"),
    "boolean": lambda t: t == F.lit("BOOLEAN"),
}


def _sql_list(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _field_checks(name: str, prop: dict[str, Any], raw: Column, required: bool) -> list[tuple[str, Column, Column]]:
    """(reason, failing condition, message) for one contract field, in reporting order."""
    json_type, nullable = contract._json_types(prop)
    present = F.map_contains_key(F.col("_json_map"), F.lit(name))
    is_null = F.is_variant_null(raw)
    variant_type = F.schema_of_variant(raw)
    type_ok = _JSON_TYPE_TEST[json_type](variant_type)
    # Rules below the type check only apply to a present, non-null value of the right type.
    typed = present & ~is_null & type_ok
    text = F.try_variant_get(raw, "$", "string")
    checks: list[tuple[str, Column, Column]] = []
    if required:
        checks.append(("missing_required_field", ~present, F.lit(f"'{name}' is a required property")))
    bad_type = present & ((is_null & F.lit(not nullable)) | (~is_null & ~type_ok))
    expected = json_type + (" or null" if nullable else "")
    checks.append(
        ("invalid_type", bad_type, F.format_string(f"'{name}' must be {expected}, got %s", F.to_json(raw)))
    )
    if "const" in prop and name == "schema_version":
        checks.append(
            (
                "unsupported_schema_version",
                typed & (F.try_variant_get(raw, "$", "bigint") != F.lit(prop["const"])),
                F.format_string(f"schema_version %s is not supported (expected {prop['const']})", F.to_json(raw)),
            )
        )
    if "enum" in prop:
        checks.append(
            (
                "invalid_enum",
                typed & ~text.isin(*prop["enum"]),
                F.format_string(f"'{name}' %s is not one of {_sql_list(prop['enum'])}", F.to_json(raw)),
            )
        )
    fmt = prop.get("format")
    if fmt == "uuid":
        checks.append(
            ("invalid_uuid", typed & ~text.rlike(UUID_REGEX), F.format_string(f"'{name}' %s is not a UUID", F.to_json(raw)))
        )
    if fmt == "date-time":
        bad_ts = ~text.rlike(RFC3339_REGEX) | text.try_cast("timestamp").isNull()
        if "pattern" in prop:
            bad_ts = bad_ts | ~text.rlike(prop["pattern"])
        checks.append(
            (
                "invalid_timestamp",
                typed & bad_ts,
                F.format_string(f"'{name}' %s is not an RFC 3339 UTC timestamp", F.to_json(raw)),
            )
        )
    elif "pattern" in prop or "minLength" in prop:
        bad = F.lit(False)
        if "pattern" in prop:
            bad = bad | ~text.rlike(prop["pattern"])
        if "minLength" in prop:
            bad = bad | (F.length(text) < F.lit(prop["minLength"]))
        rule = f"match {prop['pattern']}" if "pattern" in prop else f"have at least {prop['minLength']} characters"
        checks.append(
            ("invalid_format", typed & bad, F.format_string(f"'{name}' %s does not {rule}", F.to_json(raw)))
        )
    return checks


def violation_column(schema: dict[str, Any] | None = None, *, value_col: str = "value") -> Column:
    """A struct<reason, field, message> column naming the first contract rule the raw line breaks (null if valid).

    Expects the column ``_json_map`` (see :func:`with_json_map`) next to ``value_col``.
    """
    schema = schema or contract.load_schema()
    candidates: list[tuple[int, int, Column, Column, str]] = []
    parsed = F.try_parse_json(F.col(value_col))
    candidates.append((0, -1, parsed.isNull(), F.lit("line is not valid JSON"), "$"))
    not_object = parsed.isNotNull() & ~F.schema_of_variant(parsed).startswith("OBJECT")
    candidates.append(
        (
            contract.CONTRACT_REASONS.index("invalid_type"),
            -1,
            not_object,
            F.format_string("event must be a JSON object, got %s", F.schema_of_variant(parsed)),
            "$",
        )
    )
    required = set(schema["required"])
    for position, (name, prop) in enumerate(schema["properties"].items()):
        raw = F.col("_json_map").getItem(name)
        for reason, condition, message in _field_checks(name, prop, raw, name in required):
            candidates.append((contract.CONTRACT_REASONS.index(reason), position, condition, message, name))
    candidates.sort(key=lambda c: (c[0], c[1]))
    reason_of = contract.CONTRACT_REASONS
    result = F.lit(None).cast("struct<reason:string,field:string,message:string>")
    for rank, _, condition, message, field in reversed(candidates):
        result = F.when(
            condition,
            F.struct(F.lit(reason_of[rank]).alias("reason"), F.lit(field).alias("field"), message.alias("message")),
        ).otherwise(result)
    return result


def with_json_map(df, *, value_col: str = "value"):
    """Add ``_json_map``: the line's top-level object as map<string, variant> (null if not an object)."""
    return df.withColumn("_json_map", F.from_json(F.col(value_col), "map<string,variant>"))


def typed_columns(schema: dict[str, Any] | None = None) -> list[Column]:
    """The contract's fields extracted from ``_json_map`` with their Spark types (null where invalid)."""
    schema = schema or contract.load_schema()
    columns = []
    for name, prop in schema["properties"].items():
        raw = F.col("_json_map").getItem(name)
        spark_type = contract.spark_type_name(prop)
        if spark_type == "timestamp":
            column = F.try_variant_get(raw, "$", "string").try_cast("timestamp")
        else:
            column = F.try_variant_get(raw, "$", spark_type)
        columns.append(column.alias(name))
    return columns


def rescued_data_column(file_path: Column, schema: dict[str, Any] | None = None) -> Column:
    """Fields the contract does not name, as a JSON object with ``_file_path`` (Auto Loader's shape); null if none."""
    schema = schema or contract.load_schema()
    known = F.array(*[F.lit(n) for n in schema["properties"]])
    unknown = F.map_filter(F.col("_json_map"), lambda k, _v: ~F.array_contains(known, k))
    with_path = F.map_concat(unknown, F.create_map(F.lit("_file_path"), file_path.cast("variant")))
    return F.when(F.size(unknown) > 0, F.to_json(with_path))
