"""Hostile input, end to end through the notebooks: no stream stops, every line and every file ends up
exactly where it should, nothing is lost, no IP address comes out in clear, and a re-run changes nothing.

Each case below is one kind of unusual or hostile input with its expected outcome: a file is ``read`` or
``quarantined`` (``bronze.files``); a line is an event in Silver (``SILVER``), a ``DUPLICATE`` (counted,
not stored twice), or quarantined with a reason.
"""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from support import params

from lakehouse import catalog, privacy, reconcile
from lakehouse_local.cli import run_pipeline
from lakehouse_local.privacy_scan import addresses_in_clear
from lakehouse_local.tables import FolderLakehouse

pytestmark = pytest.mark.e2e

SILVER, DUPLICATE = "silver", "duplicate"
T = "2026-11-20T10:00:00Z"
INGEST = "2026-11-20T10:00:01Z"
IP = "203.0.113.7"


def event(**fields) -> dict:
    base = {
        "event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": T, "ingest_time": INGEST,
        "user_id": "u-hostile", "session_id": "s-hostile", "action": "view", "page": "/home",
    }
    return {**base, **fields}


def line(value: dict | str) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Case:
    """One kind of input: its file (name and bytes) and what must become of the file and of each line."""

    name: str
    lines: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # SILVER, DUPLICATE or a quarantine reason, per line
    raw: bytes | None = None  # the file's bytes, when not the lines joined by \n
    suffix: str = ".jsonl"
    file_error: str | None = None  # set: the file is quarantined with an error containing this

    @property
    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return "".join(f"{text}\n" for text in self.lines).encode()


def one(name: str, value: dict | str, outcome: str) -> Case:
    return Case(name, [line(value)], [outcome])


