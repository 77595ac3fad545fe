"""Silver's reading of Bronze lines: strict JSON, the contract's verdict, typed fields, rescued unknown fields.

:class:`ContractReader` runs in Spark's Python workers over Arrow batches (``mapInArrow``) and reads every
line by the same rules the producer and the tests use (:mod:`lakehouse.contract`); :class:`ContractVerdicts`
gives the same verdict with only the fields Silver's dedup needs:

* the line must be one RFC 8259 JSON value (:func:`lakehouse.contract.parse_line`), else
  ``malformed_json``;
* the compiled fast path (:mod:`lakehouse.contract_check`) accepts the common valid event; any line it
  does not accept goes through the contract's jsonschema validator, which names the first broken rule;
  the verdict is therefore the validator's own for every line;
* each contract field comes out typed when it is present, of its JSON type and not itself broken (null
  otherwise); ``event_id`` in lower case (a UUID is case-insensitive, so it is one event however it is
  written); timestamps as UTC instants;
* free-text fields (no format, pattern or enum) and quarantine messages have IP addresses replaced by
  their keyed hash (:mod:`lakehouse.privacy`);
* fields the contract does not name are kept in ``_rescued_data`` as ``{"_file_path": ..., "fields":
  {...}}``: namespaced, so no field can collide with the pipeline's own key, and with numbers exactly
  as written (IP addresses hashed there too);
* ``payload_hash`` fingerprints the contract fields except ``ingest_time`` (conflicting duplicates).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa

from lakehouse import contract, privacy
from lakehouse.contract_check import CompiledContract

VIOLATION = "_violation"
RESCUED = "_rescued_data"
PAYLOAD_HASH = "payload_hash"
EVENT_DATE = "event_date"
# When Silver's micro-batch read the line: silver.events' _processed_at, silver.quarantine's quarantined_at.
READ_AT = "_processed_at"
VIOLATION_TYPE = pa.struct([("reason", pa.string()), ("field", pa.string()), ("message", pa.string())])
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_ARROW_TYPES = {"string": pa.string(), "int": pa.int32(), "timestamp": _TIMESTAMP, "double": pa.float64(),
                "boolean": pa.bool_()}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MICROS_PER_DAY = 86_400_000_000
_FRACTION = re.compile(r"\d*").match
_NOTHING: frozenset[str] = frozenset()
_SCRUB_CACHE_SIZE = 100_000
# Free text already scrubbed, per HMAC key, for every reader in this process: Spark unpickles a new reader for
# each task, and a Python worker runs many tasks, so a reader's own memory would start empty every task.
_SCRUBBED: dict[bytes, dict[str, str]] = {}


def contract_columns(schema: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(field, Spark type name) of every contract field, in the schema's order."""
    schema = schema or contract.load_schema()
    return [(name, contract.spark_type_name(prop)) for name, prop in schema["properties"].items()]


def output_fields(schema: dict[str, Any] | None = None) -> list[pa.Field]:
    """The columns :class:`ContractReader` adds to each Bronze row."""
    return [
        pa.field(VIOLATION, VIOLATION_TYPE),
        *[pa.field(name, _ARROW_TYPES[spark_type]) for name, spark_type in contract_columns(schema)],
        pa.field(EVENT_DATE, pa.date32()),
        pa.field(RESCUED, pa.string()),
        pa.field(PAYLOAD_HASH, pa.string()),
        pa.field(READ_AT, _TIMESTAMP),
    ]


# What Silver's dedup branch reads of a line: its verdict and the fields the lateness rules, the watermark and
# the dedup key need.
VERDICT_FIELDS = [
    pa.field(VIOLATION, VIOLATION_TYPE),
    pa.field("event_id", pa.string()),
    pa.field("event_time", pa.timestamp("us", tz="UTC")),
    pa.field("ingest_time", pa.timestamp("us", tz="UTC")),
]


@lru_cache(maxsize=4096)
def _day_micros(day: str) -> int:
    return (date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL) * _MICROS_PER_DAY


