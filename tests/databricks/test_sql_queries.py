"""The analysts' SQL: ``databricks/sql/*.sql``, the dashboard built from them, and the Unity Catalog setup.

* Each query parses with sqlglot's Databricks dialect, is one SELECT, reads only ``gold.<table>`` of
  the contract (lakehouse/catalog.py) and only columns those tables have (resolved by sqlglot's
  qualifier against the Gold schema, aliases and CTEs included).
* The dashboard's datasets are the query files themselves, and its widgets use only columns the
  datasets return.
* Run locally against the demo lakehouse (the notebooks over producer data), every query returns rows
  that agree with the Gold tables.
* The Unity Catalog setup creates the four layer schemas and gives analysts Gold only.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from support import REPO_ROOT

from lakehouse import catalog

SQL_DIR = REPO_ROOT / "databricks" / "sql"
DASHBOARD_FILE = REPO_ROOT / "databricks" / "dashboards" / "clickstream.lvdash.json"
SETUP_DIR = REPO_ROOT / "databricks" / "setup"
QUERIES = (
    "conversion_rate",
    "dau_trend",
    "events_per_minute",
    "funnel",
    "funnel_by_page_type",
    "new_vs_returning_users",
    "session_length_distribution",
    "top_pages",
    "traffic_by_device_country",
)
GOLD = {spec.name: spec for spec in (*catalog.GOLD_TABLES, *catalog.MODEL_TABLES)}
GOLD_SCHEMA = {"gold": {name.split(".")[1]: {c.name: c.type for c in spec.columns} for name, spec in GOLD.items()}}


def _query_text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def check_gold_query(sql: str, where: str) -> exp.Query:
    """Parse ``sql`` (Databricks dialect) and check it reads only Gold tables and columns; returns the tree."""
    statements = [s for s in sqlglot.parse(sql, read="databricks") if s is not None]
    assert len(statements) == 1, f"{where}: one statement per query, found {len(statements)}"
    tree = statements[0]
    assert isinstance(tree, exp.Query), f"{where}: a query (SELECT), not {type(tree).__name__}"

    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables = set()
    for table in tree.find_all(exp.Table):
        if not table.db and table.name in ctes:
            continue
        name = f"{table.db}.{table.name}"
        assert not table.catalog, f"{where}: {table.sql('databricks')}: name tables gold.<table>; the catalog is chosen by the reader"
        assert name in GOLD, f"{where}: {name} is not a Gold table of the contract ({', '.join(GOLD)})"
        tables.add(name)
    assert tables, f"{where}: reads no Gold table"

    # Every column resolves against the Gold schema (raises on an unknown or ambiguous column).
    qualify(tree.copy(), schema=GOLD_SCHEMA, dialect="databricks", validate_qualify_columns=True)
    # And, independently of the qualifier: a column is a column of a table read, or an alias defined here.
    allowed = {c for name in tables for c in GOLD[name].column_names}
    allowed |= {alias.alias for alias in tree.find_all(exp.Alias)}
    for column in tree.find_all(exp.Column):
        assert column.name in allowed, f"{where}: column {column.name!r} is in none of {sorted(tables)}"
    return tree


# -- the query files -----------------------------------------------------------------------------------


def test_the_analyst_queries_are_the_documented_set():
    assert sorted(path.stem for path in SQL_DIR.glob("*.sql")) == sorted(QUERIES)
    assert not list(SQL_DIR.glob("__init__.py"))


@pytest.mark.parametrize("name", QUERIES)
def test_query_parses_and_reads_only_gold_tables_and_columns(name):
    tree = check_gold_query(_query_text(name), f"{name}.sql")
    assert tree.named_selects, f"{name}.sql: every output column needs a name"
    assert _query_text(name).lstrip().startswith("--"), f"{name}.sql starts with a comment saying what it answers"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT event_date, bogus FROM gold.daily_kpis",
        "SELECT page FROM gold.daily_kpis",
        "SELECT * FROM silver.events",
        "SELECT event_date FROM main.gold.daily_kpis",
        "SELECT event_date FROM gold.daily_kpis; SELECT 1",
        "DELETE FROM gold.daily_kpis",
    ],
)
def test_the_check_rejects_what_is_not_a_gold_query(sql):
    with pytest.raises((AssertionError, sqlglot.errors.OptimizeError)):
        check_gold_query(sql, "example")


# -- the dashboard -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def _dataset_sql(dataset: dict) -> str:
    return "".join(dataset["queryLines"]) if "queryLines" in dataset else dataset["query"]


def test_dashboard_datasets_are_the_query_files(dashboard):
    datasets = {d["name"]: d for d in dashboard["datasets"]}
    assert sorted(datasets) == sorted(QUERIES)
    for name, dataset in datasets.items():
        assert _dataset_sql(dataset) == _query_text(name), f"dataset {name} differs from databricks/sql/{name}.sql"
        check_gold_query(_dataset_sql(dataset), f"dataset {name}")


def test_dashboard_widgets_use_columns_their_dataset_returns(dashboard):
    outputs = {d["name"]: set(check_gold_query(_dataset_sql(d), d["name"]).named_selects) for d in dashboard["datasets"]}
    used = set()
    names = []
    for page in dashboard["pages"]:
        for item in page["layout"]:
            widget, position = item["widget"], item["position"]
            names.append(widget["name"])
            assert position["x"] >= 0 and position["x"] + position["width"] <= 6, f"{widget['name']} is off the 6-column grid"
            for query in widget.get("queries", []):
                dataset = query["query"]["datasetName"]
                assert dataset in outputs, f"{widget['name']}: unknown dataset {dataset}"
                used.add(dataset)
                fields = {f["name"] for f in query["query"]["fields"]}
                for field in query["query"]["fields"]:
                    for column in re.findall(r"`([^`]+)`", field["expression"]):
                        assert column in outputs[dataset], f"{widget['name']}: {dataset} returns no column {column!r}"
                for encoding in _encodings(widget.get("spec", {})):
                    assert encoding["fieldName"] in fields, f"{widget['name']}: encoding {encoding['fieldName']!r} has no field"
    assert len(names) == len(set(names)), "widget names must be unique"
    assert used == set(outputs), f"datasets on no widget: {sorted(set(outputs) - used)}"


def _encodings(spec: dict):
    for value in spec.get("encodings", {}).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "fieldName" in item:
                yield item


# -- the queries on the local demo lakehouse -----------------------------------------------------------------


@pytest.fixture(scope="module")
def gold(e2e_lakehouse) -> dict[str, list]:
    return {name.split(".")[1]: e2e_lakehouse.read(name).collect() for name in GOLD}


@pytest.fixture(scope="module")
def results(e2e_lakehouse) -> dict[str, list]:
    from lakehouse_local.sql import run_sql

    return {name: run_sql(e2e_lakehouse, _query_text(name)).collect() for name in QUERIES}


@pytest.mark.e2e
@pytest.mark.parametrize("name", QUERIES)
def test_query_runs_on_the_demo_lakehouse_and_returns_rows(results, name):
    rows = results[name]
    assert len(rows) >= 1, f"{name}.sql returned no rows"
    expected = check_gold_query(_query_text(name), name).named_selects
    assert list(rows[0].asDict()) == expected


@pytest.mark.e2e
def test_dau_trend_matches_daily_kpis(results, gold):
    newest = max(r.event_date for r in gold["daily_kpis"])
    kpis = {r.event_date: r for r in gold["daily_kpis"] if r.event_date > newest - timedelta(days=30)}
    rows = results["dau_trend"]
    assert [r.event_date for r in rows] == sorted(kpis)
    for row in rows:
        assert row.active_users == kpis[row.event_date].active_users
        assert row.events == kpis[row.event_date].events
    window = [kpis[d].active_users for d in sorted(kpis) if rows[-1].event_date - timedelta(days=6) <= d]
    assert rows[-1].active_users_7d_avg == round(sum(window) / len(window), 1)


@pytest.mark.e2e
def test_conversion_rate_matches_daily_kpis(results, gold):
    kpis = {r.event_date: r for r in gold["daily_kpis"]}
    for row in results["conversion_rate"]:
        assert row.conversion_rate == kpis[row.event_date].conversion_rate
        assert 0.0 <= row.conversion_rate_7d <= 1.0
    first = results["conversion_rate"][0]
    assert first.conversion_rate_7d == round(first.converted_sessions / first.sessions, 4)


@pytest.mark.e2e
def test_funnel_lists_the_four_steps_per_day_in_order(results, gold):
    by_day: dict = {}
    for row in results["funnel"]:
        by_day.setdefault(row.event_date, []).append(row)
    assert set(by_day) <= {r.event_date for r in gold["funnel_daily"]}
    for steps in by_day.values():
        assert [s.step for s in steps] == ["view", "click", "add_to_cart", "purchase"]
        if steps[0].sessions:
            assert steps[0].share_of_first_step == 1.0
        assert steps[0].share_of_previous_step is None


@pytest.mark.e2e
def test_events_per_minute_covers_the_newest_three_hours(results, gold):
    newest = max(r.window_start for r in gold["events_per_minute"])
    expected = [r for r in gold["events_per_minute"] if r.window_start >= newest - timedelta(hours=3)]
    rows = results["events_per_minute"]
    assert sum(r.events for r in rows) == sum(r.events for r in expected)
    assert all(r.window_end - r.window_start == timedelta(minutes=1) for r in rows)
    assert rows[-1].window_start == newest


@pytest.mark.e2e
def test_traffic_by_device_country_adds_up(results, gold):
    newest = max(r.event_date for r in gold["traffic_daily"])
    expected = sum(r.events for r in gold["traffic_daily"] if r.event_date > newest - timedelta(days=7))
    rows = results["traffic_by_device_country"]
    assert sum(r.events for r in rows) == expected
    assert sum(r.share_of_events for r in rows) == pytest.approx(1.0, abs=1e-3)
    assert [r.events for r in rows] == sorted((r.events for r in rows), reverse=True)


@pytest.mark.e2e
def test_top_pages_ranks_by_views(results, gold):
    rows = results["top_pages"]
    assert 1 <= len(rows) <= 20
    assert rows[0].page_rank == 1
    assert [r.views for r in rows] == sorted((r.views for r in rows), reverse=True)
    newest = max(r.event_date for r in gold["top_pages_daily"])
    views: dict[str, int] = {}
    for r in gold["top_pages_daily"]:
        if r.event_date > newest - timedelta(days=7):
            views[r.page] = views.get(r.page, 0) + r.views
    assert rows[0].views == max(views.values())


@pytest.mark.e2e
def test_new_and_returning_users_add_up_to_the_daily_active_users(results, gold):
    dau = {r.event_date: r.active_users for r in gold["daily_kpis"]}
    rows = results["new_vs_returning_users"]
    assert rows and [r.event_date for r in rows] == sorted(r.event_date for r in rows)
    for row in rows:
        assert row.active_users == dau[row.event_date] == row.new_users + row.returning_users
    first_day = min(r.event_date for r in gold["daily_kpis"])
    assert rows[0].event_date == first_day and rows[0].returning_users == 0  # nobody returns on the first day
    days = {r.event_date for r in rows}
    assert sum(r.new_users for r in rows) == sum(1 for c in gold["customer_features"] if c.first_seen.date() in days)


@pytest.mark.e2e
def test_session_lengths_count_every_session_of_the_newest_7_days_once(results, gold):
    newest = max(r.session_date for r in gold["sessions"])
    sessions = [r for r in gold["sessions"] if r.session_date > newest - timedelta(days=7)]
    rows = results["session_length_distribution"]
    assert sum(r.sessions for r in rows) == len(sessions)
    assert sum(r.share_of_sessions for r in rows) == pytest.approx(1.0, abs=1e-3)
    single = next(r for r in rows if r.band_order == 1)
    assert (single.length_band, single.sessions) == ("single event", sum(1 for s in sessions if s.duration_s == 0))


@pytest.mark.e2e
def test_funnel_by_entry_page_type_splits_each_days_sessions(results, gold):
    rows = results["funnel_by_page_type"]
    per_day: dict = {}
    for row in rows:
        per_day[row.session_date] = per_day.get(row.session_date, 0) + row.sessions
        assert row.sessions >= row.sessions_with_click >= 0 and row.sessions >= row.converted_sessions
    for day, count in per_day.items():
        assert count == sum(1 for s in gold["sessions"] if s.session_date == day)
    assert {r.entry_page_type for r in rows} <= {"home", "category", "product", "cart", "checkout", "search", "other"}


# -- Unity Catalog setup ----------------------------------------------------------------------------------

GRANT = re.compile(r"GRANT\s+(?P<privileges>.+?)\s+ON\s+(?P<kind>CATALOG|SCHEMA|VOLUME|EXTERNAL LOCATION)\s+(?P<target>\S+)\s+TO\s+`(?P<principal>[^`]+)`", re.S)


def _statements(path: Path, values: dict[str, str]) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(values), f"{path.name}: placeholders {sorted(placeholders)}"
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return [" ".join(s.split()) for s in text.split(";") if s.strip()]


def _grants(statements: list[str]) -> list[tuple[set[str], str, str, str]]:
    grants = []
    for statement in statements:
        if statement.upper().startswith("GRANT"):
            match = GRANT.fullmatch(statement)
            assert match, f"cannot read grant: {statement}"
            privileges = {p.strip().upper() for p in match["privileges"].split(",")}
            grants.append((privileges, match["kind"], match["target"].replace("`", ""), match["principal"]))
    return grants


def test_unity_catalog_setup_creates_every_layer_and_the_checkpoint_volume():
    statements = _statements(SETUP_DIR / "unity_catalog.sql", {"catalog": "clickstream", "bucket": "example-bucket"})
    text = "\n".join(statements)
    assert "CREATE CATALOG IF NOT EXISTS `clickstream` MANAGED LOCATION 's3://example-bucket/lakehouse/clickstream'" in text
    schemas = re.findall(r"CREATE SCHEMA IF NOT EXISTS `clickstream`\.(\w+)", text)
    assert schemas == list(catalog.LAYERS)
    # The job's checkpoint_root is /Volumes/<catalog>/ops/checkpoints.
    assert "CREATE VOLUME IF NOT EXISTS `clickstream`.ops.checkpoints" in text
    for statement in statements:
        if statement.startswith("CREATE SCHEMA"):
            assert sqlglot.parse_one(statement, read="databricks") is not None


def test_analysts_read_gold_only_and_engineers_work_on_every_layer():
    grants = _grants(_statements(SETUP_DIR / "unity_catalog.sql", {"catalog": "clickstream", "bucket": "b"}))
    analysts = [(p, kind, target) for p, kind, target, who in grants if who == "clickstream_analysts"]
    assert sorted(analysts, key=str) == sorted(
        [({"USE CATALOG"}, "CATALOG", "clickstream"), ({"USE SCHEMA", "SELECT"}, "SCHEMA", "clickstream.gold")], key=str
    )
    engineers = {target: p for p, kind, target, who in grants if who == "clickstream_engineers" and kind == "SCHEMA"}
    assert set(engineers) == {f"clickstream.{layer}" for layer in catalog.LAYERS}
    for target, privileges in engineers.items():
        assert {"USE SCHEMA", "SELECT", "MODIFY", "CREATE TABLE"} <= privileges, target
    assert {who for *_, who in grants} == {"clickstream_analysts", "clickstream_engineers"}


def test_external_locations_cover_the_lakehouse_prefix_and_grant_on_the_read_only_landing_location():
    values = {"bucket": "example-bucket", "storage_credential": "clickstream_s3"}
    statements = _statements(SETUP_DIR / "external_locations.sql", values)
    urls = dict(re.findall(r"CREATE EXTERNAL LOCATION IF NOT EXISTS (\w+) URL '([^']+)'", "\n".join(statements)))
    # The landing location is created read-only by the CLI (SQL has no read-only option): see
    # tests/databricks/test_run_on_databricks.py for that command.
    assert urls == {"clickstream_lakehouse": "s3://example-bucket/lakehouse"}
    grants = _grants(statements)
    assert ({"READ FILES"}, "EXTERNAL LOCATION", "clickstream_landing", "clickstream_engineers") in grants
    assert not any("WRITE FILES" in p for p, *_ in grants), "writes go through Unity Catalog tables and volumes"