def _cases() -> list[Case]:
    valid = event()
    duplicated = event()
    conflict = event()
    upper = event()
    three = [event(page=f"/p{i}") for i in range(3)]
    nested: dict = {"x": 1}
    for _ in range(60):
        nested = {"n": nested}
    text = "\n".join(line(e) for e in three).encode()
    gz = gzip.compress(text + b"\n")
    return [
        # -- files: compression, encodings, line endings, sizes ----------------------------------------
        Case("plain file", [line(e) for e in three], [SILVER] * 3),
        Case("gzip file", raw=gzip.compress("\n".join(line(event(page=f"/gz{i}")) for i in range(2)).encode()),
             suffix=".jsonl.gz", outcomes=[SILVER] * 2),
        Case("truncated gzip", raw=gz[:-10], suffix=".jsonl.gz", file_error="not a complete gzip stream"),
        Case("gzip name over plain text", raw=text, suffix=".jsonl.gz", file_error="not a complete gzip stream"),
        Case("gzip with trailing garbage", raw=gz + b"garbage", suffix=".jsonl.gz", file_error="gzip"),
        Case("bytes that are not UTF-8", raw=line(event()).encode() + b"\n\xff\xfe broken\n", file_error="not UTF-8"),
        Case("UTF-16 text", raw=line(event()).encode("utf-16"), file_error="not UTF-8"),
        Case("UTF-8 byte order mark", raw=b"\xef\xbb\xbf" + (line(event()) + "\n" + line(event()) + "\n").encode(),
             outcomes=["malformed_json", SILVER]),
        Case("CRLF line endings", raw=(line(event()) + "\r\n" + line(event()) + "\r\n").encode(), outcomes=[SILVER] * 2),
        Case("CR line endings", raw=(line(event()) + "\r" + line(event()) + "\r").encode(), outcomes=[SILVER] * 2),
        Case("empty file", raw=b""),
        Case("blank and whitespace lines", ["", "   ", "\t"], ["malformed_json"] * 3),
        Case("no final line break", raw=line(event()).encode(), outcomes=[SILVER]),
        Case("huge line", [line(event(page="/" + "x" * 1_000_000))], [SILVER]),
        Case("many lines", [line(event(page=f"/many/{i}")) for i in range(3000)], [SILVER] * 3000),
        # -- strict JSON ----------------------------------------------------------------------------------
        one("two objects on one line", line(event()) + line(event()), "malformed_json"),
        one("text after the object", line(event()) + " x", "malformed_json"),
        one("a comment", line(event()) + " // sent by v2", "malformed_json"),
        Case("pretty-printed JSON", json.dumps(event(), indent=2).split("\n"),
             ["malformed_json"] * len(json.dumps(event(), indent=2).split("\n"))),
        one("single quotes", line(event()).replace('"', "'"), "malformed_json"),
        one("NaN", line(event())[:-1] + ', "score": NaN}', "malformed_json"),
        one("a member given twice", line(event())[:-1] + ', "page": "/again"}', "malformed_json"),
        one("an array", "[" + line(event()) + "]", "invalid_type"),
        one("a string", '"view"', "invalid_type"),
        one("null", "null", "invalid_type"),
        one("an empty object", "{}", "missing_required_field"),
        one("nesting too deep to read", "[" * 100_000, "malformed_json"),
        one("deep nesting in an unknown field", event(extra=nested), SILVER),
        one("an unpaired surrogate", line(event())[:-1] + ', "x": "\\ud800"}', "malformed_json"),
        one("non-ASCII text", event(page="/caf\u00e9/\U0001f600"), SILVER),
        one("escaped non-ASCII text", line(event())[:-1] + ', "note": "caf\\u00e9"}', SILVER),
        # -- numbers --------------------------------------------------------------------------------------
        one("schema_version 1.0", event(schema_version=1.0), SILVER),
        one("schema_version 1e0", line(event())[:-1].replace('"schema_version": 1', '"schema_version": 1e0') + "}",
            SILVER),
        one("schema_version 2", event(schema_version=2), "unsupported_schema_version"),
        one("schema_version as text", event(schema_version="1"), "invalid_type"),
        one("schema_version true", event(schema_version=True), "invalid_type"),
        one("a number beyond doubles", line(event())[:-1] + ', "huge": 1e400}', SILVER),
        one("a 40-digit integer", line(event())[:-1] + ', "big": 1234567890123456789012345678901234567890}', SILVER),
        # -- timestamps at every boundary -----------------------------------------------------------------
        one("year 0000", event(event_time="0000-01-01T00:00:00Z"), "invalid_timestamp"),
        one("the first instant", event(event_time="0001-01-01T00:00:00Z", ingest_time="0001-01-01T00:00:01Z"), SILVER),
        one("the last instant", event(event_time="9999-12-31T23:59:59.999999Z", ingest_time="9999-12-31T23:59:59.999999Z"),
            SILVER),
        one("a leap second", event(event_time="2026-11-20T23:59:60Z"), "invalid_timestamp"),
        one("29 February of a common year", event(event_time="2025-02-29T10:00:00Z"), "invalid_timestamp"),
        one("lower-case t and z", event(event_time="2026-11-20t10:00:00z"), SILVER),
        one("nine fraction digits", event(event_time="2026-11-20T10:00:00.123456789Z"), SILVER),
        one("a line break after the timestamp", event(event_time=T + "\n"), "invalid_timestamp"),
        one("an offset other than zero", event(event_time="2026-11-20T10:00:00+01:00"), "invalid_timestamp"),
        one("exactly at the lateness limit", event(event_time="2026-11-17T10:00:01Z"), SILVER),
        one("one second past the lateness limit", event(event_time="2026-11-17T10:00:00Z"), "too_late"),
        one("more than the tolerance in the future", event(event_time="2026-11-20T10:05:02Z"), "future_event_time"),
        # -- identifiers, collisions, duplicates ----------------------------------------------------------
        Case("an upper-case UUID of an event", [line(upper), line({**upper, "event_id": upper["event_id"].upper()})],
             [SILVER, DUPLICATE]),
        one("a line break after the event_id", event(event_id=str(uuid.uuid4()) + "\n"), "invalid_uuid"),
        one("a line break after the country", event(country="US\n"), "invalid_format"),
        one("an unknown field named _file_path", event(_file_path="/etc/passwd"), SILVER),
        one("an unknown field named fields", event(fields={"a": 1}), SILVER),
        Case("a duplicate within one file", [line(valid), line(valid)], [SILVER, DUPLICATE]),
        Case("a duplicate in another file, first", [line(duplicated)], [SILVER]),
        Case("a duplicate in another file, second", [line({**duplicated, "ingest_time": "2026-11-20T10:00:05Z"})],
             [DUPLICATE]),
        Case("a conflicting duplicate", [line(conflict), line({**conflict, "page": "/other",
                                                               "ingest_time": "2026-11-20T10:00:02Z"})],
             [SILVER, "conflicting_duplicate"]),
        # -- IP addresses ---------------------------------------------------------------------------------
        one("a raw IP as ip_hash", event(ip_hash=IP), "invalid_format"),
        one("an IPv6 as ip_hash", event(ip_hash="2001:db8::1"), "invalid_format"),
        one("an IP in an unknown field", event(client_ip=IP, x_forwarded_for=f"{IP}, 10.1.2.3"), SILVER),
        one("an IP nested in an unknown field", event(context={"ip": "2001:db8::8a2e:370:7334"}), SILVER),
        one("an IP in the referrer", event(referrer=f"http://{IP}/landing"), SILVER),
        one("an IP as the page of an invalid event", event(page=IP, action="buy"), "invalid_enum"),
        one("a browser version in the user agent", event(user_agent="Mozilla/5.0 Chrome/124.0.0.0"), SILVER),
    ]


CASES = _cases()


def _land(folder: Path) -> dict[str, Case]:
    files = {}
    for number, case in enumerate(CASES):
        # Keys in landing order, one object per case, as the producer names them.
        path = folder / "dt=2026-11-20" / "hr=10" / f"20261120T1000{number:05d}Z-case{number:03d}{case.suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.content)
        files[path.as_uri()] = case
    return files


@pytest.fixture(scope="module")
def hostile(spark, tmp_path_factory):
    assert len(CASES) >= 40
    folder = tmp_path_factory.mktemp("hostile")
    landing, root = folder / "landing", folder / "lh"
    files = _land(landing)
    run_pipeline(spark, params(str(landing), root, max_files_per_trigger="8", max_table_files_per_trigger="2"))
    return {"landing": landing, "root": root, "files": files, "lakehouse": FolderLakehouse(spark, str(root))}


