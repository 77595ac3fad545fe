"""Sessions folded batch by batch equal the session of all its events at once, in any arrival order."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from lakehouse import catalog
from lakehouse.transforms import sessions

COLUMNS = ("event_id string, event_time timestamp, user_id string, session_id string, action string, page string, "
           "device_type string, country string, source string")
EVENTS = [
    ("e3", datetime(2026, 11, 20, 10, 5), "u1", "s1", "add_to_cart", "/products/a", "mobile", "DE", "email"),
    ("e1", datetime(2026, 11, 20, 10, 0), "u1", "s1", "view", "/", "mobile", "DE", "organic"),
    ("e4", datetime(2026, 11, 20, 10, 9), "u1", "s1", "purchase", "/checkout", "mobile", "DE", "email"),
    ("e2", datetime(2026, 11, 20, 10, 0), "u1", "s1", "click", "/products/a", "mobile", "DE", "social"),
    ("f1", datetime(2026, 11, 21, 8, 0), "u2", "s2", "view", "/search", None, None, None),
]


def _fold(spark, batches: list[list[tuple]]) -> dict:
    stored = spark.createDataFrame([], catalog.SESSIONS.struct())
    for batch_id, rows in enumerate(batches):
        partials = sessions.session_partials(spark.createDataFrame(rows, COLUMNS))
        updated = sessions.updated_sessions(partials, stored, batch_id)
        kept = stored.join(updated.select("session_id"), "session_id", "left_anti")
        stored = spark.createDataFrame(kept.unionByName(updated).collect(), catalog.SESSIONS.struct())
    return {r.session_id: r.asDict() for r in stored.collect()}


def test_a_session_from_one_batch(spark):
    s1 = _fold(spark, [EVENTS])["s1"]
    assert {k: s1[k] for k in ("user_id", "session_start", "session_end", "session_date", "duration_s", "events")} == {
        "user_id": "u1", "session_start": datetime(2026, 11, 20, 10, 0), "session_end": datetime(2026, 11, 20, 10, 9),
        "session_date": date(2026, 11, 20), "duration_s": 540.0, "events": 4,
    }
    assert (s1["views"], s1["clicks"], s1["add_to_carts"], s1["purchases"], s1["converted"]) == (1, 1, 1, 1, True)
    # Two events at 10:00: the entry is the one with the smaller event_id.
    assert (s1["entry_page"], s1["source"], s1["_entry_event_id"], s1["exit_page"]) == ("/", "organic", "e1", "/checkout")
    assert s1["_end_date"] == date(2026, 11, 20)


@pytest.mark.parametrize("order", [[4, 3, 2, 1, 0], [2, 0, 4, 1, 3]])
def test_events_arriving_one_batch_at_a_time_in_any_order_give_the_same_sessions(spark, order):
    at_once = _fold(spark, [EVENTS])
    one_by_one = _fold(spark, [[EVENTS[i]] for i in order])
    for rows in (at_once, one_by_one):
        for row in rows.values():
            row.pop("_batch_id")
    assert one_by_one == at_once


def test_a_replayed_batch_adds_nothing_to_the_rows_that_carry_it(spark):
    partials = sessions.session_partials(spark.createDataFrame(EVENTS[:2], COLUMNS))
    first = sessions.updated_sessions(partials, spark.createDataFrame([], catalog.SESSIONS.struct()), 7)
    stored = spark.createDataFrame(first.collect(), catalog.SESSIONS.struct())
    assert sessions.updated_sessions(partials, stored, 7).count() == 0
    assert sessions.updated_sessions(partials, stored, 8).first().events == 4  # another batch adds
