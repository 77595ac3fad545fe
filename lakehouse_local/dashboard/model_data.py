"""What the "Sessions and users" page shows, from the Gold model's tables, reduced to plain values.

Pure functions over Arrow tables (one per chart), and :func:`load_users_snapshot`, the only I/O: it reads
the model's tables with delta-rs, only the columns the page needs. A table that cannot be read leaves its
charts empty, as on the main page.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse import catalog
from lakehouse_local.dashboard.data import read_table

COLUMNS: dict[str, list[str]] = {
    catalog.SESSIONS.name: ["session_date", "duration_s", "events", "converted", "entry_page"],
    catalog.FACT_EVENTS.name: ["event_date", "user_id"],
    catalog.CUSTOMER_FEATURES.name: ["user_id", "first_seen"],
    catalog.DIM_USER.name: ["user_id"],
    catalog.DIM_PAGE.name: ["page", "page_type"],
}
# Session length bands (upper bound in seconds, label), as databricks/sql/session_length_distribution.sql has them.
LENGTH_BANDS = (
    (0, "single event"), (30, "under 30 s"), (60, "30 s - 1 min"), (300, "1 - 5 min"), (900, "5 - 15 min"),
    (1800, "15 - 30 min"), (3600, "30 - 60 min"), (None, "1 h or more"),
)


@dataclass
class UsersSnapshot:
    """Everything the "Sessions and users" page shows, read at ``generated_at``."""

    lakehouse: str
    generated_at: datetime
    headline: dict[str, Any] = field(default_factory=dict)
    sessions_per_day: list[dict[str, Any]] = field(default_factory=list)
    users_per_day: list[dict[str, Any]] = field(default_factory=list)
    length_bands: list[dict[str, Any]] = field(default_factory=list)
    entry_page_types: list[dict[str, Any]] = field(default_factory=list)
    versions_per_user: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def length_band(seconds: float) -> str:
    """The band of a session lasting ``seconds`` (0: a single event, or events at one instant)."""
    if seconds == 0:
        return LENGTH_BANDS[0][1]
    return next(label for limit, label in LENGTH_BANDS[1:] if limit is None or seconds < limit)


def sessions_per_day(sessions: pa.Table) -> list[dict[str, Any]]:
    """Per day a session started on, oldest first: sessions, converted ones, conversion and mean length."""
    days: dict[date, list[dict]] = defaultdict(list)
    for row in sessions.select(["session_date", "duration_s", "converted"]).to_pylist():
        days[row["session_date"]].append(row)
    return [
        {
            "day": day,
            "sessions": len(rows),
            "converted": sum(bool(r["converted"]) for r in rows),
            "conversion_rate": sum(bool(r["converted"]) for r in rows) / len(rows),
            "avg_duration_s": sum(r["duration_s"] for r in rows) / len(rows),
        }
        for day, rows in sorted(days.items())
    ]


def users_per_day(fact: pa.Table, features: pa.Table) -> list[dict[str, Any]]:
    """Per day, oldest first: active users, new ones (their first event that day) and returning ones."""
    first_day = {r["user_id"]: r["first_seen"].date() for r in features.to_pylist()}
    active: dict[date, set[str]] = defaultdict(set)
    for row in fact.to_pylist():
        active[row["event_date"]].add(row["user_id"])
    result = []
    for day, users in sorted(active.items()):
        new = sum(1 for u in users if first_day.get(u) == day)
        result.append({"day": day, "active": len(users), "new": new, "returning": len(users) - new})
    return result


def length_bands(sessions: pa.Table) -> list[dict[str, Any]]:
    """Sessions per length band, in band order, with their share."""
    counted = Counter(length_band(s) for s in sessions.column("duration_s").to_pylist())
    total = sum(counted.values())
    return [{"band": label, "sessions": counted[label], "share": counted[label] / total if total else 0.0}
            for _, label in LENGTH_BANDS]


def entry_page_types(sessions: pa.Table, pages: pa.Table) -> list[dict[str, Any]]:
    """Sessions and converted sessions by the page type of their entry page, most sessions first."""
    kind = dict(zip(pages.column("page").to_pylist(), pages.column("page_type").to_pylist(), strict=True))
    counted: Counter = Counter()
    converted: Counter = Counter()
    for row in sessions.select(["entry_page", "converted"]).to_pylist():
        page_type = kind.get(row["entry_page"], "other")
        counted[page_type] += 1
        converted[page_type] += bool(row["converted"])
    return [{"page_type": t, "sessions": n, "converted": converted[t]}
            for t, n in sorted(counted.items(), key=lambda item: (-item[1], item[0]))]


def versions_per_user(dim_user: pa.Table) -> list[dict[str, Any]]:
    """How many users have 1, 2, 3 or 4+ versions of their attributes in gold.dim_user."""
    per_user = Counter(dim_user.column("user_id").to_pylist())
    bands = Counter(str(n) if n < 4 else "4+" for n in per_user.values())
    return [{"versions": label, "users": bands[label]} for label in ("1", "2", "3", "4+")]


def headline(sessions: pa.Table | None, features: pa.Table | None, dim_user: pa.Table | None,
             per_day: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, Any] = dict.fromkeys(
        ("sessions", "avg_duration_s", "conversion_rate", "users", "latest_day", "new_users", "returning_users",
         "users_with_history")
    )
    if sessions is not None and sessions.num_rows:
        durations = sessions.column("duration_s").to_pylist()
        converted = sum(bool(c) for c in sessions.column("converted").to_pylist())
        figures.update(sessions=sessions.num_rows, avg_duration_s=sum(durations) / len(durations),
                       conversion_rate=converted / sessions.num_rows)
    if features is not None:
        figures["users"] = features.num_rows
    if dim_user is not None:
        figures["users_with_history"] = sum(1 for n in Counter(dim_user.column("user_id").to_pylist()).values() if n > 1)
    if per_day:
        latest = per_day[-1]
        figures.update(latest_day=latest["day"], new_users=latest["new"], returning_users=latest["returning"])
    return figures


def load_users_snapshot(lakehouse: str | Path, *, now: datetime) -> UsersSnapshot:
    """Read the model's tables under ``lakehouse`` and reduce them for the page."""
    unavailable: dict[str, str] = {}
    tables = {name: read_table(lakehouse, name, unavailable, columns=columns) for name, columns in COLUMNS.items()}
    sessions = tables[catalog.SESSIONS.name]
    fact = tables[catalog.FACT_EVENTS.name]
    features = tables[catalog.CUSTOMER_FEATURES.name]
    dim_user = tables[catalog.DIM_USER.name]
    pages = tables[catalog.DIM_PAGE.name]
    per_day = users_per_day(fact, features) if fact is not None and features is not None else []
    return UsersSnapshot(
        lakehouse=str(Path(lakehouse).resolve()),
        generated_at=now,
        headline=headline(sessions, features, dim_user, per_day),
        sessions_per_day=sessions_per_day(sessions) if sessions is not None else [],
        users_per_day=per_day,
        length_bands=length_bands(sessions) if sessions is not None and sessions.num_rows else [],
        entry_page_types=entry_page_types(sessions, pages) if sessions is not None and pages is not None else [],
        versions_per_user=versions_per_user(dim_user) if dim_user is not None and dim_user.num_rows else [],
        unavailable=unavailable,
    )
