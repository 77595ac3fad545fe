"""The Gold model's tables computed independently, in plain Python, from events as sent (the producer's truth
file, or hand-written events): what every table must hold, whatever order the events arrived in.

Each function takes the events (dicts with the contract's fields, timestamps as RFC 3339 text or datetimes)
and returns the table's rows as tuples of its public columns, sorted, ready to compare with what Spark wrote
(:func:`table_rows`). Nothing here shares code with ``lakehouse``: the rules are written again from the README.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from lakehouse import catalog

TRACKED = ("device_type", "country", "source")
ACTION_COLUMNS = {"view": "views", "click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}
PAGE_TYPES = {
    "": "home", "home": "home", "index.html": "home", "index.htm": "home",
    "category": "category", "categories": "category", "c": "category", "collections": "category",
    "product": "product", "products": "product", "p": "product", "item": "product",
    "cart": "cart", "basket": "cart", "bag": "cart",
    "checkout": "checkout",
    "search": "search",
}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _time(value) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def events(truth: list[dict]) -> list[dict]:
    """The events with ``event_time`` as a naive UTC datetime and every optional tracked field present."""
    return [{**e, **{f: e.get(f) for f in TRACKED}, "event_time": _time(e["event_time"])} for e in truth]


def _by(rows: list[dict], key: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return {k: sorted(v, key=lambda e: (e["event_time"], e["event_id"])) for k, v in grouped.items()}


def page_type(page: str) -> str:
    path = page.split("?", 1)[0].split("#", 1)[0].lower()
    return PAGE_TYPES.get(path.lstrip("/").split("/", 1)[0], "other")


def fact_events(evs: list[dict]) -> list[tuple]:
    day = lambda e: e["event_time"].date()  # noqa: E731
    return sorted(
        (e["event_id"], e["event_time"], day(e), int(day(e).strftime("%Y%m%d")), e["user_id"], e["session_id"],
         e["page"], e["action"], e["device_type"], e["country"], e["source"])
        for e in evs
    )


def sessions(evs: list[dict]) -> list[tuple]:
    rows = []
    for session_id, es in _by(evs, "session_id").items():
        first, last = es[0], es[-1]
        counts = Counter(e["action"] for e in es)
        rows.append((
            session_id, first["user_id"], first["event_time"], last["event_time"], first["event_time"].date(),
            (last["event_time"] - first["event_time"]).total_seconds(), len(es),
            *[counts[a] for a in ACTION_COLUMNS], first["page"], last["page"], counts["purchase"] > 0,
            first["device_type"], first["country"], first["source"],
        ))
    return sorted(rows)


def dim_user(evs: list[dict]) -> list[tuple]:
    """Versions: spans over which the attributes of the user's latest event (by time, then event_id) stay the same."""
    rows = []
    for user_id, es in _by(evs, "user_id").items():
        at_instant: dict[datetime, tuple] = {}
        for e in es:  # in (time, event_id) order: the last one at an instant wins
            at_instant[e["event_time"]] = tuple(e[f] for f in TRACKED)
        starts: list[tuple[datetime, tuple]] = []
        for time, attrs in sorted(at_instant.items()):
            if not starts or starts[-1][1] != attrs:
                starts.append((time, attrs))
        for i, (time, attrs) in enumerate(starts):
            valid_to = starts[i + 1][0] if i + 1 < len(starts) else None
            key = f"{user_id}@{time:%Y-%m-%dT%H:%M:%S.%f}"
            rows.append((key, user_id, *attrs, time, valid_to, valid_to is None))
    return sorted(rows)


def dim_page(evs: list[dict]) -> list[tuple]:
    return sorted(
        (page, page_type(page), es[0]["event_time"], max(e["event_time"] for e in es))
        for page, es in _by(evs, "page").items()
    )


def dim_date(evs: list[dict]) -> list[tuple]:
    rows = []
    for year in sorted({e["event_time"].year for e in evs}):
        day = date(year, 1, 1)
        while day.year == year:
            iso = day.isocalendar()
            rows.append((
                int(day.strftime("%Y%m%d")), day, year, (day.month - 1) // 3 + 1, day.month, MONTHS[day.month - 1],
                iso.week, day.day, iso.weekday, DAYS[iso.weekday - 1], iso.weekday >= 6,
            ))
            day += timedelta(days=1)
    return rows


def customer_features(evs: list[dict]) -> list[tuple]:
    rows = []
    for user_id, es in _by(evs, "user_id").items():
        last_seen = es[-1]["event_time"]
        purchases = [e["event_time"] for e in es if e["action"] == "purchase"]
        last_purchase = max(purchases) if purchases else None
        window = [e for e in es if e["event_time"] > last_seen - timedelta(days=30)]
        by_session = _by(window, "session_id")
        recent = {s for s, ss in by_session.items() if ss[-1]["event_time"] > last_seen - timedelta(days=7)}
        converted = {s for s, ss in by_session.items() if any(e["action"] == "purchase" for e in ss)}
        durations = [(ss[-1]["event_time"] - ss[0]["event_time"]).total_seconds() for ss in by_session.values()]
        devices = Counter(e["device_type"] for e in window if e["device_type"] is not None)
        favourite = min(devices, key=lambda d: (-devices[d], d)) if devices else None
        rows.append((
            user_id, es[0]["event_time"], last_seen, last_purchase,
            (last_seen - last_purchase) // timedelta(days=1) if last_purchase else None,
            len(recent), len(by_session), len(window), sum(e["action"] == "view" for e in window),
            sum(e["action"] == "purchase" for e in window), len(converted) / len(by_session),
            pytest.approx(sum(durations) / len(durations), abs=1e-6), len({e["page"] for e in window}), favourite,
        ))
    return sorted(rows, key=lambda r: r[0])


EXPECTED = {
    "gold.fact_events": fact_events,
    "gold.sessions": sessions,
    "gold.dim_user": dim_user,
    "gold.dim_page": dim_page,
    "gold.dim_date": dim_date,
    "gold.customer_features": customer_features,
}


def compared_columns(name: str) -> list[str]:
    """The public columns a table is compared on (``fact_events.is_late`` depends on arrival: checked apart)."""
    return [c for c in catalog.spec(name).public_columns if (name, c) != ("gold.fact_events", "is_late")]


def table_rows(lakehouse, name: str) -> list[tuple]:
    """The table's rows as sorted tuples of :func:`compared_columns`."""
    return sorted(tuple(r) for r in lakehouse.read(name).select(*compared_columns(name)).collect())


def expected_model(truth: list[dict]) -> dict[str, list[tuple]]:
    evs = events(truth)
    return {name: compute(evs) for name, compute in EXPECTED.items()}
