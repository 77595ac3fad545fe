"""Gold model micro-batch: a batch of Silver inserts folded into the star schema, sessions, users and features.

What a batch costs follows what it touches, not the size of the tables:

* ``gold.fact_events``: the batch's rows, appended (once per batch id).
* ``gold.dim_date``: the days of a year the calendar does not hold yet, when a batch brings one.
* ``gold.dim_page``: the batch's pages, whose first or last seen it moves.
* ``gold.sessions``: the batch's sessions, folded into their stored rows, which are looked up among the
  partitions (day of their last event) within ``lookup_days`` of the batch's days.
* ``gold.dim_user`` and ``gold.customer_features``: the batch's users, rebuilt from their events in
  ``gold.fact_events`` from ``since`` (their earliest new event) and from 30 days before it, and from their
  versions that end at or after ``since``: partition pruning and key filters read only those rows.

The fact table is written first, with the calendar, pages and sessions (which do not read it); the users are
rebuilt from it once that round has committed. A batch that is replayed after a crash (any write done or not)
therefore reads the same events and writes the same rows. Every write is keyed and idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.config import PipelineConfig
from lakehouse.pipeline.metrics import MicroBatch, ingest_times
from lakehouse.pipeline.silver import lookup_days
from lakehouse.tables import Lakehouse, date_window
from lakehouse.transforms import model as model_t
from lakehouse.transforms import sessions as sessions_t
from lakehouse.transforms import users as users_t

STREAM = "gold_model"
INPUT_COLUMNS = [*model_t.FACT_COLUMNS, "ingest_time"]


@dataclass(frozen=True)
class GoldModelBatch:
    """The ``foreachBatch`` function of the Gold model stream."""

    tables: Lakehouse
    cfg: PipelineConfig

    def __call__(self, batch: DataFrame, batch_id: int) -> dict:
        run = MicroBatch.start(self.tables, STREAM, batch, batch_id)
        return process(run, batch, lookup_days=lookup_days(self.cfg.max_lateness_hours))


def process(run: MicroBatch, batch: DataFrame, *, lookup_days: int) -> dict:
    """Fold a batch of Silver inserts into the model's tables; returns the batch's row count and days."""
    tables = run.tables
    rows = tables.reusable(batch.select(*INPUT_COLUMNS))
    stats = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min("event_date").alias("first_day"),
        F.max("event_date").alias("last_day"),
        F.collect_set(F.year("event_date")).alias("years"),
        *ingest_times("ingest_time"),
    ).first()
    if stats["rows"]:
        # Two rounds of writes, each computed side by side: the users' round reads the facts the first one wrote.
        with tables.together() as writes:
            writes.append(model_t.fact_events(rows), "gold.fact_events", app_id=run.app_id("gold.fact_events"),
                          batch_id=run.batch_id)
            first_round = replace(run, tables=writes)
            _calendar(first_round, stats["years"])
            _pages(first_round, rows)
            _sessions(first_round, rows, date_window(stats["first_day"], stats["last_day"], lookup_days))
        with tables.together() as writes:
            _users(replace(run, tables=writes), rows, stats["first_day"])
    run.record(rows_in=stats["rows"], rows_written=stats["rows"], ingest=stats if stats["rows"] else None)
    return {"rows": stats["rows"], "days": (stats["first_day"], stats["last_day"])}


def _calendar(run: MicroBatch, years: list[int]) -> None:
    held = run.tables.read("gold.dim_date", columns=["year"]).where(F.col("year").isin(years)).distinct().collect()
    missing = sorted(set(years) - {r.year for r in held})
    if missing:
        run.tables.upsert(model_t.calendar(run.tables.session, missing), "gold.dim_date",
                          app_id=run.app_id("gold.dim_date"), batch_id=run.batch_id, when_matched="ignore")


def _pages(run: MicroBatch, rows: DataFrame) -> None:
    existing = run.tables.read_matching("gold.dim_page", rows, "page", columns=["page", "first_seen", "last_seen"])
    run.tables.upsert(model_t.page_rows(rows, existing), "gold.dim_page", app_id=run.app_id("gold.dim_page"),
                      batch_id=run.batch_id)


def _sessions(run: MicroBatch, rows: DataFrame, window: tuple[date, date]) -> None:
    """Fold the batch into its sessions. A stored session is found when its last event lies within the window
    (the batch's days, ``lookup_days`` either side): a late event is at most the lateness limit behind the
    session's last one, and a session's next event within that of its last."""
    partials = run.tables.reusable(sessions_t.session_partials(rows))
    existing = run.tables.read_matching("gold.sessions", partials, "session_id",
                                        columns=catalog.SESSIONS.column_names, dates=window)
    run.tables.upsert(sessions_t.updated_sessions(partials, existing, run.batch_id), "gold.sessions",
                      app_id=run.app_id("gold.sessions"), batch_id=run.batch_id, within=window)


def _users(run: MicroBatch, rows: DataFrame, first_day: date) -> None:
    """Rebuild the batch's users' history from their earliest new event, and their features."""
    tables = run.tables
    since = tables.reusable(users_t.user_since(rows))
    back = min(users_t.FEATURE_WINDOW_DAYS, (first_day - date.min).days)
    history = tables.read_matching("gold.fact_events", since, "user_id", columns=users_t.HISTORY_COLUMNS,
                                   dates=(first_day - timedelta(days=back), date.max))
    versions = (first_day, users_t.CURRENT)
    stored = tables.read_matching("gold.dim_user", since, "user_id", columns=catalog.DIM_USER.column_names,
                                  dates=versions)
    tables.apply_changes(users_t.dim_user_changes(stored, history, since), "gold.dim_user",
                         app_id=run.app_id("gold.dim_user"), batch_id=run.batch_id, within=versions)
    features = tables.read_matching("gold.customer_features", since, "user_id",
                                    columns=["user_id", "first_seen", "last_purchase_at"])
    tables.upsert(users_t.customer_features(history, features), "gold.customer_features",
                  app_id=run.app_id("gold.customer_features"), batch_id=run.batch_id)
