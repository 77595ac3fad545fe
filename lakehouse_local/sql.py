"""Spark SQL over the local tables by their Databricks names (``SELECT * FROM gold.daily_kpis``).

Locally the tables are Delta folders read through the ``delta`` source, and Spark's session catalog
cannot hold a ``gold.daily_kpis`` table backed by a Python source. So each table is registered as a
temporary view and the query's table references are rewritten to it with sqlglot (Databricks dialect).
A three-part name (``main.gold.daily_kpis``) resolves too: the catalog part is ignored locally.
"""

from __future__ import annotations

import sqlglot
from pyspark.sql import DataFrame
from sqlglot import exp

from lakehouse import catalog
from lakehouse.tables import Lakehouse


def _view_name(table: str) -> str:
    return "__lakehouse_" + table.replace(".", "__")


def register_views(lakehouse: Lakehouse) -> list[str]:
    """Register every existing table as a temp view; returns the Databricks names registered."""
    registered = []
    for spec in catalog.ALL_TABLES:
        if lakehouse.exists(spec.name):
            lakehouse.read(spec.name).createOrReplaceTempView(_view_name(spec.name))
            registered.append(spec.name)
    return registered


def rewrite(query: str, known: list[str]) -> str:
    """Rewrite ``layer.table`` references in ``query`` to the local temp views."""
    tree = sqlglot.parse_one(query, read="databricks")
    for table in tree.find_all(exp.Table):
        if not table.db:
            continue
        name = f"{table.db}.{table.name}"
        if name not in known:
            raise ValueError(f"table {name} is not in the local lakehouse (known: {', '.join(known)})")
        table.set("this", exp.to_identifier(_view_name(name)))
        table.set("db", None)
        table.set("catalog", None)
    return tree.sql(dialect="spark")


def run_sql(lakehouse: Lakehouse, query: str) -> DataFrame:
    known = register_views(lakehouse)
    return lakehouse.session.sql(rewrite(query, known))
