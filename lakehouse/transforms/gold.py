"""Gold: the five metric tables of the public contract, computed from Silver rows.

Each function takes Silver rows (any slice of whole days) and returns that slice's Gold rows, so
a batch recomputes exactly the days it touched and MERGEs them (see :mod:`lakehouse.pipeline`).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import contract

ACTIONS = contract.actions()
UNKNOWN = "unknown"


def _count_action(action: str) -> F.Column:
    return F.sum(F.when(F.col("action") == action, 1).otherwise(0)).cast("bigint")


def daily_kpis(silver: DataFrame) -> DataFrame:
    kpis = silver.groupBy("event_date").agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct("user_id").alias("active_users"),
        F.countDistinct("session_id").alias("sessions"),
        _count_action("view").alias("views"),
        _count_action("click").alias("clicks"),
        _count_action("add_to_cart").alias("add_to_carts"),
        _count_action("purchase").alias("purchases"),
        F.countDistinct(F.when(F.col("action") == "purchase", F.col("session_id"))).alias("converted_sessions"),
    )
    return kpis.withColumn(
        "conversion_rate",
        F.when(F.col("sessions") > 0, F.col("converted_sessions") / F.col("sessions")).otherwise(F.lit(0.0)),
    )


def events_per_minute(silver: DataFrame) -> DataFrame:
    start = F.date_trunc("minute", F.col("event_time"))
    return (
        silver.groupBy(start.alias("window_start"), "action")
        .agg(F.count(F.lit(1)).alias("events"))
        .withColumn("window_end", F.col("window_start") + F.expr("INTERVAL 1 MINUTE"))
        .withColumn("event_date", F.to_date("window_start"))
        .select("window_start", "window_end", "action", "events", "event_date")
    )


def funnel_daily(silver: DataFrame) -> DataFrame:
    steps = silver.sparkSession.createDataFrame(
        [(action, order) for order, action in enumerate(ACTIONS, start=1)], "step string, step_order int"
    )
    days = silver.select("event_date").distinct()
    reached = silver.groupBy("event_date", F.col("action").alias("step")).agg(
        F.countDistinct("session_id").alias("sessions")
    )
    return (
        days.crossJoin(steps)
        .join(reached, ["event_date", "step"], "left")
        .select("event_date", "step", "step_order", F.coalesce("sessions", F.lit(0)).cast("bigint").alias("sessions"))
    )


def traffic_daily(silver: DataFrame) -> DataFrame:
    dims = [F.coalesce(F.col(d), F.lit(UNKNOWN)).alias(d) for d in ("device_type", "country", "source")]
    return silver.groupBy("event_date", *dims).agg(
        F.count(F.lit(1)).alias("events"), F.countDistinct("user_id").alias("active_users")
    )


def top_pages_daily(silver: DataFrame) -> DataFrame:
    return (
        silver.filter(F.col("action") == "view")
        .groupBy("event_date", "page")
        .agg(F.count(F.lit(1)).alias("views"), F.countDistinct("user_id").alias("unique_users"))
    )


GOLD_METRICS = {
    "gold.daily_kpis": daily_kpis,
    "gold.events_per_minute": events_per_minute,
    "gold.funnel_daily": funnel_daily,
    "gold.traffic_daily": traffic_daily,
    "gold.top_pages_daily": top_pages_daily,
}