def _timestamp_micros(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 UTC timestamp the contract accepted (fraction truncated).

    The contract allows only a zero offset, so the wall-clock time is the UTC time.
    """
    seconds = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
    micros = 0
    if len(text) > 20 and text[19] == ".":
        digits = _FRACTION(text, 20).group()
        micros = int((digits + "000000")[:6])
    return _day_micros(text[:10]) + seconds * 1_000_000 + micros


class _Number(str):
    """A JSON number's text, exactly as written (for rescued fields)."""


def _rescued_json(value: Any, key: bytes) -> str:
    """``value`` (from :func:`contract.parse_line` with numbers kept as text) as compact JSON, IPs hashed."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return json.dumps(privacy.scrub(value, key), ensure_ascii=False)
    if isinstance(value, dict):
        members = (f"{_rescued_json(name, key)}:{_rescued_json(item, key)}" for name, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_rescued_json(item, key) for item in value) + "]"
    return json.dumps(value)  # true, false, null


class ContractReader:
    """The ``mapInArrow`` function of Silver's parse: Bronze rows in, Bronze rows plus :func:`output_fields` out.

    ``hmac_key`` keys the hashes that replace IP addresses. Picklable: Spark ships it to its workers,
    where the compiled contract is built on first use.
    """

    def __init__(self, hmac_key: bytes, schema: dict[str, Any] | None = None) -> None:
        self.hmac_key = hmac_key
        self.schema = schema or contract.load_schema()
        self._fast = None

    def __getstate__(self) -> dict:
        return {"hmac_key": self.hmac_key, "schema": self.schema, "_fast": None}

    def _prepare(self) -> None:
        properties = self.schema["properties"]
        self._fast = CompiledContract(self.schema).fast_path or (lambda _event: False)
        self._columns = contract_columns(self.schema)
        self._known = frozenset(properties)
        # Free text: no format, pattern or enum constrains it, so an IP address may hide in it.
        self._free_text = frozenset(
            name for name, prop in properties.items()
            if contract.spark_type_name(prop) == "string" and not {"format", "pattern", "enum"} & set(prop)
        )
        self._payload = [name for name, _ in self._columns if name != "ingest_time"]
        self._scrubbed = _SCRUBBED.setdefault(self.hmac_key, {})
        self._convert = self._converters()

    def _scrub(self, text: str) -> str:
        """:func:`privacy.scrub`, remembered: user agents, referrers and pages repeat a lot."""
        done = self._scrubbed.get(text)
        if done is None:
            if len(self._scrubbed) >= _SCRUB_CACHE_SIZE:
                self._scrubbed.clear()
            done = self._scrubbed[text] = privacy.scrub(text, self.hmac_key)
        return done

    # -- one line ---------------------------------------------------------------------------------

    def verdict_of(self, line: str | None) -> tuple[tuple | None, Any, frozenset[str] | set[str]]:
        """(violation as (reason, field, message) or None, the line's JSON value or None, the broken fields)."""
        if self._fast is None:
            self._prepare()
        try:
            if line is None:
                raise contract.MalformedLineError("the line is null")
            event = contract.parse_line(line)
        except contract.MalformedLineError as exc:
            return (contract.MALFORMED_JSON, "$", str(exc)), None, _NOTHING
        if self._fast(event):
            return None, event, _NOTHING
        found = contract.violations(event, schema_path=None)
        if not found:
            return None, event, _NOTHING
        first = found[0]
        return (first.reason, first.field, privacy.scrub(first.message, self.hmac_key)), event, {v.field for v in found}

    def _converters(self) -> list[tuple[str, Any]]:
        """(field, how its JSON value becomes the column's value, or None to keep it)."""
        converters = []
        for name, spark_type in self._columns:
            if spark_type == "timestamp":
                convert = _timestamp_micros
            elif spark_type == "int":
                convert = int  # JSON Schema's integers include 1.0
            elif name == "event_id":
                convert = str.lower
            elif name in self._free_text:
                convert = self._scrub
            else:
                convert = None
            converters.append((name, convert))
        return converters

    def _rescued(self, line: str, unknown: list[str], file_path: str | None) -> str:
        exact = contract.parse_line(line, parse_float=_Number, parse_int=_Number)
        members = ",".join(
            f"{_rescued_json(name, self.hmac_key)}:{_rescued_json(exact[name], self.hmac_key)}" for name in unknown
        )
        return '{"_file_path":' + json.dumps(file_path, ensure_ascii=False) + ',"fields":{' + members + "}}"

    # -- Arrow batches ----------------------------------------------------------------------------

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield self.read_batch(batch)

    def read_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self._fast is None:
            self._prepare()
        lines = batch.column("value").to_pylist()
        paths = batch.column("_source_file").to_pylist() if "_source_file" in batch.schema.names else [None] * len(lines)
        verdicts: list[dict | None] = []
        events: list[dict[str, Any]] = []  # each line's JSON object ({} when it is not one)
        broken_fields: list[tuple[int, frozenset[str] | set[str]]] = []
        rescued: list[str | None] = []
        known = self._known
        for index, (line, path) in enumerate(zip(lines, paths, strict=True)):
            verdict, event, broken = self.verdict_of(line)
            verdicts.append(None if verdict is None else dict(zip(("reason", "field", "message"), verdict, strict=True)))
            if not isinstance(event, dict):
                events.append({})
                rescued.append(None)
                continue
            events.append(event)
            if broken:
                broken_fields.append((index, broken))
            if event.keys() <= known:
                rescued.append(None)
            else:
                rescued.append(self._rescued(line, [name for name in event if name not in known], path))
        columns = self._typed_columns(events, broken_fields)
        arrays = [
            pa.array(verdicts, VIOLATION_TYPE),
            *[pa.array(columns[name], _ARROW_TYPES[spark_type]) for name, spark_type in self._columns],
            pa.array(columns[EVENT_DATE], pa.date32()),
            pa.array(rescued, pa.string()),
            pa.array(self._payload_hashes(columns, verdicts), pa.string()),
            # Here, not current_timestamp() in Spark: Spark writes that time into the code it generates for the
            # query, so every micro-batch compiled its stages again.
            pa.repeat(pa.scalar(datetime.now(UTC), _TIMESTAMP), len(lines)),
        ]
        names = [f.name for f in output_fields(self.schema)]
        return pa.RecordBatch.from_arrays([*batch.columns, *arrays], names=[*batch.schema.names, *names])

    def _typed_columns(self, events: list[dict[str, Any]], broken_fields: list[tuple[int, Any]]) -> dict[str, list]:
        """Each contract field's column over the lines, field by field: present, not broken (so of its JSON type),
        converted; null otherwise."""
        columns: dict[str, list] = {}
        for name, convert in self._convert:
            values = [event.get(name) for event in events]
            for index, broken in broken_fields:
                if name in broken:
                    values[index] = None
            columns[name] = values if convert is None else [None if v is None else convert(v) for v in values]
        columns[EVENT_DATE] = [None if t is None else t // _MICROS_PER_DAY for t in columns["event_time"]]
        return columns

    def _payload_hashes(self, columns: dict[str, list], verdicts: list[dict | None]) -> list[str | None]:
        # Each field's type is fixed by the contract, so its text is unambiguous; \x00 marks a null.
        texts = [["\x00" if v is None else str(v) for v in columns[name]] for name in self._payload]
        return [
            None if verdict is not None else hashlib.sha256("\x1e".join(parts).encode()).hexdigest()
            for verdict, parts in zip(verdicts, zip(*texts, strict=True), strict=True)
        ]


class ContractVerdicts(ContractReader):
    """The ``mapInArrow`` function of Silver's dedup branch: lines (``value``) in, :data:`VERDICT_FIELDS` out.

    The same verdict as :class:`ContractReader` gives the line (the same checks, in the same order), and
    a valid line's ``event_id``, ``event_time`` and ``ingest_time`` as it types them; nothing else of the
    line is typed, scrubbed, hashed or sent back.
    """

    def read_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        verdicts: list[dict | None] = []
        ids: list[str | None] = []
        times: list[int | None] = []
        ingested: list[int | None] = []
        for line in batch.column("value").to_pylist():
            verdict, event, _ = self.verdict_of(line)
            if verdict is None:
                verdicts.append(None)
                ids.append(event["event_id"].lower())
                times.append(_timestamp_micros(event["event_time"]))
                ingested.append(_timestamp_micros(event["ingest_time"]))
            else:
                verdicts.append(dict(zip(("reason", "field", "message"), verdict, strict=True)))
                ids.append(None)
                times.append(None)
                ingested.append(None)
        arrays = [pa.array(values, field.type) for values, field in zip((verdicts, ids, times, ingested), VERDICT_FIELDS,
                                                                          strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(VERDICT_FIELDS))
