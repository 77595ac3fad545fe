"""Contract validation fast enough for every event the producer sends and every line Silver reads.

jsonschema needs ~80 µs per event, which alone would cap the producer near 12k events/s and Silver
far lower. This module compiles the same JSON Schema (``schemas/clickstream.schema.json``, via
:mod:`lakehouse.contract`) into plain Python checks that are *sound*: they never accept an event
the contract's validator rejects (they may only be stricter). Any event the fast path does not
accept goes through :func:`lakehouse.contract.violation`, which stays the authority and names the
broken rule. If the schema ever uses a keyword this compiler does not know, it refuses to compile
and every event takes the jsonschema path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from lakehouse import contract

log = logging.getLogger(__name__)

_TOP_LEVEL_KEYWORDS = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "additionalProperties",
}
_PROPERTY_KEYWORDS = {"description", "type", "format", "pattern", "enum", "const", "minLength", "x-sensitive"}
# Exact Python types per JSON type. Exact types make the checks stricter than jsonschema (which
# also takes 1.0 as an integer), never looser: bool is not an integer here.
_PY_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
}
# Strict shapes: every string they match is one jsonschema accepts for the format.
_UUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII).fullmatch
_DATE_TIME_SHAPE = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z", re.ASCII
).fullmatch
# Values already accepted for a patterned string field (countries, IP hashes repeat a lot).
_ACCEPTED_CACHE_SIZE = 65_536


class _Unsupported(Exception):
    pass


def _uuid_format(value: str) -> bool:
    return _UUID_SHAPE(value) is not None


def _date_time_format() -> Callable[[str], bool]:
    """RFC 3339 date-time check: a strict shape, plus jsonschema's own verdict once per calendar day.

    The shape cannot tell 2026-02-30 from 2026-02-28; jsonschema's checker can, so the first value
    of each day goes through it and the day is remembered as valid.
    """
    valid_days: set[str] = set()
    conforms = contract.FORMAT_CHECKER.conforms

    def check(value: str) -> bool:
        if _DATE_TIME_SHAPE(value) is None:
            return False
        # The shape puts the date in the first ten characters.
        day = value[:10]
        if day in valid_days:
            return True
        if not conforms(value, "date-time"):
            return False
        if len(valid_days) > 10_000:
            valid_days.clear()
        valid_days.add(day)
        return True

    return check


_MISSING = object()


def _failing_conditions(index: int, name: str, prop: dict[str, Any], namespace: dict[str, Any]) -> list[str]:
    """Python expressions over ``v`` (a present value) that are true when the property's rules fail."""
    unknown = set(prop) - _PROPERTY_KEYWORDS
    if unknown:
        raise _Unsupported(f"property {name!r} uses {sorted(unknown)}")
    declared = prop.get("type")
    if declared is None:
        raise _Unsupported(f"property {name!r} has no type")
    json_types = [declared] if isinstance(declared, str) else list(declared)
    if any(t not in _PY_TYPES for t in json_types):
        raise _Unsupported(f"property {name!r} has type {declared!r}")
    allowed = frozenset().union(*(_PY_TYPES[t] for t in json_types))
    failing: list[str] = []
    if len(allowed) == 1:
        namespace[f"_type{index}"] = next(iter(allowed))
        failing.append(f"type(v) is not _type{index}")
    else:
        namespace[f"_types{index}"] = allowed
        failing.append(f"type(v) not in _types{index}")
    if "const" in prop:
        namespace[f"_const{index}"] = prop["const"]
        failing.append(f"type(v) is not type(_const{index}) or v != _const{index}")
    if "enum" in prop:
        namespace[f"_enum{index}"] = frozenset(prop["enum"])
        failing.append(f"v not in _enum{index}")
    # String rules only apply to strings; skip the guard when the type check already ensures one.
    guard = "" if allowed == {str} else "type(v) is str and "
    if "minLength" in prop:
        failing.append(f"{guard}len(v) < {int(prop['minLength'])}")
    if "pattern" in prop:
        namespace[f"_pattern{index}"] = contract.ecma_regex(prop["pattern"]).search
        if not guard and "format" not in prop:
            # A value that matched once matches again: remember accepted values, bounded.
            namespace[f"_accepted{index}"] = set()
            failing.append(
                f"v not in _accepted{index} and (_pattern{index}(v) is None or "
                f"(len(_accepted{index}) < {_ACCEPTED_CACHE_SIZE} and _accepted{index}.add(v)))"
            )
        else:
            failing.append(f"{guard}_pattern{index}(v) is None")
    fmt = prop.get("format")
    if fmt == "uuid":
        namespace[f"_format{index}"] = _uuid_format
    elif fmt == "date-time":
        namespace[f"_format{index}"] = _date_time_format()
    elif fmt is not None:
        raise _Unsupported(f"property {name!r} has format {fmt!r}")
    if fmt is not None:
        failing.append(f"{guard}not _format{index}(v)")
    return failing


def _compile(schema: dict[str, Any]) -> tuple[Callable[[Any], bool], str]:
    """Generate one flat function for the whole contract (it runs once per event sent)."""
    unknown = set(schema) - _TOP_LEVEL_KEYWORDS
    if unknown:
        raise _Unsupported(f"top level uses {sorted(unknown)}")
    if schema.get("type") != "object" or schema.get("additionalProperties", True) is not True:
        raise _Unsupported("events must be objects that allow unknown fields")
    properties = schema["properties"]
    required = list(schema.get("required", ()))
    namespace: dict[str, Any] = {"_MISSING": _MISSING}
    source = ["def accepts(event):", "    if type(event) is not dict:", "        return False", "    get = event.get"]
    for name in required:
        if name not in properties:
            source += [f"    if {name!r} not in event:", "        return False"]
    for index, (name, prop) in enumerate(properties.items()):
        conditions = _failing_conditions(index, name, prop, namespace)
        source.append(f"    v = get({name!r}, _MISSING)")
        if name in required:
            # No separate presence test: the type test comes first and _MISSING's type is never allowed.
            indent = "    "
        else:
            source.append("    if v is not _MISSING:")
            indent = "        "
        source += [f"{indent}if {' or '.join(f'({c})' for c in conditions)}:", f"{indent}    return False"]
    source.append("    return True")
    text = "\n".join(source)
    exec(compile(text, "<clickstream contract fast path>", "exec"), namespace)
    return namespace["accepts"], text


class CompiledContract:
    """Plain-Python checks compiled from the contract; see the module docstring for the guarantee."""

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        schema = schema if schema is not None else contract.load_schema()
        self._accepts: Callable[[Any], bool] | None = None
        # The generated Python, for reading when a check needs explaining.
        self.source = ""
        try:
            self._accepts, self.source = _compile(schema)
        except _Unsupported as exc:
            log.warning("contract fast path disabled (%s): every event goes through jsonschema", exc)

    @property
    def compiled(self) -> bool:
        return self._accepts is not None

    @property
    def fast_path(self) -> Callable[[Any], bool] | None:
        """The generated check itself (None when the schema could not be compiled)."""
        return self._accepts

    def accepts(self, event: Any) -> bool:
        """True only when ``event`` certainly satisfies the contract."""
        return self._accepts is not None and self._accepts(event)

    def validate(self, event: Any) -> None:
        """Raise :class:`lakehouse.contract.ContractError` unless ``event`` satisfies the contract."""
        fast = self._accepts
        if fast is None or not fast(event):
            contract.validate(event)
