"""Users: the history of their tracked attributes (SCD Type 2) and their features for models.

**History.** A user's attributes at time ``t`` are the ``device_type``, ``country`` and ``source`` of their
latest event at or before ``t``, events ordered by ``event_time`` then ``event_id`` (so of events at the same
instant the greatest ``event_id`` counts). A version is a span over which they stay the same: it starts at the
event that changed them and ends where the next version starts. Arrival order plays no part, so a late event
splits or corrects the history exactly as if it had come in order.

A batch can only change a user's history from their earliest new event (``since``) on: the versions before it
stay, the version in force just before it gives the starting point, and the rest is rebuilt from the user's
events from ``since`` on (:func:`dim_user_changes`).

**Features.** One row per user as of their latest event, ``last_seen`` (:func:`customer_features`).
"""

from __future__ import annotations

from datetime import date
from functools import reduce
from operator import and_

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.tables import DELETE

TRACKED = ("device_type", "country", "source")
# The partition of the current versions (gold.dim_user._valid_to_date).
CURRENT = date(9999, 12, 31)
# The longest feature window: a batch's users are read this far back from their new events.
FEATURE_WINDOW_DAYS = 30
HISTORY_COLUMNS = ["user_id", "event_time", "event_id", "session_id", "page", "action", *TRACKED]
_MICROS_PER_DAY = 86_400_000_000


def user_since(silver: DataFrame) -> DataFrame:
    """Each user of a batch with the time of their earliest event in it (``since``): where their history can change."""
    return silver.groupBy("user_id").agg(F.min("event_time").alias("since"))


