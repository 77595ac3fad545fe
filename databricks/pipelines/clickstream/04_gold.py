"""Gold · the metrics for Databricks SQL (the declarative edition of notebook 03).

Reads: ``silver_events``.
Writes: ``daily_kpis``, ``events_per_minute``, ``funnel_daily``, ``traffic_daily`` and ``top_pages_daily``:
materialized views with the Gold contract's columns (``lakehouse/catalog.py``), clustered by day.

Guarantees: each view is the Gold transforms (``lakehouse/transforms/gold.py``) over all of Silver, so it is
exact, late events included; the pipeline refreshes it (incrementally where Databricks can) after Silver.
"""

from pyspark import pipelines as dp

from lakehouse.declarative import datasets, flows

EVENTS = datasets.NAMES["silver.events"]
DAY = ["event_date"]


def _view(name: str) -> dict:
    """The materialized view of Gold table ``name``: its contract name, comment and columns."""
    spec = datasets.GOLD[name]
    return {"name": datasets.NAMES[name], "comment": spec.comment, "schema": spec.struct(), "cluster_by": DAY}


@dp.materialized_view(**_view("gold.daily_kpis"))
def daily_kpis():
    return flows.gold("gold.daily_kpis", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.events_per_minute"))
def events_per_minute():
    return flows.gold("gold.events_per_minute", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.funnel_daily"))
def funnel_daily():
    return flows.gold("gold.funnel_daily", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.traffic_daily"))
def traffic_daily():
    return flows.gold("gold.traffic_daily", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.top_pages_daily"))
def top_pages_daily():
    return flows.gold("gold.top_pages_daily", spark.read.table(EVENTS))
