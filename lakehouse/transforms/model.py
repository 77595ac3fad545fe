"""The star schema around the events: the fact table, the page dimension (with its page types) and the calendar.

Pure ``DataFrame -> DataFrame`` transforms over Silver rows. Each takes what a micro-batch brings (and, for
the page dimension, the rows the table already holds for those pages) and returns the rows to write, so the
same functions build the tables from scratch (one batch holding everything) and keep them up to date.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

# The columns of gold.fact_events that come from Silver as they are.
FACT_COLUMNS = (
    "event_id", "event_time", "event_date", "user_id", "session_id", "page", "action", "device_type", "country",
    "source", "is_late",
)

# Page types by the first segment of the path (lower case, query string and fragment ignored): the rules the
# README documents. A path with no segment ("/", "") is the home page; anything else is "other".
PAGE_TYPES = {
    "home": ("home", "index.html", "index.htm"),
    "category": ("category", "categories", "c", "collections"),
    "product": ("product", "products", "p", "item"),
    "cart": ("cart", "basket", "bag"),
    "checkout": ("checkout",),
    "search": ("search",),
}
OTHER = "other"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def date_key(day: Column) -> Column:
    """A day as the integer yyyymmdd (the calendar's key): sorts as the day does, and reads as one."""
    return (F.year(day) * 10000 + F.month(day) * 100 + F.dayofmonth(day)).cast("int")


def page_type(page: Column) -> Column:
    """The page type of a URL path, by its first segment (see :data:`PAGE_TYPES`)."""
    path = F.lower(F.regexp_replace(page, r"[?#].*$", ""))
    segment = F.regexp_extract(path, r"^/*([^/]*)", 1)
    kind = F.when(segment == "", F.lit("home"))
    for name, segments in PAGE_TYPES.items():
        kind = kind.when(segment.isin(*segments), F.lit(name))
    return kind.otherwise(F.lit(OTHER))


def fact_events(silver: DataFrame) -> DataFrame:
    """One fact row per Silver event: its natural keys, its date key, what happened and whether it was late."""
    return silver.select(*FACT_COLUMNS, date_key(F.col("event_date")).alias("date_key"))


def page_rows(silver: DataFrame, existing: DataFrame | None = None) -> DataFrame:
    """The gold.dim_page rows that a batch creates or changes (first or last seen moves).

    ``existing``: the table's rows for the batch's pages (``page``, ``first_seen``, ``last_seen``); None builds
    the table from scratch. First and last seen are a minimum and a maximum, so adding a batch twice gives the
    same rows.
    """
    seen = silver.groupBy("page").agg(F.min("event_time").alias("first"), F.max("event_time").alias("last"))
    if existing is None:
        return seen.select("page", page_type(F.col("page")).alias("page_type"), F.col("first").alias("first_seen"),
                           F.col("last").alias("last_seen"))
    old = existing.select("page", F.col("first_seen").alias("old_first"), F.col("last_seen").alias("old_last"))
    merged = seen.join(old, "page", "left")
    changed = F.col("old_first").isNull() | (F.col("first") < F.col("old_first")) | (F.col("last") > F.col("old_last"))
    return merged.filter(changed).select(
        "page",
        page_type(F.col("page")).alias("page_type"),
        F.least("first", "old_first").alias("first_seen"),
        F.greatest("last", "old_last").alias("last_seen"),
    )


def calendar(spark: SparkSession, years: list[int]) -> DataFrame:
    """gold.dim_date rows: every day of each of ``years``."""
    return calendar_of(spark.createDataFrame([(y,) for y in years], "year int"))


def calendar_of(years: DataFrame) -> DataFrame:
    """gold.dim_date rows: every day of each year in ``years`` (a frame with one ``year`` column, no repeats)."""
    span = years.select(
        F.explode(F.sequence(F.make_date("year", F.lit(1), F.lit(1)), F.make_date("year", F.lit(12), F.lit(31))))
        .alias("date")
    )
    day_of_week = F.weekday("date") + 1  # ISO-8601: Monday = 1
    return span.select(
        date_key(F.col("date")).alias("date_key"),
        "date",
        F.year("date").alias("year"),
        F.quarter("date").alias("quarter"),
        F.month("date").alias("month"),
        F.element_at(F.array(*[F.lit(m) for m in MONTHS]), F.month("date")).alias("month_name"),
        F.weekofyear("date").alias("week_of_year"),
        F.dayofmonth("date").alias("day_of_month"),
        day_of_week.alias("day_of_week"),
        F.element_at(F.array(*[F.lit(d) for d in DAYS]), day_of_week).alias("day_name"),
        (day_of_week >= 6).alias("is_weekend"),
    )
