"""Gold: the five metric tables of the public contract, from Silver rows.

Two ways to the same tables:

* from scratch: :data:`GOLD_METRICS` turn Silver rows (whole days) into those days' Gold rows;
* incrementally (the Gold stream): :func:`member_keys` lists what each distinct count counts (the users
  of a day, the sessions that reached a funnel step, ...); the stream keeps the keys already counted, so
  a batch's *new* keys are what its distinct counts grow by; :func:`increments` turns a batch of Silver
  inserts and its new keys into what each Gold row grows by (:data:`ADDITIVE` columns), which is added
  to the table. A batch therefore costs what the batch holds, not what the day or Silver holds, and the
  counts stay exact.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import contract

ACTIONS = contract.actions()
UNKNOWN = "unknown"
_LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999999)
# daily_kpis' count of each action, in ACTIONS' order.
_ACTION_COLUMNS = ("views", "clicks", "add_to_carts", "purchases")


def _count_action(action: str) -> F.Column:
    return F.expr(f"count_if(action = '{action}')")


def daily_kpis(silver: DataFrame) -> DataFrame:
    kpis = silver.groupBy("event_date").agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct("user_id").alias("active_users"),
        F.countDistinct("session_id").alias("sessions"),
        *[_count_action(action).alias(column) for action, column in zip(ACTIONS, _ACTION_COLUMNS, strict=True)],
        F.countDistinct(F.when(F.col("action") == "purchase", F.col("session_id"))).alias("converted_sessions"),
    )
    # select, not withColumn: Spark Connect (4.2) analyses a withColumn as it is planned, which in a
    # declarative pipeline binds the frame to the table as it stands, not to the pipeline's dataset.
    return kpis.select(
        "*",
        F.when(F.col("sessions") > 0, F.col("converted_sessions") / F.col("sessions"))
        .otherwise(F.lit(0.0))
        .alias("conversion_rate"),
    )


def events_per_minute(silver: DataFrame) -> DataFrame:
    start = F.date_trunc("minute", F.col("event_time"))
    return (
        silver.groupBy(start.alias("window_start"), "action")
        .agg(F.count(F.lit(1)).alias("events"))
        .select(
            "window_start",
            # The minute after 9999-12-31 23:59 is not a timestamp Python or Delta readers can hold.
            F.least(F.col("window_start") + F.expr("INTERVAL 1 MINUTE"), F.lit(_LAST_INSTANT)).alias("window_end"),
            "action",
            "events",
            F.to_date("window_start").alias("event_date"),
        )
    )


# The funnel's steps, in order, as SQL structs (step, step_order).
_STEPS = ", ".join(f"named_struct('step', '{action}', 'step_order', {order})" for order, action in enumerate(ACTIONS, 1))


def _steps_of_days(silver: DataFrame) -> DataFrame:
    """Every funnel step (``step``, ``step_order``) of every day in ``silver``.

    Column expressions and an aggregation only: a pipeline's query function may not create a DataFrame or
    deduplicate one (Spark Connect analyses the frame for either, which Lakeflow refuses there).
    """
    days = silver.groupBy("event_date").agg(F.count(F.lit(1)).alias("_events"))
    return days.selectExpr("event_date", f"inline(array({_STEPS}))")


def funnel_daily(silver: DataFrame) -> DataFrame:
    reached = silver.groupBy("event_date", F.col("action").alias("step")).agg(
        F.countDistinct("session_id").alias("sessions")
    )
    return (
        _steps_of_days(silver)
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


# -- incremental ------------------------------------------------------------------------------------

# What each Gold table's rows grow by; every other non-key column is derived (DERIVED) or fixed at insert.
ADDITIVE = {
    "gold.daily_kpis": [
        "events", "active_users", "sessions", "views", "clicks", "add_to_carts", "purchases", "converted_sessions",
    ],
    "gold.events_per_minute": ["events"],
    "gold.funnel_daily": ["sessions"],
    "gold.traffic_daily": ["events", "active_users"],
    "gold.top_pages_daily": ["views", "unique_users"],
}
# Columns recomputed from the summed ones when a row grows (SQL over the MERGE's target and source).
_SESSIONS = "(target.sessions + source.sessions)"
DERIVED = {
    "gold.daily_kpis": {
        "conversion_rate": f"CASE WHEN {_SESSIONS} > 0 THEN CAST(target.converted_sessions + "
        f"source.converted_sessions AS DOUBLE) / CAST({_SESSIONS} AS DOUBLE) ELSE 0.0 END",
    },
}
_DIMENSIONS = ("device_type", "country", "source")


def _json_array(*items: str) -> str:
    return f"to_json(array({', '.join(items)}))"


def _member(metric: str, group: str, who: str) -> str:
    return f"named_struct('metric', '{metric}', 'group_key', {group}, 'member', {who})"


_WHOLE_DAY = "'[]'"
_DIMENSIONS_KEY = _json_array(*[f"coalesce({d}, '{UNKNOWN}')" for d in _DIMENSIONS])
# Each event's members of every distinct count, as one SQL expression (null where an event is not a member). In
# the classic Python API each function and operator of a column is a call into the JVM: built column by column,
# this one took hundreds per batch. Nulls are dropped after the explode, not with a lambda (``filter(array, m ->
# ...)``): Spark has no generated code for lambdas, and one in the plan left the explode interpreted, per row.
# metric: (its group key, its member, the condition for an event to be one or None for every event).
_METRICS = {
    "users": (_WHOLE_DAY, "user_id", None),
    "sessions": (_WHOLE_DAY, "session_id", None),
    "funnel_sessions": (_json_array("action"), "session_id", None),
    "traffic_users": (_DIMENSIONS_KEY, "user_id", None),
    "converted_sessions": (_WHOLE_DAY, "session_id", "action = 'purchase'"),
    "page_users": (_json_array("page"), "user_id", "action = 'view'"),
}
_MEMBERS = "array({})".format(", ".join(
    _member(metric, group, who) if when is None else f"IF({when}, {_member(metric, group, who)}, NULL)"
    for metric, (group, who, when) in _METRICS.items()
))
_KEY = _json_array("metric", "CAST(event_date AS STRING)", "group_key", "member")


def member_keys(silver: DataFrame) -> DataFrame:
    """Every (metric, day, group, member) a distinct count of Gold counts, once each, with its ``key``.

    One pass: each event names its members of every metric (an array), exploded and deduplicated once.
    Groups and keys are JSON arrays, since text fields may hold any character and a key must still name
    one group and one member.
    """
    members = silver.selectExpr("event_date", f"explode({_MEMBERS}) AS m").filter("m IS NOT NULL")
    keys = members.selectExpr("event_date", "m.*").distinct()
    return keys.selectExpr("*", f"{_KEY} AS key")


def _grown(events: DataFrame, new_keys: DataFrame, group: list[str], counts: dict[str, str],
           members: dict[str, str], carried: tuple[str, ...] = ()) -> DataFrame:
    """What each group of ``events`` (``event_date`` and the ``group`` columns) grows by: ``counts`` (column: the
    condition an event meets to be counted) and its new members (column: metric) among ``new_keys``.

    The events and the new keys of those metrics meet in one aggregation on the group's key (its columns as a JSON
    array, as :func:`member_keys` made it): joined, each side was aggregated on its own and one of them broadcast,
    a Spark job more per table. The group's columns (and ``carried``, which the group determines) come from its
    events; a group has new members only where the batch has events, and only groups with events are kept.
    """
    listed = ", ".join(f"'{metric}'" for metric in members.values())
    keyed = events.selectExpr("*", f"{_json_array(*group) if group else _WHOLE_DAY} AS group_key")
    keys = new_keys.filter(f"metric IN ({listed})").select("event_date", "group_key", "metric")
    grown = keyed.unionByName(keys, allowMissingColumns=True).groupBy("event_date", "group_key").agg(
        *[F.expr(f"max(`{column}`) AS `{column}`") for column in (*group, *carried)],
        F.expr("count_if(metric IS NULL) AS _events"),
        *[F.expr(f"count_if(metric IS NULL AND ({condition})) AS {column}") for column, condition in counts.items()],
        *[F.expr(f"count_if(metric = '{metric}') AS {column}") for column, metric in members.items()],
    )
    return grown.filter("_events > 0").drop("group_key", "_events")


def increments(silver: DataFrame, new_keys: DataFrame) -> dict[str, DataFrame]:
    """What each Gold row grows by, from a batch of Silver inserts and the batch's new member keys.

    Rows of groups the batch touched only; ``conversion_rate`` is the batch's own (it is recomputed from the
    sums when an existing row grows, see :data:`DERIVED`).
    """
    actions = {column: f"action = '{action}'" for action, column in zip(ACTIONS, _ACTION_COLUMNS, strict=True)}
    kpis = _grown(
        silver.select("event_date", "action"), new_keys, [], {"events": "true", **actions},
        {"active_users": "users", "sessions": "sessions", "converted_sessions": "converted_sessions"},
    ).selectExpr(
        "*", "CASE WHEN sessions > 0 THEN converted_sessions / sessions ELSE CAST(0 AS DOUBLE) END AS conversion_rate"
    )
    funnel = _grown(silver.selectExpr("event_date", f"inline(array({_STEPS}))"), new_keys, ["step"], {},
                    {"sessions": "funnel_sessions"}, carried=("step_order",))
    traffic = _grown(
        silver.selectExpr("event_date", *[f"coalesce({d}, '{UNKNOWN}') AS {d}" for d in _DIMENSIONS]),
        new_keys, list(_DIMENSIONS), {"events": "true"}, {"active_users": "traffic_users"},
    )
    pages = _grown(silver.filter("action = 'view'").select("event_date", "page"), new_keys, ["page"],
                   {"views": "true"}, {"unique_users": "page_users"})
    return {
        "gold.daily_kpis": kpis,
        "gold.events_per_minute": events_per_minute(silver),
        "gold.funnel_daily": funnel,
        "gold.traffic_daily": traffic,
        "gold.top_pages_daily": pages,
    }
