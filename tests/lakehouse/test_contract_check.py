"""The fast contract check agrees with jsonschema, never accepts what it rejects, and turns off on unknown keywords."""

from __future__ import annotations

import json
import random

import pytest
from support import traffic_events, traffic_model

from lakehouse import contract
from lakehouse.contract_check import CompiledContract

EXAMPLES = contract.SCHEMA_DIR / "examples"


def test_the_fast_contract_check_agrees_with_jsonschema_on_the_examples():
    checker = CompiledContract()
    assert checker.compiled
    for path in sorted((EXAMPLES / "valid").glob("*.json")):
        checker.validate(json.loads(path.read_text()))
    for path in sorted((EXAMPLES / "invalid").glob("*.json")):
        try:
            event = json.loads(path.read_text())
        except ValueError:
            continue
        assert not checker.accepts(event), path.name
        with pytest.raises(contract.ContractError):
            checker.validate(event)


def test_the_fast_contract_check_never_accepts_what_jsonschema_rejects():
    checker = CompiledContract()
    rng = random.Random(21)
    tricky = [
        None,
        True,
        1,
        1.0,
        2,
        "",
        "x",
        [],
        {},
        "2026-02-30T10:00:00Z",
        "2026-05-01T10:00:00+02:00",
        "2026-05-01T10:00:00.5Z",
        "2026-05-01T10:00:00z",
        "2026-05-01t10:00:00Z",
        "2026-05-01T24:00:00Z",
        "A7E2B9C4-1D3F-4E5A-8B6C-0D9E8F7A6B5C",
        "a7e2b9c41d3f4e5a8b6c0d9e8f7a6b5c",
        "view",
        "purchase",
        "VIEW",
        "US",
        "us",
        "USA",
        "f" * 64,
        "F" * 64,
        "f" * 63,
        "mobile",
        "phone",
        "/",
        "0" * 64 + "\n",
    ]
    base = traffic_events(traffic_model(), 50)
    fields = contract.field_names()
    accepted = rejected = 0
    for _ in range(4000):
        event = dict(rng.choice(base))
        for name in rng.sample(fields, rng.randint(1, 3)):
            if rng.random() < 0.15:
                event.pop(name, None)
            else:
                event[name] = rng.choice(tricky)
        if checker.accepts(event):
            accepted += 1
            assert contract.violation(event) is None, event
        else:
            rejected += 1
    assert accepted > 50 and rejected > 1000


def test_an_unknown_schema_keyword_turns_the_fast_path_off():
    schema = json.loads(contract.SCHEMA_PATH.read_text())
    schema["properties"]["page"]["maxLength"] = 5
    checker = CompiledContract(schema)
    assert not checker.compiled
    assert not checker.accepts(json.loads((EXAMPLES / "valid" / "view_required_fields_only.json").read_text()))
