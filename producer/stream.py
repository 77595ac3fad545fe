"""The line stream: turns the traffic model and the fault rates into the lines of each batch.

Every line is classified as it is made (valid, late, natural or synthetic duplicate, malformed,
invalid with its reason), which is what lets the manifest state the ground truth exactly. Valid
lines are validated against the contract before they are handed to the writer.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from lakehouse import contract, rules
from lakehouse.contract_check import CompiledContract
from lakehouse.rules import MAX_LATENESS_HOURS
from producer import faults
from producer.clock import format_timestamp
from producer.faults import serialize
from producer.traffic import MAX_CLIENT_DELAY_SECONDS, PRODUCT_PAGES, TrafficModel

log = logging.getLogger(__name__)

VALID = "valid"
LATE = "late"
NATURAL_DUPLICATE = "natural_duplicate"
SYNTHETIC_DUPLICATE = "synthetic_duplicate"
MALFORMED = "malformed"
INVALID = "invalid"

ACTIONS = contract.actions()
# How many earlier valid events duplicates are drawn from (the most recent ones).
DUPLICATE_POOL_SIZE = 20_000
# Every this many valid events, one is also validated by jsonschema (the fast path's cross-check).
JSONSCHEMA_SAMPLE_EVERY = 500
# A conflicting duplicate must not also be too late, or its expected reason would be ambiguous.
_SYNTHETIC_LATENESS_LIMIT_SECONDS = (MAX_LATENESS_HOURS - 1) * 3600.0


@dataclass(slots=True)
class Line:
    """One line of a batch. ``event`` is set for first arrivals of valid events (the ground truth).

    For an injected fault, ``reason`` is the quarantine reason it must get (None for late events
    and natural duplicates, which are not quarantined), ``event_id`` the id it carries or was made
    from, and ``variant`` how an invalid event was broken.
    """

    text: str
    kind: str
    reason: str | None = None
    event: dict[str, Any] | None = None
    event_id: str | None = None
    variant: str | None = None


class LineStream:
    """Makes lines one at a time for a given ingest time; deterministic for a given ``rng``."""

    def __init__(
        self,
        rng: random.Random,
        traffic: TrafficModel,
        *,
        dup_rate: float = 0.0,
        synthetic_dup_rate: float = 0.0,
        late_rate: float = 0.0,
        malformed_rate: float = 0.0,
        invalid_rate: float = 0.0,
        checker: CompiledContract | None = None,
    ) -> None:
        self._rng = rng
        self.traffic = traffic
        checker = checker or CompiledContract()
        self._validate = checker.validate
        self._fast_path = checker.fast_path
        # Cumulative thresholds: one draw per line decides its kind.
        self._thresholds = []
        total = 0.0
        for kind, share in (
            (NATURAL_DUPLICATE, dup_rate),
            (SYNTHETIC_DUPLICATE, synthetic_dup_rate),
            (LATE, late_rate),
            (MALFORMED, malformed_rate),
            (INVALID, invalid_rate),
        ):
            if share > 0:
                total += share
                self._thresholds.append((total, kind))
        # Earlier valid events that duplicates copy: (text, event, ingest, lower bound of event_time).
        self._pool: list[tuple[str, dict[str, Any], float, float]] = []
        self._keep_pool = dup_rate > 0 or synthetic_dup_rate > 0
        self._pool_next = 0
        self._invalid_count = 0
        self._valid_count = 0

    def _valid(self, event: dict[str, Any], ingest: float, event_time: float, kind: str) -> Line:
        fast_path = self._fast_path
        if fast_path is None or not fast_path(event):
            # jsonschema decides, and raises ContractError naming the broken rule.
            contract.validate(event)
        if self._valid_count % JSONSCHEMA_SAMPLE_EVERY == 0:
            # Cross-check the fast path with jsonschema itself on a sample.
            contract.validate(event)
        self._valid_count += 1
        text = serialize(event)
        if self._keep_pool:
            pool = self._pool
            if len(pool) < DUPLICATE_POOL_SIZE:
                pool.append((text, event, ingest, event_time))
            else:
                pool[self._pool_next] = (text, event, ingest, event_time)
                self._pool_next = (self._pool_next + 1) % DUPLICATE_POOL_SIZE
        return Line(text, kind, None, event)

    def next_line(self, ingest: float) -> Line:
        """The next line, as received by the producer at ``ingest`` (epoch seconds)."""
        kind = VALID
        if self._thresholds:
            draw = self._rng.random()
            for threshold, candidate in self._thresholds:
                if draw < threshold:
                    kind = candidate
                    break
        if kind == NATURAL_DUPLICATE and self._pool:
            text, original, _, _ = self._pool[self._rng.randrange(len(self._pool))]
            return Line(text, NATURAL_DUPLICATE, None, None, original["event_id"])
        if kind == SYNTHETIC_DUPLICATE:
            line = self._synthetic_duplicate(ingest)
            if line is not None:
                return line
        if kind == LATE:
            lateness = faults.late_lateness(self._rng)
            event = self.traffic.offline_event(ingest, lateness)
            return self._valid(event, ingest, ingest - lateness, LATE)
        if kind == MALFORMED:
            event = self.traffic.next_event(ingest)
            text = faults.make_malformed(serialize(event), self._rng)
            return Line(text, MALFORMED, contract.MALFORMED_JSON, None, event["event_id"])
        if kind == INVALID:
            variant = faults.INVALID_VARIANTS[self._invalid_count % len(faults.INVALID_VARIANTS)]
            self._invalid_count += 1
            value = faults.make_invalid(variant, self.traffic.next_event(ingest), self._rng, ingest)
            event_id = value.get("event_id") if isinstance(value, dict) else None
            return Line(serialize(value), INVALID, variant.reason, None, event_id, variant.name)
        # On-time events, and duplicates drawn before any valid event existed to copy.
        event = self.traffic.next_event(ingest)
        # The exact event_time is a little earlier; its lower bound is all the lateness guard needs.
        return self._valid(event, ingest, ingest - MAX_CLIENT_DELAY_SECONDS, VALID)

    def _synthetic_duplicate(self, ingest: float) -> Line | None:
        """Same ``event_id`` as an earlier valid event, another payload, a strictly later ingest_time."""
        if not self._pool:
            return None
        rng = self._rng
        for _ in range(3):
            _, original, original_ingest, original_event_time = self._pool[rng.randrange(len(self._pool))]
            # Milliseconds are what the text keeps, so "strictly later" must hold at that precision.
            dup_ingest = max(ingest, original_ingest + 0.001)
            if dup_ingest - original_event_time >= _SYNTHETIC_LATENESS_LIMIT_SECONDS:
                continue
            event = dict(original)
            event["ingest_time"] = format_timestamp(dup_ingest)
            event["action"] = rng.choice([a for a in ACTIONS if a != original["action"]])
            if rng.random() < 0.5:
                event["page"] = rng.choice([p for p in PRODUCT_PAGES[:20] if p != original["page"]])
            self._validate(event)
            return Line(
                serialize(event), SYNTHETIC_DUPLICATE, rules.CONFLICTING_DUPLICATE, None, event["event_id"]
            )
        return None
