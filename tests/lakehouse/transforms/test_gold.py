"""Each Gold metric on a small hand-made Silver frame, compared exactly with chispa."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from lakehouse.transforms import gold

D1, D2 = date(2026, 11, 20), date(2026, 11, 21)


@pytest.fixture
def silver_rows(spark):
    rows = [
        # event_time, user, session, action, page, device, country, source
        (datetime(2026, 11, 20, 10, 0, 5), "u1", "s1", "view", "/p1", "mobile", "DE", "organic"),
        (datetime(2026, 11, 20, 10, 0, 40), "u1", "s1", "click", "/p1", "mobile", "DE", "organic"),
        (datetime(2026, 11, 20, 10, 1, 0), "u1", "s1", "add_to_cart", "/cart", "mobile", "DE", "organic"),
        (datetime(2026, 11, 20, 10, 2, 0), "u1", "s1", "purchase", "/checkout", "mobile", "DE", "organic"),
        (datetime(2026, 11, 20, 11, 0, 0), "u2", "s2", "view", "/p1", None, "US", None),
        (datetime(2026, 11, 20, 11, 0, 30), "u2", "s2", "view", "/p2", None, "US", None),
        (datetime(2026, 11, 21, 9, 0, 0), "u1", "s3", "view", "/p2", "desktop", None, "email"),
    ]
    df = spark.createDataFrame(
        rows,
        "event_time timestamp, user_id string, session_id string, action string, page string, "
        "device_type string, country string, source string",
    )
    return df.selectExpr("*", "to_date(event_time) AS event_date")


def _sorted(df, *cols):
    return df.orderBy(*cols)


def test_daily_kpis(spark, silver_rows):
    actual = _sorted(gold.daily_kpis(silver_rows), "event_date")
    expected = spark.createDataFrame(
        [
            (D1, 6, 2, 2, 3, 1, 1, 1, 1, 0.5),
            (D2, 1, 1, 1, 1, 0, 0, 0, 0, 0.0),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_conversion_rate_is_zero_without_sessions(spark):
    empty = spark.createDataFrame([], "event_date date, user_id string, session_id string, action string")
    assert gold.daily_kpis(empty).count() == 0


def test_events_per_minute(spark, silver_rows):
    actual = _sorted(gold.events_per_minute(silver_rows), "window_start", "action")
    expected = spark.createDataFrame(
        [
            (datetime(2026, 11, 20, 10, 0), datetime(2026, 11, 20, 10, 1), "click", 1, D1),
            (datetime(2026, 11, 20, 10, 0), datetime(2026, 11, 20, 10, 1), "view", 1, D1),
            (datetime(2026, 11, 20, 10, 1), datetime(2026, 11, 20, 10, 2), "add_to_cart", 1, D1),
            (datetime(2026, 11, 20, 10, 2), datetime(2026, 11, 20, 10, 3), "purchase", 1, D1),
            (datetime(2026, 11, 20, 11, 0), datetime(2026, 11, 20, 11, 1), "view", 2, D1),
            (datetime(2026, 11, 21, 9, 0), datetime(2026, 11, 21, 9, 1), "view", 1, D2),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_funnel_daily_reports_every_step_including_zero(spark, silver_rows):
    actual = _sorted(gold.funnel_daily(silver_rows), "event_date", "step_order")
    expected = spark.createDataFrame(
        [
            (D1, "view", 1, 2),
            (D1, "click", 2, 1),
            (D1, "add_to_cart", 3, 1),
            (D1, "purchase", 4, 1),
            (D2, "view", 1, 1),
            (D2, "click", 2, 0),
            (D2, "add_to_cart", 3, 0),
            (D2, "purchase", 4, 0),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_traffic_daily_reports_missing_dimensions_as_unknown(spark, silver_rows):
    actual = _sorted(gold.traffic_daily(silver_rows), "event_date", "device_type")
    expected = spark.createDataFrame(
        [
            (D1, "mobile", "DE", "organic", 4, 1),
            (D1, "unknown", "US", "unknown", 2, 1),
            (D2, "desktop", "unknown", "email", 1, 1),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_top_pages_daily_counts_views_only(spark, silver_rows):
    actual = _sorted(gold.top_pages_daily(silver_rows), "event_date", "page")
    expected = spark.createDataFrame(
        [(D1, "/p1", 2, 2), (D1, "/p2", 1, 1), (D2, "/p2", 1, 1)],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
