"""Gold · the analytical model (the declarative edition of notebook 04).

Reads: ``silver_events``.
Writes: ``fact_events``, ``dim_user`` (SCD Type 2), ``dim_page``, ``dim_date``, ``sessions`` and
``customer_features``: materialized views with the public columns of the model's tables (``lakehouse/catalog.py``).

Guarantees: each view is the model's transforms (``lakehouse/transforms/``: ``model``, ``sessions``, ``users``)
over all of Silver, so a late event splits a user's history and completes a session exactly; the pipeline
refreshes the views (incrementally where Databricks can) after Silver.
"""

from pyspark import pipelines as dp

from lakehouse.declarative import datasets, flows

EVENTS = datasets.NAMES["silver.events"]
CLUSTER_BY = {
    "gold.fact_events": ["event_date"],
    "gold.dim_user": ["user_id"],
    "gold.dim_page": ["page"],
    "gold.dim_date": ["date"],
    "gold.sessions": ["session_date"],
    "gold.customer_features": ["user_id"],
}


def _view(name: str) -> dict:
    """The materialized view of model table ``name``: its name, comment, columns and clustering."""
    spec = datasets.MODEL[name]
    return {"name": datasets.NAMES[name], "comment": spec.comment, "schema": spec.struct(), "cluster_by": CLUSTER_BY[name]}


@dp.materialized_view(**_view("gold.fact_events"))
def fact_events():
    return flows.model("gold.fact_events", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.dim_user"))
def dim_user():
    return flows.model("gold.dim_user", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.dim_page"))
def dim_page():
    return flows.model("gold.dim_page", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.dim_date"))
def dim_date():
    return flows.model("gold.dim_date", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.sessions"))
def sessions():
    return flows.model("gold.sessions", spark.read.table(EVENTS))


@dp.materialized_view(**_view("gold.customer_features"))
def customer_features():
    return flows.model("gold.customer_features", spark.read.table(EVENTS))
