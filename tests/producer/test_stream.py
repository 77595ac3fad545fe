"""The line stream: valid events pass the contract, every injected fault fails as expected."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from support import parse_time

from lakehouse import contract
from lakehouse.rules import FUTURE_TOLERANCE_MINUTES, MAX_LATENESS_HOURS
from producer.reconcile import object_lines


def test_valid_events_pass_the_contract_and_every_injected_fault_fails_as_expected(faulty_run):
    _, _, manifest, objects = faulty_run
    seen: dict[str, dict] = {}
    reasons: Counter[str] = Counter()
    lates = 0
    for key in sorted(objects):
        for line in object_lines(objects[key], key):
            found = contract.violation_of_line(line)
            if found is not None:
                reasons[found.reason] += 1
                assert found.reason in contract.CONTRACT_REASONS
                continue
            event = json.loads(line)
            lateness = parse_time(event["ingest_time"]) - parse_time(event["event_time"])
            if lateness > timedelta(hours=MAX_LATENESS_HOURS):
                assert lateness >= timedelta(days=3, hours=1)
                reasons["too_late"] += 1
                continue
            if -lateness > timedelta(minutes=FUTURE_TOLERANCE_MINUTES):
                assert timedelta(minutes=10) <= -lateness <= timedelta(hours=3)
                reasons["future_event_time"] += 1
                continue
            # Every event that reaches Silver: contract-valid, and received after it happened.
            assert contract.is_valid(event)
            assert lateness >= timedelta(0), event
            original = seen.get(event["event_id"])
            if original is None:
                seen[event["event_id"]] = event
                lates += lateness >= timedelta(minutes=2)
            elif original != event:
                # A synthetic duplicate: another payload and a strictly later ingest_time.
                assert parse_time(event["ingest_time"]) > parse_time(original["ingest_time"])
                assert {k: v for k, v in event.items() if k != "ingest_time"} != {
                    k: v for k, v in original.items() if k != "ingest_time"
                }
                reasons["conflicting_duplicate"] += 1
    expected = manifest.counts["expected_quarantine"]
    assert dict(reasons) == expected
    assert lates == manifest.counts["late_events"]
