"""Users' history (SCD Type 2) and customer features on small hand-made frames."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from chispa import assert_df_equality

from lakehouse import catalog
from lakehouse.tables import DELETE
from lakehouse.transforms import users

TIMELINE = "user_id string, event_time timestamp, event_id string, device_type string, country string, source string"
T = [datetime(2026, 11, 20, 10) + timedelta(hours=h) for h in range(6)]


def _versions(spark, rows):
    out = users.user_versions(spark.createDataFrame(rows, TIMELINE))
    return sorted(((r.user_id, r.source, r.valid_from, r.valid_to, r.is_current) for r in out.collect()), key=str)


def test_a_user_whose_attributes_never_change_has_one_version(spark):
    rows = [("u1", t, f"e{i}", "mobile", "DE", "organic") for i, t in enumerate(T)]
    assert _versions(spark, rows) == [("u1", "organic", T[0], None, True)]


def test_a_version_starts_where_the_attributes_change_and_a_null_is_a_value(spark):
    rows = [
        ("u1", T[0], "a", "mobile", "DE", "organic"),
        ("u1", T[1], "b", "mobile", "DE", None),
        ("u1", T[2], "c", "mobile", "DE", None),
        ("u1", T[3], "d", "mobile", "DE", "organic"),
        ("u2", T[1], "e", None, None, None),
    ]
    assert _versions(spark, rows) == sorted([
        ("u1", "organic", T[0], T[1], False),
        ("u1", None, T[1], T[3], False),
        ("u1", "organic", T[3], None, True),
        ("u2", None, T[1], None, True),
    ], key=str)


def test_of_events_at_one_instant_the_greatest_event_id_counts(spark):
    rows = [("u1", T[0], "b", "mobile", "DE", "email"), ("u1", T[0], "a", "mobile", "DE", "organic"),
            ("u1", T[1], "c", "mobile", "DE", "email")]
    assert _versions(spark, rows) == [("u1", "email", T[0], None, True)]


def test_the_version_key_is_the_user_and_the_start(spark):
    row = users.user_versions(spark.createDataFrame([("u-7", T[0], "a", None, None, None)], TIMELINE)).first()
    assert (row.user_key, row._valid_to_date) == ("u-7@2026-11-20T10:00:00.000000", date(9999, 12, 31))


def _changes(spark, stored_events, new_events):
    """dim_user_changes for new events, over the versions the stored events gave."""
    stored = spark.createDataFrame(users.user_versions(spark.createDataFrame(stored_events, TIMELINE)).collect(),
                                   catalog.DIM_USER.struct())
    history = spark.createDataFrame(stored_events + new_events, TIMELINE)
    since = users.user_since(spark.createDataFrame(new_events, TIMELINE))
    return sorted(
        (r[DELETE], r.user_key, r.source, r.valid_to)
        for r in users.dim_user_changes(stored, history, since).collect()
    )


def test_a_late_event_inside_a_version_splits_it_in_three(spark):
    stored = [("u1", T[0], "a", "m", "DE", "organic"), ("u1", T[2], "b", "m", "DE", "organic"),
              ("u1", T[4], "c", "m", "DE", "organic")]
    late = [("u1", T[1], "x", "m", "DE", "email")]
    assert _changes(spark, stored, late) == [
        (False, "u1@2026-11-20T10:00:00.000000", "organic", T[1]),  # the version in force is closed
        (False, "u1@2026-11-20T11:00:00.000000", "email", T[2]),  # the late event's own version
        (False, "u1@2026-11-20T12:00:00.000000", "organic", None),  # the next event resumes
    ]


def test_a_late_event_that_changes_nothing_writes_nothing_and_one_that_ends_a_change_deletes_a_version(spark):
    stored = [("u1", T[0], "a", "m", "DE", "organic"), ("u1", T[2], "b", "m", "DE", "email")]
    assert _changes(spark, stored, [("u1", T[1], "x", "m", "DE", "organic")]) == []
    # An event at T3 with the first source, then a late one at T1 with the second: the email version now
    # starts at T1, and the T2 version is gone.
    stored = stored + [("u1", T[3], "c", "m", "DE", "organic")]
    assert _changes(spark, stored, [("u1", T[1], "y", "m", "DE", "email")]) == [
        (False, "u1@2026-11-20T10:00:00.000000", "organic", T[1]),
        (False, "u1@2026-11-20T11:00:00.000000", "email", T[3]),
        (True, "u1@2026-11-20T12:00:00.000000", None, None),
    ]


HISTORY = "user_id string, event_time timestamp, event_id string, session_id string, page string, action string, " \
          "device_type string, country string, source string"


def test_customer_features_as_of_the_latest_event(spark):
    now = datetime(2026, 11, 20, 12)
    history = spark.createDataFrame(
        [
            ("u1", now - timedelta(days=40), "a", "s0", "/", "purchase", "desktop", "DE", None),  # outside 30 days
            ("u1", now - timedelta(days=10), "b", "s1", "/", "view", "tablet", "DE", None),
            ("u1", now - timedelta(days=10, minutes=-2), "c", "s1", "/cart", "purchase", "tablet", "DE", None),
            ("u1", now - timedelta(days=1), "d", "s2", "/", "view", "mobile", "DE", None),
            ("u1", now, "e", "s2", "/p", "view", "mobile", "DE", None),
            ("u1", now - timedelta(hours=1), "f", "s3", "/p", "view", None, "DE", None),
        ],
        HISTORY,
    )
    stored = spark.createDataFrame([("u1", now - timedelta(days=90), None)],
                                   "user_id string, first_seen timestamp, last_purchase_at timestamp")
    actual = users.customer_features(history, stored)
    expected = spark.createDataFrame(
        [("u1", now - timedelta(days=90), now, now - timedelta(days=9, hours=23, minutes=58), 9, 2, 3, 5, 4, 1,
          1 / 3, (120.0 + 86400.0 + 0.0) / 3, 3, "mobile")],
        catalog.CUSTOMER_FEATURES.struct(),
    )
    assert_df_equality(actual, expected, ignore_nullable=True, ignore_metadata=True)
