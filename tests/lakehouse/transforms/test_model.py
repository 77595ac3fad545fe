"""The star schema's transforms on small hand-made frames: fact rows, page types, pages, the calendar."""

from __future__ import annotations

from datetime import date, datetime

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.transforms import model

T1, T2, T3 = datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11), datetime(2026, 11, 21, 9)


PAGES = {
    "/": "home", "": "home", "/?utm=x": "home", "/Home": "home", "/index.html": "home",
    "/category/shoes": "category", "/collections/sale/": "category", "/c/42": "category",
    "/products/sku-1001": "product", "/p/7?ref=mail#top": "product", "//product/x": "product",
    "/cart": "cart", "/basket/": "cart", "/checkout": "checkout", "/checkout/payment": "checkout",
    "/search?q=boots": "search", "/searching": "other", "/about": "other", "/café/😀": "other",
}


def test_page_type_follows_the_first_path_segment(spark):
    pages = spark.createDataFrame([(p,) for p in PAGES], "page string")
    assert {r.page: r.kind for r in pages.select("page", model.page_type(F.col("page")).alias("kind")).collect()} == PAGES


def test_fact_rows_carry_the_natural_keys_and_the_date_key(spark):
    silver = spark.createDataFrame(
        [("e1", T1, date(2026, 11, 20), "u1", "s1", "/", "view", "mobile", "DE", "organic", False, "ignored")],
        "event_id string, event_time timestamp, event_date date, user_id string, session_id string, page string, "
        "action string, device_type string, country string, source string, is_late boolean, payload_hash string",
    )
    fact = model.fact_events(silver)
    assert fact.columns == [*model.FACT_COLUMNS, "date_key"]
    assert fact.first().date_key == 20261120


def test_page_rows_are_new_pages_and_pages_whose_first_or_last_seen_moves(spark):
    silver = spark.createDataFrame([("/", T2), ("/", T3), ("/cart", T2), ("/new", T1)], "page string, event_time timestamp")
    existing = spark.createDataFrame(
        [("/", T1, T2), ("/cart", T1, T3)], "page string, first_seen timestamp, last_seen timestamp"
    )
    actual = model.page_rows(silver, existing).orderBy("page")
    expected = spark.createDataFrame(
        [("/", "home", T1, T3), ("/new", "other", T1, T1)],  # "/cart" stays as it was: nothing to write
        "page string, page_type string, first_seen timestamp, last_seen timestamp",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_the_calendar_holds_every_day_of_each_year_with_iso_weeks(spark):
    days = {r.date: r for r in model.calendar(spark, [2024, 2026]).collect()}
    assert len(days) == 366 + 365
    leap = days[date(2024, 2, 29)]
    assert (leap.date_key, leap.quarter, leap.month_name, leap.day_name, leap.day_of_week, leap.is_weekend) == (
        20240229, 1, "February", "Thursday", 4, False
    )
    sunday = days[date(2026, 11, 22)]
    assert (sunday.week_of_year, sunday.day_of_week, sunday.day_name, sunday.is_weekend) == (47, 7, "Sunday", True)
    assert days[date(2024, 12, 30)].week_of_year == 1  # ISO: the week of the year's first Thursday


def test_the_calendar_reaches_the_first_and_last_years_a_timestamp_can_hold(spark):
    days = model.calendar(spark, [1, 9999]).select("date_key", "day_name").orderBy("date_key").collect()
    assert (days[0].date_key, days[0].day_name, days[-1].date_key) == (10101, "Monday", 99991231)
