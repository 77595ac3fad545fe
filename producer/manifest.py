"""The run manifest: the ground truth of what a producer run landed, for pipelines to reconcile against.

Counts are taken from the lines of each batch *after* its PUT succeeded, so the manifest never
claims a line that did not land. Alongside the manifest go two gzip JSON-lines files: the truth file,
one line per valid unique event (its first arrival, exactly as sent), and the faults file, one
record per injected line (where it landed, its kind and expected quarantine reason). The identity
that pipeline tests rely on, and :meth:`Manifest.check` asserts::

    lines_sent == valid_unique_events + natural_duplicates + sum(expected_quarantine.values())
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from producer.stream import ACTIONS, INVALID, LATE, MALFORMED, NATURAL_DUPLICATE, SYNTHETIC_DUPLICATE, VALID, Line

log = logging.getLogger(__name__)

_KIND = attrgetter("kind")
_REASON = attrgetter("reason")
_EVENT = attrgetter("event")
_EVENT_TIME = itemgetter("event_time")
# The UTC date of an RFC 3339 timestamp is its first ten characters.
_DAY = itemgetter(slice(0, 10))
_ACTION = itemgetter("action")
_USER = itemgetter("user_id")
_SESSION = itemgetter("session_id")


def _open_gzip_text(path: Path) -> io.TextIOWrapper:
    """A gzip text file with a fixed header timestamp, so the same run gives byte-identical files."""
    return io.TextIOWrapper(gzip.GzipFile(path, "wb", compresslevel=1, mtime=0), encoding="utf-8")


class GroundTruth:
    """Accumulates exact counts over landed batches and streams the truth and faults files.

    The faults file records every injected line: object key, line number (from 1), kind, the
    quarantine reason it must get (if any), its event_id and, for invalid events, the variant.
    """

    def __init__(self, truth_path: Path, faults_path: Path | None = None) -> None:
        self.truth_path = truth_path
        self.faults_path = faults_path or truth_path.with_name(truth_path.name.replace(".truth.", ".faults."))
        self.objects: list[dict[str, Any]] = []
        self.kinds: Counter[str] = Counter()
        self.quarantine: Counter[str] = Counter()
        self.by_date_action: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ACTIONS, 0))
        self.users_by_date: dict[str, set[str]] = defaultdict(set)
        self.sessions_by_date: dict[str, set[str]] = defaultdict(set)
        self.lines_sent = 0
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = truth_path.with_name(truth_path.name + ".partial")
        # Level 1: the truth file is written at producer speed and read rarely.
        # Open for the whole run, closed by close().
        self._truth = _open_gzip_text(self._partial)
        self._faults_partial = self.faults_path.with_name(self.faults_path.name + ".partial")
        self._faults = _open_gzip_text(self._faults_partial)

    def record_object(self, key: str, lines: list[Line], size: int) -> None:
        """Count one object that landed (its truth lines are written by :meth:`write_truth`)."""
        self.objects.append({"key": key, "lines": len(lines), "bytes": size})
        self.lines_sent += len(lines)
        # map/filter with operator getters keep the per-line work in C: this runs for every line.
        self.kinds.update(map(_KIND, lines))
        self.quarantine.update(filter(None, map(_REASON, lines)))
        events = list(filter(None, map(_EVENT, lines)))
        if not events:
            return
        days = list(map(_DAY, map(_EVENT_TIME, events)))
        for (day, action), count in Counter(zip(days, map(_ACTION, events), strict=True)).items():
            self.by_date_action[day][action] += count
        if days[0] == days[-1] and days.count(days[0]) == len(days):
            self.users_by_date[days[0]].update(map(_USER, events))
            self.sessions_by_date[days[0]].update(map(_SESSION, events))
        else:
            for day, event in zip(days, events, strict=True):
                self.users_by_date[day].add(event["user_id"])
                self.sessions_by_date[day].add(event["session_id"])

    def write_truth(self, key: str, lines: list[Line]) -> None:
        """Append one landed object's first arrivals to the truth file and its faults to the faults file."""
        texts = [line.text for line in lines if line.event is not None]
        if texts:
            self._truth.write("\n".join(texts) + "\n")
        injected = [
            json.dumps(
                {
                    "key": key,
                    "line": number,
                    "kind": line.kind,
                    "reason": line.reason,
                    "event_id": line.event_id if line.event is None else line.event["event_id"],
                    "variant": line.variant,
                }
            )
            for number, line in enumerate(lines, start=1)
            if line.kind != VALID
        ]
        if injected:
            self._faults.write("\n".join(injected) + "\n")

    def close(self) -> None:
        if not self._truth.closed:
            self._truth.close()
            os.replace(self._partial, self.truth_path)
        if not self._faults.closed:
            self._faults.close()
            os.replace(self._faults_partial, self.faults_path)

    def counts(self) -> dict[str, Any]:
        kinds = self.kinds
        return {
            "lines_sent": self.lines_sent,
            "objects": len(self.objects),
            "valid_unique_events": kinds[VALID] + kinds[LATE],
            "natural_duplicates": kinds[NATURAL_DUPLICATE],
            "synthetic_duplicates": kinds[SYNTHETIC_DUPLICATE],
            "late_events": kinds[LATE],
            "malformed_lines": kinds[MALFORMED],
            "invalid_events": kinds[INVALID],
            "expected_quarantine": dict(sorted(self.quarantine.items())),
        }