def user_versions(timeline: DataFrame) -> DataFrame:
    """The SCD Type 2 versions of the users of ``timeline`` (``user_id``, ``event_time``, ``event_id``, tracked
    attributes), as gold.dim_user rows."""
    # One shuffle: every window below is per user, or per user and instant.
    by_user = timeline.repartition("user_id")
    latest_first = Window.partitionBy("user_id", "event_time").orderBy(F.desc("event_id"))
    points = by_user.select("*", F.row_number().over(latest_first).alias("_n")).filter("_n = 1")
    in_time = Window.partitionBy("user_id").orderBy("event_time")
    unchanged = reduce(and_, [F.col(c).eqNullSafe(F.lag(c).over(in_time)) for c in TRACKED])
    first = F.lag("event_time").over(in_time).isNull()
    starts = points.select("*", (first | ~unchanged).alias("_starts")).filter("_starts")
    valid_to = F.lead("event_time").over(in_time)
    versions = starts.select("user_id", *TRACKED, F.col("event_time").alias("valid_from"), valid_to.alias("valid_to"))
    return versions.select(
        F.concat("user_id", F.lit("@"), F.date_format("valid_from", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")).alias("user_key"),
        "user_id",
        *TRACKED,
        "valid_from",
        "valid_to",
        F.col("valid_to").isNull().alias("is_current"),
        F.coalesce(F.to_date("valid_to"), F.lit(CURRENT)).alias("_valid_to_date"),
    )


def dim_user_changes(stored: DataFrame, history: DataFrame, since: DataFrame) -> DataFrame:
    """The changes a batch makes to gold.dim_user: rows to write (``_delete`` false) and keys to delete (true).

    ``stored``: the table's versions of the batch's users that end at or after their ``since`` (or are current);
    ``history``: those users' events from ``since`` on (the batch's included); ``since``: :func:`user_since`.
    The stored versions that start before ``since`` enter the timeline as the events that started them: the
    last of them is the version in force at ``since``, and the earlier ones come out as they were. Versions
    that come out as they were are left out, so an in-order event that changes nothing writes nothing.
    """
    before = stored.join(F.broadcast(since), "user_id").filter(F.col("valid_from") < F.col("since")).select(
        "user_id", F.col("valid_from").alias("event_time"), F.lit("").alias("event_id"), *TRACKED
    )
    events = history.join(F.broadcast(since), "user_id").filter(F.col("event_time") >= F.col("since"))
    rebuilt = user_versions(before.unionByName(events.select("user_id", "event_time", "event_id", *TRACKED)))
    # Every stored version of these users that starts before `since` is rebuilt as it was (it is in the
    # timeline): a stored version the rebuild does not give again starts at or after `since` and is gone.
    old = stored.select("user_id", "user_key", F.lit(True).alias("_stored"),
                        *[F.col(c).alias(f"_old_{c}") for c in ("valid_to", *TRACKED)])
    both = rebuilt.withColumn("_rebuilt", F.lit(True)).join(old, ["user_id", "user_key"], "full")
    same = reduce(and_, [F.col(c).eqNullSafe(F.col(f"_old_{c}")) for c in ("valid_to", *TRACKED)])
    deleted = F.col("_rebuilt").isNull()
    return both.filter(deleted | F.col("_stored").isNull() | ~same).select(
        *rebuilt.columns, deleted.alias(DELETE)
    )


def _days_before(time: Column, days: int) -> Column:
    return time - F.make_dt_interval(F.lit(days))


def customer_features(history: DataFrame, stored: DataFrame | None = None) -> DataFrame:
    """gold.customer_features rows for the users of ``history``, as of each one's latest event.

    ``history``: the users' events from at least 30 days before their latest one (:data:`HISTORY_COLUMNS`);
    ``stored``: their rows in the table (``user_id``, ``first_seen``, ``last_purchase_at``), which carry what lies
    further back; None when ``history`` is all there is (the table from scratch). Minimum and maximum: adding a
    batch twice gives the same rows.
    """
    # One shuffle (by user): the windows and both aggregations below keep to it.
    per_user = Window.partitionBy("user_id")
    purchase = F.col("action") == "purchase"
    events = history.select("*", F.max("event_time").over(per_user).alias("last_seen"))
    in_30 = F.col("event_time") > _days_before(F.col("last_seen"), FEATURE_WINDOW_DAYS)
    events = events.select("*", in_30.alias("in_30")).select(
        "*", F.count(F.when(in_30, F.lit(1))).over(Window.partitionBy("user_id", "device_type")).alias("device_events")
    )
    # Per device seen in the window: most events first, then alphabetical; min() picks the favourite.
    device_rank = F.when(F.col("in_30") & F.col("device_type").isNotNull(),
                         F.struct((-F.col("device_events")).alias("n"), F.col("device_type").alias("device")))
    in_window = F.when(F.col("in_30"), F.col("event_time"))
    sessions = events.groupBy("user_id", "session_id").agg(
        F.max("last_seen").alias("last_seen"),
        F.min("event_time").alias("first"),
        F.max(F.when(purchase, F.col("event_time"))).alias("last_purchase"),
        F.min(in_window).alias("start"),
        F.max(in_window).alias("end"),
        F.count_if("in_30").alias("events"),
        F.count_if(F.col("in_30") & (F.col("action") == "view")).alias("views"),
        F.count_if(F.col("in_30") & purchase).alias("purchases"),
        F.collect_set(F.when(F.col("in_30"), F.col("page"))).alias("pages"),
        F.min(device_rank).alias("device"),
    )
    seconds = (F.unix_micros("end") - F.unix_micros("start")) / 1_000_000
    recent = F.col("end") > _days_before(F.col("last_seen"), 7)
    in_30_days = F.col("start").isNotNull()
    users = sessions.groupBy("user_id").agg(
        F.max("last_seen").alias("last_seen"),
        F.min("first").alias("first"),
        F.max("last_purchase").alias("last_purchase"),
        F.count_if(in_30_days & recent).alias("sessions_7d"),
        F.count_if(in_30_days).alias("sessions_30d"),
        F.sum("events").alias("events_30d"),
        F.sum("views").alias("views_30d"),
        F.sum("purchases").alias("purchases_30d"),
        F.count_if(in_30_days & (F.col("purchases") > 0)).alias("converted"),
        F.avg(F.when(in_30_days, seconds)).alias("avg_session_duration_s_30d"),
        F.size(F.array_distinct(F.flatten(F.collect_list("pages")))).alias("distinct_pages_30d"),
        F.min("device").alias("device"),
    )
    if stored is None:
        rows = users.select("*", F.lit(None).cast("timestamp").alias("old_first"),
                            F.lit(None).cast("timestamp").alias("old_purchase"))
    else:
        old = stored.select("user_id", F.col("first_seen").alias("old_first"),
                            F.col("last_purchase_at").alias("old_purchase"))
        rows = users.join(F.broadcast(old), "user_id", "left")
    last_purchase = F.greatest("last_purchase", "old_purchase")
    return rows.select(
        "user_id",
        F.least("first", "old_first").alias("first_seen"),
        "last_seen",
        last_purchase.alias("last_purchase_at"),
        F.expr(f"(unix_micros(last_seen) - unix_micros(greatest(last_purchase, old_purchase))) div {_MICROS_PER_DAY}")
        .cast("int").alias("recency_days"),
        "sessions_7d",
        "sessions_30d",
        "events_30d",
        "views_30d",
        "purchases_30d",
        (F.col("converted") / F.col("sessions_30d")).alias("conversion_rate_30d"),
        "avg_session_duration_s_30d",
        F.col("distinct_pages_30d").cast("bigint").alias("distinct_pages_30d"),
        F.col("device.device").alias("favourite_device_type"),
    )