def _outcomes(lakehouse) -> dict[tuple[str, int], str]:
    """Where each Bronze line went: Silver, quarantine (its reason) or neither (a duplicate)."""
    bronze = {r._record_id: (r._source_file, r._line_number) for r in
              lakehouse.read("bronze.events").select("_record_id", "_source_file", "_line_number").collect()}
    where = dict.fromkeys(bronze.values(), DUPLICATE)
    for r in lakehouse.read("silver.events").select("_record_id").collect():
        where[bronze[r._record_id]] = SILVER
    for r in lakehouse.read("silver.quarantine").select("_record_id", "reason").collect():
        where[bronze[r._record_id]] = r.reason
    return where


def test_every_kind_of_hostile_input_gets_its_expected_outcome(hostile):
    lakehouse = hostile["lakehouse"]
    files = {r.file: r for r in lakehouse.read("bronze.files").collect()}
    where = _outcomes(lakehouse)
    for uri, case in hostile["files"].items():
        record = files[uri]
        if case.file_error:
            assert record.error and case.file_error in record.error, case.name
            assert record.lines == 0 and not any(path == uri for path, _ in where), case.name
        else:
            assert record.error is None and record.lines == len(case.outcomes), case.name
            got = [where[(uri, number)] for number in range(1, len(case.outcomes) + 1)]
            assert got == case.outcomes, case.name


def test_conservation_of_lines_and_files_holds_exactly(hostile):
    c = reconcile.conservation(hostile["lakehouse"])
    landed_lines = sum(len(case.outcomes) for case in CASES if not case.file_error)
    duplicates = sum(case.outcomes.count(DUPLICATE) for case in CASES)
    assert (c.landed_files, c.files_quarantined) == (len(CASES), sum(1 for case in CASES if case.file_error))
    assert (c.landed_lines, c.duplicates_removed) == (landed_lines, duplicates)
    assert c.holds


def test_rescued_fields_keep_their_text_and_hash_ip_addresses(hostile):
    lakehouse = hostile["lakehouse"]
    rescued = [json.loads(r._rescued_data) for r in
               lakehouse.read("silver.events").filter("_rescued_data IS NOT NULL").select("_rescued_data").collect()]
    by_field = {name: value for r in rescued for name, value in r["fields"].items()}
    assert by_field["_file_path"] == "/etc/passwd" and by_field["fields"] == {"a": 1}
    assert by_field["note"] == "caf\u00e9"
    raw = {r._rescued_data for r in lakehouse.read("silver.events").select("_rescued_data").collect() if r._rescued_data}
    assert any('"huge":1e400' in text for text in raw)
    assert any('"big":1234567890123456789012345678901234567890' in text for text in raw)
    key = privacy.hmac_key()
    assert by_field["client_ip"] == privacy.keyed_hash(IP, key)


def test_no_ip_address_in_clear_in_any_column_of_silver_gold_or_ops(hostile):
    assert addresses_in_clear(hostile["lakehouse"]) == []
    # The raw lines keep what was sent (engineers only): there the address still is.
    assert any(IP in r.raw_line for r in hostile["lakehouse"].read("silver.quarantine").collect())


def test_a_rerun_changes_nothing(spark, hostile):
    from deltalake import DeltaTable

    lakehouse = hostile["lakehouse"]
    data_tables = [s.name for s in catalog.ALL_TABLES if s.name != "ops.pipeline_metrics"]
    versions = {name: DeltaTable(lakehouse.path(name)).version() for name in data_tables}
    run_pipeline(spark, params(str(hostile["landing"]), hostile["root"]))
    assert {name: DeltaTable(lakehouse.path(name)).version() for name in data_tables} == versions


def test_a_bad_file_replaced_by_a_good_one_is_read_and_the_bad_one_stays_recorded(spark, hostile):
    lakehouse = hostile["lakehouse"]
    bad = next(uri for uri, case in hostile["files"].items() if case.name == "truncated gzip")
    bad_path = Path(unquote(urlparse(bad).path))
    fixed = bad_path.with_name("20261120T1001000000Z-fixed.jsonl.gz")
    replacement = [event(page="/fixed/1"), event(page="/fixed/2")]
    fixed.write_bytes(gzip.compress("".join(line(e) + "\n" for e in replacement).encode()))
    bad_path.unlink()  # the landing's expiry, or an engineer, removes the bad one

    run_pipeline(spark, params(str(hostile["landing"]), hostile["root"]))

    files = {r.file: r for r in lakehouse.read("bronze.files").collect()}
    assert files[fixed.as_uri()].error is None and files[fixed.as_uri()].lines == 2
    assert files[bad].error  # still recorded: nothing is forgotten
    ids = {r.event_id for r in lakehouse.read("silver.events").select("event_id").collect()}
    assert {e["event_id"] for e in replacement} <= ids
    assert reconcile.conservation(lakehouse).holds
