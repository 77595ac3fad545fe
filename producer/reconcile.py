"""An independent recount of a run from the bytes that landed, to hold a manifest to account.

The producer counts lines as it makes them; this module ignores all of that and classifies the
landed text the way the pipeline will: unparsable → ``malformed_json``; contract violation → its
reason; lateness rules → ``too_late`` / ``future_event_time``; then by ``event_id`` in arrival
order: first arrival → valid unique event (late if it happened more than a few minutes before it
was ingested), the same bytes again → natural duplicate, another payload → ``conflicting_duplicate``.
:func:`differences` lists every count where the recount and a manifest disagree.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakehouse import contract, rules
from lakehouse.rules import FUTURE_TOLERANCE_MINUTES, MAX_LATENESS_HOURS
from producer.faults import MIN_LATENESS_SECONDS

ACTIONS = contract.actions()


@dataclass
class Recount:
    """Counts in the manifest's shape, derived from landed lines only."""

    lines: int = 0
    objects: int = 0
    natural_duplicates: int = 0
    late_events: int = 0
    quarantine: Counter[str] = field(default_factory=Counter)
    first_arrivals: list[str] = field(default_factory=list)
    by_date_action: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(ACTIONS, 0))
    )
    users_by_date: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sessions_by_date: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _first: dict[str, str] = field(default_factory=dict)

    def add_object(self, lines: Iterable[str]) -> None:
        """Classify the lines of one object, in order, after every earlier object."""
        self.objects += 1
        for line in lines:
            self._add(line)

    def _add(self, line: str) -> None:
        self.lines += 1
        found = contract.violation_of_line(line)
        if found is not None:
            self.quarantine[found.reason] += 1
            return
        event = json.loads(line)
        event_time = datetime.fromisoformat(event["event_time"])
        lateness = (datetime.fromisoformat(event["ingest_time"]) - event_time).total_seconds()
        if lateness > MAX_LATENESS_HOURS * 3600:
            self.quarantine[rules.TOO_LATE] += 1
            return
        if -lateness > FUTURE_TOLERANCE_MINUTES * 60:
            self.quarantine[rules.FUTURE_EVENT_TIME] += 1
            return
        first = self._first.get(event["event_id"])
        if first is not None:
            if first == line or _payload(json.loads(first)) == _payload(event):
                self.natural_duplicates += 1
            else:
                self.quarantine[rules.CONFLICTING_DUPLICATE] += 1
            return
        self._first[event["event_id"]] = line
        self.first_arrivals.append(line)
        if lateness >= MIN_LATENESS_SECONDS:
            self.late_events += 1
        day = event_time.date().isoformat()
        self.by_date_action[day][event["action"]] += 1
        self.users_by_date[day].add(event["user_id"])
        self.sessions_by_date[day].add(event["session_id"])

    def counts(self) -> dict[str, Any]:
        """The ``counts`` section a manifest of these lines must carry."""
        q = self.quarantine
        contract_invalid = sum(v for k, v in q.items() if k not in ("malformed_json", "conflicting_duplicate"))
        return {
            "lines_sent": self.lines,
            "objects": self.objects,
            "valid_unique_events": len(self.first_arrivals),
            "natural_duplicates": self.natural_duplicates,
            "synthetic_duplicates": q["conflicting_duplicate"],
            "late_events": self.late_events,
            "malformed_lines": q["malformed_json"],
            "invalid_events": contract_invalid,
            "expected_quarantine": dict(sorted((k, v) for k, v in q.items() if v)),
        }

    def as_manifest_sections(self) -> dict[str, Any]:
        days = sorted(self.by_date_action)
        return {
            "counts": self.counts(),
            "by_date_action": {d: dict(self.by_date_action[d]) for d in days},
            "distinct_users_by_date": {d: len(self.users_by_date[d]) for d in days},
            "distinct_sessions_by_date": {d: len(self.sessions_by_date[d]) for d in days},
        }


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "ingest_time"}


def object_lines(body: bytes, key: str) -> list[str]:
    """The non-blank lines of one landed object (gunzipped when the key ends in ``.gz``)."""
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    return [line for line in body.decode("utf-8").split("\n") if line.strip()]


def recount_objects(client: Any, bucket: str, keys: Iterable[str]) -> Recount:
    """Read the objects ``keys`` in order (the manifest's order is the landing order) and recount."""
    recount = Recount()
    for key in keys:
        recount.add_object(object_lines(client.get_object(Bucket=bucket, Key=key)["Body"].read(), key))
    return recount


def differences(manifest: dict[str, Any], recount: Recount) -> list[str]:
    """Every manifest section or count that the recount does not reproduce, described."""
    found: list[str] = []
    sections = recount.as_manifest_sections()
    for name, value in sections["counts"].items():
        claimed = manifest["counts"].get(name)
        if claimed != value:
            found.append(f"counts.{name}: manifest {claimed}, landed {value}")
    for name in ("by_date_action", "distinct_users_by_date", "distinct_sessions_by_date"):
        if manifest.get(name) != sections[name]:
            found.append(f"{name}: manifest {manifest.get(name)}, landed {sections[name]}")
    return found
