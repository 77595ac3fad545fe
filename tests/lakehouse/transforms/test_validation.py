"""Silver's contract reader: its verdict is the contract validator's for every line, its values are typed,
unknown fields are rescued exactly and IP addresses never come out in clear.

The reader runs on Arrow batches, so these tests call it directly (no Spark); tests/lakehouse/transforms/
test_silver.py runs it inside Spark through ``mapInArrow``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from lakehouse import contract, privacy
from lakehouse.contract_check import CompiledContract
from lakehouse.transforms.validation import ContractReader, ContractVerdicts

KEY = b"test-key"
FILE = "s3://bucket/landing/a.jsonl"
EXAMPLES = sorted((contract.SCHEMA_DIR / "examples").glob("*/*.json"))
BASE = json.loads((contract.SCHEMA_DIR / "examples/valid/view_required_fields_only.json").read_text())


READER = ContractReader(KEY)
VERDICTS = ContractVerdicts(KEY)
DEDUP_FIELDS = ("_violation", "event_id", "event_time", "ingest_time")


def _read(lines: list[str]) -> list[dict]:
    """The contract reader's rows, after checking that the dedup branch's reader agrees with them."""
    batch = pa.RecordBatch.from_pydict({"value": lines, "_source_file": [FILE] * len(lines)})
    rows = READER.read_batch(batch).to_pylist()
    verdicts = VERDICTS.read_batch(pa.RecordBatch.from_pydict({"value": lines})).to_pylist()
    for row, verdict in zip(rows, verdicts, strict=True):
        # Same verdict; a valid line's dedup fields as the parse types them (an invalid line's are not read).
        expected = {f: row[f] for f in DEDUP_FIELDS} if row["_violation"] is None else {"_violation": row["_violation"]}
        assert {f: verdict[f] for f in expected} == expected
        assert row["_violation"] is not None or all(row[f] is not None for f in DEDUP_FIELDS[1:])
    return rows


def _verdict(row: dict) -> tuple[str, str] | None:
    return (row["_violation"]["reason"], row["_violation"]["field"]) if row["_violation"] else None


def _expected(line: str) -> tuple[str, str] | None:
    found = contract.violation_of_line(line)
    return (found.reason, found.field) if found else None


def _line(path) -> str:
    text = path.read_text()
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return text.rstrip("\n")


def test_every_example_gets_the_verdict_its_file_name_gives(spark):
    lines = [_line(p) for p in EXAMPLES]
    for path, row in zip(EXAMPLES, _read(lines), strict=True):
        expected = None if path.parent.name == "valid" else path.stem.split("__")[0]
        assert (_verdict(row) or (None,))[0] == expected, path.name


EDGE_CASES = [
    {"schema_version": 1.0},  # an integer-valued number is an integer for JSON Schema
    {"schema_version": 1e0},
    {"schema_version": True},
    {"schema_version": 2},
    {"schema_version": 1e400},  # read as infinity: a number, but not an integer
    {"event_time": "2026-02-30T10:00:00Z"},  # no such day
    {"event_time": "0000-01-01T00:00:00Z"},  # no year 0 in Python, Spark or Delta
    {"event_time": "9999-12-31T23:59:59.999999Z"},
    {"event_time": "2026-12-31T23:59:60Z"},  # a leap second: RFC 3339 syntax, no instant to hold it
    {"event_time": "2026-11-20t10:15:30z"},  # RFC 3339 allows lower case
    {"event_time": "2026-11-20T10:15:30.123456789Z"},
    {"event_time": "2026-11-20T10:15:30Z\n"},  # anchors match whole values
    {"event_id": "3F1C1D2E-8A4B-4C5D-9E6F-7A8B9C0D1E2F"},
    {"event_id": "3f1c1d2e-8a4b-4c5d-9e6f-7a8b9c0d1e2f\n"},
    {"event_id": "{3f1c1d2e-8a4b-4c5d-9e6f-7a8b9c0d1e2f}"},
    {"referrer": None, "source": None, "user_agent": None},
    {"device_type": None},
    {"country": "D1"},
    {"country": "US\n"},
    {"ip_hash": "A" * 64},
    {"ip_hash": "203.0.113.7"},
    {"page": ""},
    {"action": 1},
    {"nested": {"a": [1, 2]}, "n": 3},
]


@pytest.mark.parametrize("change", EDGE_CASES, ids=[json.dumps(c)[:40] for c in EDGE_CASES])
def test_edge_cases_get_the_contract_validators_verdict(change):
    line = json.dumps({**BASE, **change})
    (row,) = _read([line])
    assert _verdict(row) == _expected(line)


def test_the_validator_reads_patterns_and_date_times_as_json_schema_means_them():
    """Python's ``$`` also matches before a final line break, where ECMA-262 (JSON Schema's regex) does not."""
    stock = Draft202012Validator(contract.load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    for change in ({"country": "US\n"}, {"event_time": "2026-11-20T10:15:30Z\n"}):
        event = {**BASE, **change}
        assert stock.is_valid(event), "stock jsonschema reads $ the Python way"
        assert contract.violation(event) is not None
    assert contract.violation({**BASE, "country": "US"}) is None


def test_lines_that_are_not_one_strict_json_value_are_malformed_with_the_line_kept():
    event = json.dumps(BASE)
    cases = {
        event: None,
        "  " + event + " \r": None,  # whitespace around, a CRLF file's carriage return
        event[:-1] + ', "extra": NaN}': ("malformed_json", "$"),
        event.replace('"', "'"): ("malformed_json", "$"),
        event[:-1] + ', "page": "/again"}': ("malformed_json", "$"),  # a member given twice
        event + event: ("malformed_json", "$"),  # two objects on one line
        event + " // a comment": ("malformed_json", "$"),
        event + "x": ("malformed_json", "$"),
        "\ufeff" + event: ("malformed_json", "$"),  # a byte order mark
        event[:-1] + ', "x": "\\ud800"}': ("malformed_json", "$"),  # an unpaired surrogate
        "[" * 100_000: ("malformed_json", "$"),
        event[:40]: ("malformed_json", "$"),
        "": ("malformed_json", "$"),
        "[" + event + "]": ("invalid_type", "$"),
        '"a string"': ("invalid_type", "$"),
        "null": ("invalid_type", "$"),
        "{}": ("missing_required_field", "event_id"),
    }
    rows = _read(list(cases))
    assert [_verdict(r) for r in rows] == list(cases.values())
    assert [r["value"] for r in rows] == list(cases)


def test_a_valid_event_comes_out_typed_with_its_date_and_no_rescued_data():
    line = _line(contract.SCHEMA_DIR / "examples/valid/click_all_optional_fields.json")
    (row,) = _read([line])
    assert row["_violation"] is None and row["_rescued_data"] is None
    assert (row["schema_version"], row["action"], row["country"]) == (1, "click", "DE")
    assert row["event_time"] == datetime(2026, 11, 20, 10, 15, 30, 123000, tzinfo=UTC)
    assert row["event_date"].isoformat() == "2026-11-20"


def test_an_upper_case_uuid_is_the_same_event_id_and_payload():
    lower, upper = BASE["event_id"], BASE["event_id"].upper()
    rows = _read([json.dumps(BASE), json.dumps({**BASE, "event_id": upper})])
    assert lower != upper and [r["event_id"] for r in rows] == [lower, lower]
    assert rows[0]["payload_hash"] == rows[1]["payload_hash"]


def test_the_payload_hash_ignores_ingest_time_only():
    other_ingest = {**BASE, "ingest_time": "2026-11-20T11:00:00Z"}
    other_page = {**BASE, "page": "/other"}
    hashes = [r["payload_hash"] for r in _read([json.dumps(e) for e in (BASE, other_ingest, other_page)])]
    assert hashes[0] == hashes[1] != hashes[2]


def test_unknown_fields_are_rescued_under_their_own_key_exactly_as_written():
    extra = (
        ', "campaign": "bf", "score": 1.50, "big": 1234567890123456789012345678901234567890, "huge": 1e400,'
        ' "tags": ["a", {"b": null}], "_file_path": "mine", "fields": true}'
    )
    (row,) = _read([json.dumps(BASE)[:-1] + extra])
    assert row["_violation"] is None
    assert row["_rescued_data"] == (
        '{"_file_path":"s3://bucket/landing/a.jsonl","fields":{"campaign":"bf","score":1.50,'
        '"big":1234567890123456789012345678901234567890,"huge":1e400,"tags":["a",{"b":null}],'
        '"_file_path":"mine","fields":true}}'
    )


def test_ip_addresses_are_hashed_in_free_text_rescued_fields_and_messages():
    ip, ipv6 = "203.0.113.7", "2001:db8::8a2e:370:7334"
    event = {
        **BASE,
        "referrer": f"http://{ip}/x",
        "user_agent": "Mozilla/5.0 Chrome/124.0.0.0",  # a browser version, not an address
        "client_ip": ip,
        "context": {"ip": ipv6, "forwarded": f"{ip}, 10.0.0.1"},
    }
    rows = _read([json.dumps(event), json.dumps({**BASE, "ip_hash": ip}), json.dumps({**BASE, "page": 7, "x": ip})])
    valid, bad_hash, _ = rows
    assert valid["referrer"] == f"http://{privacy.keyed_hash(ip, KEY)}/x"
    assert valid["user_agent"] == "Mozilla/5.0 Chrome/124.0.0.0"
    rescued = json.loads(valid["_rescued_data"])["fields"]
    assert rescued["client_ip"] == privacy.keyed_hash(ip, KEY)
    assert rescued["context"]["ip"] == privacy.keyed_hash(ipv6, KEY)
    assert rescued["context"]["forwarded"] == f"{privacy.keyed_hash(ip, KEY)}, {privacy.keyed_hash('10.0.0.1', KEY)}"
    assert _verdict(bad_hash) == ("invalid_format", "ip_hash")
    for row in rows:
        shown = {k: v for k, v in row.items() if k != "value"}  # the raw line is kept as sent
        assert not list(privacy.ip_addresses(json.dumps(shown, default=str))), shown
    assert ip in bad_hash["value"]


# -- thousands of generated lines ------------------------------------------------------------------

SCHEMA = contract.load_schema()


def _valid_value(prop: dict) -> st.SearchStrategy:
    """Values the contract accepts for one property, from its own keywords."""
    if "const" in prop:
        return st.just(prop["const"])
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if prop.get("format") == "uuid":
        return st.uuids().map(str)
    if prop.get("format") == "date-time":
        instants = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59), timezones=st.just(UTC))
        return instants.map(lambda t: t.isoformat().replace("+00:00", "Z"))
    if "pattern" in prop:
        return st.from_regex(contract.ecma_regex(prop["pattern"]))
    text = st.text(min_size=prop.get("minLength", 0), max_size=20)
    return text | st.none() if "null" in prop["type"] else text


def from_contract(schema: dict) -> st.SearchStrategy:
    """Events the contract accepts: every required field, some optional ones."""
    required = {name: _valid_value(schema["properties"][name]) for name in schema["required"]}
    optional = {name: _valid_value(p) for name, p in schema["properties"].items() if name not in required}
    return st.fixed_dictionaries(required, optional=optional)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
TRICKY_TEXT = st.sampled_from([
    "US", "US\n", "us", "", " ", "2026-11-20T10:15:30Z", "2026-11-20T10:15:30.5+00:00", "2026-11-20T10:15:30Z\n",
    "0000-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20 10:15:30Z",
    "3f1c1d2e-8a4b-4c5d-9e6f-7a8b9c0d1e2f", "3F1C1D2E-8A4B-4C5D-9E6F-7A8B9C0D1E2F", "view", "VIEW", "203.0.113.7",
    "a" * 64, "0" * 63, "::1", "purchase\n",
])


@st.composite
def lines(draw) -> str:
    event = draw(from_contract(SCHEMA))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([*SCHEMA["properties"], "extra", "_file_path"]))
        if draw(st.booleans()) and name in event:
            del event[name]
        else:
            event[name] = draw(TRICKY_TEXT | ANY_JSON)
    text = json.dumps(event, allow_nan=False)
    return draw(st.sampled_from([text, text, text, text[:-1] + ', "page": "/twice"}', text + " {}", " " + text]))


FAST = CompiledContract().fast_path


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines())
def test_generated_lines_get_the_contract_validators_verdict(line):
    """1,000 lines a run, from the contract's own schema, mutated and broken."""
    (row,) = _read([line])
    expected = _expected(line)
    assert _verdict(row) == expected
    if expected is None:
        event = json.loads(line)
        assert row["event_id"] == event["event_id"].lower()
        assert row["page"] == privacy.scrub(event["page"], KEY)
    else:
        try:
            event = contract.parse_line(line)
        except contract.MalformedLineError:
            return  # not one strict JSON value: the fast path never sees it
        assert not FAST(event), "the fast path accepted an invalid line"
