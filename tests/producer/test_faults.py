"""Fault builders: late events inside the hard limit, invalid variants with exactly their reason, unparseable lines."""

from __future__ import annotations

import json
import random

import pytest
from support import parse_time, traffic_model

from lakehouse import contract
from lakehouse.rules import MAX_LATENESS_HOURS
from producer import faults, read_truth


def test_late_events_are_minutes_to_hours_old_and_stay_inside_the_hard_limit(faulty_run):
    _, tmp_path, manifest, _ = faulty_run
    lateness = sorted(
        (parse_time(e["ingest_time"]) - parse_time(e["event_time"])).total_seconds()
        for e in read_truth(tmp_path / manifest.truth_file)
    )
    late = [s for s in lateness if s >= faults.MIN_LATENESS_SECONDS]
    on_time = [s for s in lateness if s < faults.MIN_LATENESS_SECONDS]
    assert len(late) == manifest.counts["late_events"]
    assert max(on_time) <= 30.0
    assert max(late) < MAX_LATENESS_HOURS * 3600
    assert max(late) > 3600, "some late events should be hours old"


def test_invalid_variants_cover_every_reason_and_each_gets_exactly_its_reason():
    rng = random.Random(4)
    model = traffic_model()
    covered = set()
    for variant in faults.INVALID_VARIANTS:
        ingest = 1.77e9
        value = faults.make_invalid(variant, model.next_event(ingest), rng, ingest)
        found = contract.violation(value)
        if variant.reason in ("too_late", "future_event_time"):
            assert found is None
        else:
            assert found.reason == variant.reason, variant.name
        covered.add(variant.reason)
    assert covered == (set(contract.CONTRACT_REASONS) - {"malformed_json"}) | {"too_late", "future_event_time"}
    first_round = [v.reason for v in faults.INVALID_VARIANTS[:9]]
    assert len(set(first_round)) == 9, "the first invalid events already cover every reason"


def test_a_variant_that_misses_its_reason_is_refused():
    broken = faults.InvalidVariant("invalid_enum", "not_really", lambda e, rng, ingest: e)
    with pytest.raises(faults.InjectionError, match="invalid_enum"):
        faults.make_invalid(broken, traffic_model().next_event(1.77e9), random.Random(1), 1.77e9)


def test_malformed_lines_never_parse_and_are_never_blank():
    rng = random.Random(9)
    model = traffic_model()
    for _ in range(300):
        text = faults.make_malformed(faults.serialize(model.next_event(1.77e9)), rng)
        assert text.strip() and "\n" not in text
        with pytest.raises(ValueError):
            json.loads(text)
