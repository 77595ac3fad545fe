"""Fault injection: the broken lines a pipeline must survive, each with the quarantine reason it earns.

* Contract-invalid events rotate through :data:`INVALID_VARIANTS`, which cover every contract reason
  plus the two pipeline rules ``too_late`` and ``future_event_time``. Each variant is checked when it
  is made: a contract variant must get exactly its reason from :func:`lakehouse.contract.violation`;
  a rule variant must satisfy the contract and break the rule.
* Malformed lines are proper prefixes of a serialized event: never parseable JSON, never blank.
* Lateness for late events is drawn log-uniformly from minutes to hours, below the hard limit.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from lakehouse import contract, rules
from lakehouse.rules import FUTURE_TOLERANCE_MINUTES, MAX_LATENESS_HOURS
from producer.clock import format_timestamp

MIN_LATENESS_SECONDS = 2 * 60.0
# Late events stay well inside the hard limit so they always belong in Silver.
MAX_LATENESS_SECONDS = MAX_LATENESS_HOURS * 3600.0 * 2 / 3
TOO_LATE_RANGE_SECONDS = (
    max(4 * 86400.0, MAX_LATENESS_HOURS * 3600.0 + 3600.0),
    max(10 * 86400.0, MAX_LATENESS_HOURS * 3600.0 + 7200.0),
)
FUTURE_RANGE_SECONDS = (
    max(3600.0, FUTURE_TOLERANCE_MINUTES * 60.0 + 600.0),
    max(3 * 3600.0, FUTURE_TOLERANCE_MINUTES * 60.0 + 1200.0),
)


def late_lateness(rng: random.Random) -> float:
    """How long ago a late event happened: minutes to hours, log-uniform, below the hard limit."""
    return math.exp(rng.uniform(math.log(MIN_LATENESS_SECONDS), math.log(MAX_LATENESS_SECONDS)))


@dataclass(frozen=True)
class InvalidVariant:
    """One way to break an event; ``make`` returns the JSON value to send (usually a changed event)."""

    reason: str
    name: str
    make: Callable[[dict[str, Any], random.Random, float], Any]


def _without(field: str) -> Callable[[dict[str, Any], random.Random, float], Any]:
    def make(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
        event.pop(field)
        return event

    return make


def _with(field: str, value: Any) -> Callable[[dict[str, Any], random.Random, float], Any]:
    def make(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
        event[field] = value
        return event

    return make


def _event_id_without_hyphens(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["event_id"] = event["event_id"].replace("-", "")
    return event


def _event_id_truncated(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["event_id"] = event["event_id"][:-4]
    return event


def _timestamp_without_zone(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["event_time"] = event["event_time"].replace("T", " ").rstrip("Z")
    return event


def _ingest_time_not_utc(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    # The same instant written with a +02:00 offset: valid RFC 3339, but the contract wants UTC.
    text = format_timestamp(ingest + 7200)
    event["ingest_time"] = text[:-1] + "+02:00"
    return event


def _raw_ip(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["ip_hash"] = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return event


def _country_lower(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["country"] = event["country"].lower()
    return event


def _not_an_object(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    return [event["action"], event["page"]]


def _too_late(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["event_time"] = format_timestamp(ingest - rng.uniform(*TOO_LATE_RANGE_SECONDS))
    return event


def _in_the_future(event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    event["event_time"] = format_timestamp(ingest + rng.uniform(*FUTURE_RANGE_SECONDS))
    return event


# Round-robin order: every reason comes up once in the first eleven invalid events.
INVALID_VARIANTS: tuple[InvalidVariant, ...] = (
    InvalidVariant("missing_required_field", "page_missing", _without("page")),
    InvalidVariant("invalid_type", "user_id_number", _with("user_id", 4217)),
    InvalidVariant("unsupported_schema_version", "schema_version_2", _with("schema_version", 2)),
    InvalidVariant("invalid_enum", "action_hover", _with("action", "hover")),
    InvalidVariant("invalid_uuid", "event_id_without_hyphens", _event_id_without_hyphens),
    InvalidVariant("invalid_timestamp", "event_time_without_zone", _timestamp_without_zone),
    InvalidVariant("invalid_format", "ip_hash_raw_ipv4", _raw_ip),
    InvalidVariant(rules.TOO_LATE, "event_time_days_old", _too_late),
    InvalidVariant(rules.FUTURE_EVENT_TIME, "event_time_hours_ahead", _in_the_future),
    InvalidVariant("missing_required_field", "session_id_missing", _without("session_id")),
    InvalidVariant("invalid_type", "page_null", _with("page", None)),
    InvalidVariant("invalid_enum", "device_type_smart_tv", _with("device_type", "smart_tv")),
    InvalidVariant("invalid_uuid", "event_id_truncated", _event_id_truncated),
    InvalidVariant("invalid_timestamp", "ingest_time_not_utc", _ingest_time_not_utc),
    InvalidVariant("invalid_format", "country_lower_case", _country_lower),
    InvalidVariant("invalid_type", "not_an_object", _not_an_object),
    InvalidVariant("unsupported_schema_version", "schema_version_99", _with("schema_version", 99)),
    InvalidVariant("missing_required_field", "user_id_missing", _without("user_id")),
    InvalidVariant("invalid_type", "referrer_object", _with("referrer", {"url": "https://www.google.com/"})),
)


class InjectionError(AssertionError):
    """A generated fault would not be quarantined with the reason the manifest promises."""


def make_invalid(variant: InvalidVariant, event: dict[str, Any], rng: random.Random, ingest: float) -> Any:
    """Break ``event`` (a valid one, modified in place) the way ``variant`` says, and prove it."""
    value = variant.make(event, rng, ingest)
    found = contract.violation(value)
    if variant.reason in (rules.TOO_LATE, rules.FUTURE_EVENT_TIME):
        if found is not None:
            raise InjectionError(f"{variant.name} should satisfy the contract but breaks {found.reason}: {value}")
        lateness = ingest - _seconds(value["event_time"])
        broken = (
            lateness > MAX_LATENESS_HOURS * 3600
            if variant.reason == rules.TOO_LATE
            else -lateness > FUTURE_TOLERANCE_MINUTES * 60
        )
        if not broken:
            raise InjectionError(f"{variant.name} does not break the {variant.reason} rule: {value}")
    elif found is None or found.reason != variant.reason:
        raise InjectionError(
            f"{variant.name} should fail the contract with {variant.reason}, got {found and found.reason}: {value}"
        )
    return value


def make_malformed(line: str, rng: random.Random) -> str:
    """A proper prefix of a serialized event: it can never parse, and it is never blank."""
    cut = rng.randint(min(12, len(line) - 2), len(line) - 2)
    text = line[:cut].rstrip()
    found = contract.violation_of_line(text)
    if found is None or found.reason != contract.MALFORMED_JSON:
        raise InjectionError(f"malformed line parses: {text!r}")
    return text


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# The C encoder json.dumps builds on every call, built once: serialization runs once per line.
_ENCODE = (
    c_make_encoder(None, None, encode_basestring_ascii, None, ":", ",", False, False, True) if c_make_encoder else None
)


def serialize(value: Any) -> str:
    """One JSON line as the producer writes it (compact, ASCII; the same text as ``json.dumps``)."""
    if _ENCODE is None:
        return json.dumps(value, separators=(",", ":"))
    return "".join(_ENCODE(value, 0))
