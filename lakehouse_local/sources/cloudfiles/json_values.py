"""Parsed JSON values to Spark-typed, Arrow-ready values, by Spark's JSON rules.

A converter per Spark type takes a value as ``json.loads`` returns it and gives the value Arrow
stores for that type, or raises ``_Mismatch`` when the value does not fit (a string in an INT
field, an out-of-range number, a malformed timestamp...). A struct converter returns the row and
what to rescue: fields outside the schema as written, and values that did not fit wrapped in
:class:`Mismatched`.
"""

from __future__ import annotations

import base64
import decimal
import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)


def has_mismatch(rescued: dict[str, Any]) -> bool:
    """Whether ``rescued`` holds a value that did not fit its type (not only unknown fields)."""
    return any(isinstance(value, Mismatched) for value in _walk(rescued))


class Mismatched:
    """Marks, inside a rescued dict, a value that did not fit its declared type."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _walk(rescued: dict[str, Any]) -> Iterator[Any]:
    for value in rescued.values():
        if isinstance(value, dict):
            yield from _walk(value)
        else:
            yield value


class _Mismatch(Exception):
    pass


_TIMESTAMP = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NON_NUMERIC = {
    "nan": math.nan,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
}
_INT_RANGES = {ByteType: 7, ShortType: 15, IntegerType: 31, LongType: 63}


def _timestamp_micros(value: str, *, with_zone: bool) -> int:
    match = _TIMESTAMP.match(value)
    if not match:
        raise _Mismatch
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
        )
    except ValueError as error:
        raise _Mismatch from error
    micros = (moment - _EPOCH) // timedelta(microseconds=1) + int((fraction or "0").ljust(9, "0")[:6])
    if with_zone and zone and zone.upper() not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        micros -= sign * offset_minutes * 60_000_000
    return micros


def _converter(data_type: DataType) -> Callable[[Any], Any]:
    """A function from a parsed JSON value to the Arrow-ready value of ``data_type``; raises _Mismatch."""
    if isinstance(data_type, StringType):
        return lambda v: v if type(v) is str else json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    for int_type, bits in _INT_RANGES.items():
        if isinstance(data_type, int_type):
            low, high = -(1 << bits), (1 << bits) - 1

            def to_int(v: Any, low: int = low, high: int = high) -> int:
                if type(v) is not int or not low <= v <= high:
                    raise _Mismatch
                return v

            return to_int
    if isinstance(data_type, FloatType | DoubleType):

        def to_float(v: Any) -> float:
            if type(v) in (int, float):
                return float(v)
            if type(v) is str and v.lower() in _NON_NUMERIC:
                return _NON_NUMERIC[v.lower()]
            raise _Mismatch

        return to_float
    if isinstance(data_type, BooleanType):

        def to_bool(v: Any) -> bool:
            if type(v) is not bool:
                raise _Mismatch
            return v

        return to_bool
    if isinstance(data_type, TimestampType | TimestampNTZType):
        with_zone = isinstance(data_type, TimestampType)

        def to_timestamp(v: Any) -> int:
            if type(v) is str:
                return _timestamp_micros(v, with_zone=with_zone)
            if type(v) is int:
                return v * 1_000_000  # Spark reads a JSON integer as seconds since the epoch
            raise _Mismatch

        return to_timestamp
    if isinstance(data_type, DateType):

        def to_date(v: Any) -> int:
            if type(v) is not str:
                raise _Mismatch
            return _timestamp_micros(v, with_zone=False) // 86_400_000_000

        return to_date
    if isinstance(data_type, DecimalType):
        quantum = decimal.Decimal(1).scaleb(-data_type.scale)

        def to_decimal(v: Any) -> decimal.Decimal:
            if type(v) not in (int, float, str):
                raise _Mismatch
            try:
                number = decimal.Decimal(str(v)).quantize(quantum, rounding=decimal.ROUND_HALF_UP)
            except decimal.InvalidOperation as error:
                raise _Mismatch from error
            if len(number.as_tuple().digits) > data_type.precision:
                raise _Mismatch
            return number

        return to_decimal
    if isinstance(data_type, BinaryType):

        def to_binary(v: Any) -> bytes:
            if type(v) is not str:
                raise _Mismatch
            try:
                return base64.b64decode(v, validate=True)
            except ValueError as error:
                raise _Mismatch from error

        return to_binary
    if isinstance(data_type, ArrayType):
        element = _nullable(_converter(data_type.elementType))

        def to_list(v: Any) -> list[Any]:
            if type(v) is not list:
                raise _Mismatch
            return [element(item) for item in v]

        return to_list
    if isinstance(data_type, MapType):
        if not isinstance(data_type.keyType, StringType):
            raise ValueError(f"cloudFiles source: JSON maps need STRING keys, got {data_type.simpleString()}.")
        value_converter = _nullable(_converter(data_type.valueType))

        def to_map(v: Any) -> list[tuple[str, Any]]:
            if type(v) is not dict:
                raise _Mismatch
            return [(key, value_converter(item)) for key, item in v.items()]

        return to_map
    if isinstance(data_type, StructType):
        struct = struct_converter(data_type)

        def to_struct(v: Any) -> dict[str, Any]:
            if type(v) is not dict:
                raise _Mismatch
            row, rescued = struct(v)
            if rescued:
                # Inside arrays and maps a partial struct cannot be rescued field by field.
                raise _Mismatch
            return row

        return to_struct
    raise ValueError(f"cloudFiles source: JSON fields of type {data_type.simpleString()} are not supported.")


def _nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else convert(v)


def struct_converter(struct: StructType) -> Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any] | None]]:
    """Converts a JSON object; returns the row and what to rescue (unknown fields, mismatched values)."""
    plain: dict[str, Callable[[Any], Any]] = {}
    nested: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    for field in struct.fields:
        if isinstance(field.dataType, StructType):
            nested[field.name] = struct_converter(field.dataType)
        else:
            plain[field.name] = _converter(field.dataType)

    def convert(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        row: dict[str, Any] = {}
        rescued: dict[str, Any] | None = None
        for key, value in record.items():
            if value is None:
                continue
            if key in plain:
                try:
                    row[key] = plain[key](value)
                except _Mismatch:
                    rescued = rescued or {}
                    rescued[key] = Mismatched(value)
            elif key in nested:
                if type(value) is not dict:
                    rescued = rescued or {}
                    rescued[key] = Mismatched(value)
                    continue
                child, child_rescued = nested[key](value)
                row[key] = child
                if child_rescued:
                    rescued = rescued or {}
                    rescued[key] = child_rescued
            else:
                rescued = rescued or {}
                rescued[key] = value
        return row, rescued

    return convert
