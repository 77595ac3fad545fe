"""The package shipped to Databricks runs on every compute: nothing in it that Spark Connect or serverless refuse.

Serverless and standard access mode run notebooks through Spark Connect: no ``persist``/``cache``/
``localCheckpoint``/``checkpoint`` (serverless refuses caching), no ``_jdf``/``_jvm``/``sparkContext``/RDD/py4j
(Connect has no JVM handle), and no Spark conf set while a stream runs (serverless accepts few).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import REPO_ROOT

SHIPPED = REPO_ROOT / "lakehouse"
NOTEBOOKS = REPO_ROOT / "databricks" / "notebooks"
PIPELINES = REPO_ROOT / "databricks" / "pipelines"
CALLS = {"persist", "cache", "unpersist", "localCheckpoint", "checkpoint"}
ATTRIBUTES = {"_jdf", "_jvm", "_jsc", "_jsparkSession", "sparkContext", "rdd"}
MODULES = {"py4j", "pyspark.rdd", "pyspark.context"}


def refusals(source: str, filename: str = "<source>") -> list[str]:
    """Every use in ``source`` that Spark Connect or serverless refuse, as 'file:line: what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in CALLS:
                found.append(f"{filename}:{node.lineno}: .{name}()")
            target = node.func.value
            if name in ("set", "unset") and isinstance(target, ast.Attribute) and target.attr == "conf":
                found.append(f"{filename}:{node.lineno}: spark.conf.{name}()")
        elif isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            found.append(f"{filename}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"{filename}:{node.lineno}: import {n}" for n in names if n and n.split(".")[0] in MODULES
                      or n in MODULES]
    return found


def _sources() -> list[Path]:
    return sorted(SHIPPED.rglob("*.py")) + sorted(NOTEBOOKS.glob("*.py")) + sorted(PIPELINES.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shipped_code_uses_nothing_spark_connect_or_serverless_refuse(path):
    assert refusals(path.read_text(), str(path.relative_to(REPO_ROOT))) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "batch.persist()",
        "df.cache()",
        "batch.localCheckpoint(eager=True)",
        "batch._jdf.queryExecution()",
        "spark.sparkContext.setLogLevel('ERROR')",
        "spark.conf.set('spark.databricks.delta.write.txnAppId', 'x')",
        "from py4j.java_gateway import JavaObject",
        "rows = df.rdd.map(len)",
    ],
)
def test_the_check_finds_each_refused_use(snippet):
    assert refusals(snippet) != []