@dataclass
class Manifest:
    """One run's manifest; :meth:`to_dict` is the JSON written locally and to S3."""

    run_id: str
    created_at: str
    parameters: dict[str, Any]
    landing: dict[str, str]
    objects: list[dict[str, Any]]
    counts: dict[str, Any]
    by_date_action: dict[str, dict[str, int]]
    distinct_users_by_date: dict[str, int]
    distinct_sessions_by_date: dict[str, int]
    truth_file: str
    faults_file: str = ""
    status: str = "complete"
    finished_at: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    manifest_uri: str = ""
    undelivered: list[dict[str, Any]] = field(default_factory=list)
    # Where the manifest was written on this machine (not part of the JSON).
    local_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "parameters": self.parameters,
            "landing": self.landing,
            "objects": self.objects,
            "counts": self.counts,
            "by_date_action": self.by_date_action,
            "distinct_users_by_date": self.distinct_users_by_date,
            "distinct_sessions_by_date": self.distinct_sessions_by_date,
            "truth_file": self.truth_file,
            "faults_file": self.faults_file,
            "status": self.status,
            "finished_at": self.finished_at,
            "stats": self.stats,
            "manifest_uri": self.manifest_uri,
            "undelivered": self.undelivered,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def check(self) -> None:
        """Raise ``AssertionError`` if the counts break the manifest's own identities."""
        check_counts(self.to_dict())

    @property
    def truth_path(self) -> Path:
        return Path(self.local_path).parent / self.truth_file

    def truth_events(self) -> Iterator[dict[str, Any]]:
        """The valid unique events of the run, as sent."""
        return read_truth(self.truth_path)

    @property
    def faults_path(self) -> Path:
        return Path(self.local_path).parent / self.faults_file


def check_counts(manifest: dict[str, Any]) -> None:
    """The identities a manifest dict must satisfy; see the module docstring."""
    counts = manifest["counts"]
    quarantine = counts["expected_quarantine"]
    per_day = sum(sum(actions.values()) for actions in manifest["by_date_action"].values())
    identities = {
        "lines_sent == valid_unique_events + natural_duplicates + sum(expected_quarantine)": counts["lines_sent"]
        == counts["valid_unique_events"] + counts["natural_duplicates"] + sum(quarantine.values()),
        "lines_sent == sum of object lines": counts["lines_sent"] == sum(o["lines"] for o in manifest["objects"]),
        "objects == len(objects)": counts["objects"] == len(manifest["objects"]),
        "conflicting_duplicate == synthetic_duplicates": quarantine.get("conflicting_duplicate", 0)
        == counts["synthetic_duplicates"],
        "malformed_json == malformed_lines": quarantine.get("malformed_json", 0) == counts["malformed_lines"],
        "by_date_action adds up to valid_unique_events": per_day == counts["valid_unique_events"],
    }
    broken = [name for name, holds in identities.items() if not holds]
    if broken:
        raise AssertionError(f"manifest {manifest.get('run_id')} breaks {broken}: {counts}")


def build_manifest(
    *,
    run_id: str,
    created_at: str,
    parameters: dict[str, Any],
    bucket: str,
    prefix: str,
    truth: GroundTruth,
    local_path: Path,
) -> Manifest:
    days = sorted(truth.by_date_action)
    return Manifest(
        run_id=run_id,
        created_at=created_at,
        parameters=parameters,
        landing={"bucket": bucket, "prefix": prefix, "uri": f"s3://{bucket}/{prefix}"},
        objects=list(truth.objects),
        counts=truth.counts(),
        by_date_action={d: dict(truth.by_date_action[d]) for d in days},
        distinct_users_by_date={d: len(truth.users_by_date[d]) for d in days},
        distinct_sessions_by_date={d: len(truth.sessions_by_date[d]) for d in days},
        truth_file=os.path.relpath(truth.truth_path, local_path.parent),
        faults_file=os.path.relpath(truth.faults_path, local_path.parent),
        local_path=str(local_path),
    )


def write_local(manifest: Manifest) -> Path:
    path = Path(manifest.local_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(manifest.to_json())
    os.replace(partial, path)
    return path


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A manifest written by a run, as a dict (the JSON keys)."""
    return json.loads(Path(path).read_text())


def read_truth(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a gzip JSON-lines file of a run: valid unique events (truth file) or injected faults."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for text in handle:
            if text.strip():
                yield json.loads(text)
