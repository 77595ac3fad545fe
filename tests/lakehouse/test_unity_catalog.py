"""The Databricks table layer, checked by the calls it makes: Delta Lake's writer and MERGE are faked, so a
typo in a MERGE condition, an idempotency option or a table name fails here, not first on a workspace."""

from __future__ import annotations

from datetime import date

import pytest

from lakehouse import catalog
from lakehouse.unity_catalog import UnityCatalogLakehouse

CHECKPOINTS = "/Volumes/clickstream/ops/checkpoints"


class Recorder:
    """Records every call made on it and on what its calls return, as (path, args, kwargs)."""

    def __init__(self, log: list, path: str = "") -> None:
        self._log, self._path = log, path

    def __getattr__(self, name: str) -> Recorder:
        return Recorder(self._log, f"{self._path}.{name}" if self._path else name)

    def __call__(self, *args, **kwargs) -> Recorder:
        self._log.append((self._path, args, kwargs))
        return Recorder(self._log, self._path + "()")


class FakeFrame(Recorder):
    """A source DataFrame: selecting or deduplicating it gives it back, its writer records."""

    def select(self, *columns) -> FakeFrame:
        self._log.append(("select", tuple(str(c) for c in columns), {}))
        return self

    def selectExpr(self, *expressions) -> FakeFrame:  # noqa: N802 - PySpark's name
        self._log.append(("select", tuple(expressions), {}))
        return self

    def dropDuplicates(self, keys) -> FakeFrame:  # noqa: N802 - PySpark's name
        self._log.append(("dropDuplicates", (list(keys),), {}))
        return self

    def withColumn(self, name: str, column) -> FakeFrame:  # noqa: N802 - PySpark's name
        self._log.append(("withColumn", (name,), {}))
        return self

    def alias(self, name: str) -> FakeFrame:
        self._log.append(("alias", (name,), {}))
        return self


class FakeSession(Recorder):
    def __init__(self, log: list, existing: set[str] = frozenset(), catalogs: tuple[str, ...] = ("clickstream",)) -> None:
        super().__init__(log, "spark")
        self.existing = existing
        self.catalogs = catalogs

    def sql(self, text: str):
        self._log.append(("spark.sql", (" ".join(text.split()),), {}))

        catalogs = self.catalogs

        class Result:
            def collect(self) -> list:  # SHOW CATALOGS
                return [("catalog", name) for name in catalogs if f"LIKE '{name}'" in text]

        return Result()

    @property
    def catalog(self):
        existing = self.existing

        class Catalog:
            def tableExists(self, name: str) -> bool:  # noqa: N802 - PySpark's name
                return name in existing

        return Catalog()


@pytest.fixture
def calls(spark):  # the Spark session makes column expressions; nothing runs on it
    return []


def _lakehouse(calls, existing=frozenset()):
    return UnityCatalogLakehouse(FakeSession(calls, existing), "clickstream", checkpoint_root=CHECKPOINTS)


def test_append_is_a_delta_save_with_the_stream_and_batch_as_txn_app_id_and_version(calls):
    _lakehouse(calls).append(FakeFrame(calls), "silver.events", app_id="silver.events:abc", batch_id=7)

    writes = [(path, args) for path, args, _ in calls if path.startswith("write")]
    assert writes == [
        ("write.format", ("delta",)),
        ("write.format().option", ("txnAppId", "silver.events:abc")),
        ("write.format().option().option", ("txnVersion", 7)),
        ("write.format().option().option().mode", ("append",)),
        ("write.format().option().option().mode().saveAsTable", ("`clickstream`.`silver`.`events`",)),
    ]
    selected = next(args for path, args, _ in calls if path == "select")
    assert len(selected) == len(catalog.SILVER_EVENTS.columns)  # the table's columns, in its order


@pytest.fixture
def fake_delta_table(monkeypatch, calls):
    """``delta.tables.DeltaTable`` replaced by a recorder of its calls."""
    import delta.tables

    monkeypatch.setattr(delta.tables, "DeltaTable", Recorder(calls, "DeltaTable"))


def _merge_calls(calls):
    return [(path.replace("()", ""), args, kwargs) for path, args, kwargs in calls if path.startswith("DeltaTable")]


@pytest.mark.usefixtures("fake_delta_table")
def test_upsert_merges_null_safely_on_the_keys(calls):
    lakehouse = _lakehouse(calls)
    lakehouse.upsert(FakeFrame(calls), "ops.pipeline_metrics", app_id="ops", batch_id=3)

    keys = catalog.PIPELINE_METRICS.keys
    assert ("dropDuplicates", (list(keys),), {}) in calls
    condition = " AND ".join(f"target.`{k}` <=> source.`{k}`" for k in keys)
    merge = _merge_calls(calls)
    assert merge[0][0] == "DeltaTable.forName" and merge[0][1][1] == "`clickstream`.`ops`.`pipeline_metrics`"
    assert [(path.rsplit(".", 1)[-1], args, kwargs) for path, args, kwargs in merge[1:]] == [
        ("alias", ("target",), {}),
        ("merge", (merge[2][1][0], condition), {}),
        ("whenMatchedUpdateAll", (), {}),
        ("whenNotMatchedInsertAll", (), {}),
        ("execute", (), {}),
    ]


@pytest.mark.usefixtures("fake_delta_table")
def test_accumulate_adds_to_matched_rows_unless_they_carry_the_batch_already(calls):
    _lakehouse(calls).accumulate(
        FakeFrame(calls), "gold.traffic_daily", add=["events", "active_users"], batch_id=9,
    )

    condition = " AND ".join(f"target.`{k}` <=> source.`{k}`" for k in catalog.TRAFFIC_DAILY.keys)
    merge = [(path.rsplit(".", 1)[-1], args, kwargs) for path, args, kwargs in _merge_calls(calls)]
    assert merge[2][1][1] == condition
    assert merge[3] == (
        "whenMatchedUpdate",
        (),
        {
            "condition": "target.`_batch_id` IS DISTINCT FROM source.`_batch_id`",
            "set": {
                "events": "target.`events` + source.`events`",
                "active_users": "target.`active_users` + source.`active_users`",
                "_batch_id": "source.`_batch_id`",
            },
        },
    )
    assert [step for step, _, _ in merge[4:]] == ["whenNotMatchedInsertAll", "execute"]


@pytest.mark.usefixtures("fake_delta_table")
def test_insert_only_upsert_leaves_matched_rows_alone(calls):
    _lakehouse(calls).upsert(FakeFrame(calls), "silver.quarantine", app_id="q", batch_id=0, when_matched="ignore")

    steps = [path.rsplit(".", 1)[-1] for path, _, _ in _merge_calls(calls)]
    assert steps == ["forName", "alias", "merge", "whenNotMatchedInsertAll", "execute"]
    merge = next(args for path, args, _ in _merge_calls(calls) if path.endswith(".merge"))
    assert merge[1] == "target.`_record_id` <=> source.`_record_id`"


@pytest.mark.usefixtures("fake_delta_table")
def test_an_upsert_within_a_partition_range_matches_only_rows_in_those_partitions(calls):
    _lakehouse(calls).upsert(FakeFrame(calls), "gold.sessions", app_id="m", batch_id=2,
                             within=(date(2026, 11, 16), date(2026, 11, 24)))

    merge = next(args for path, args, _ in _merge_calls(calls) if path.endswith(".merge"))
    assert merge[1] == (
        "target.`session_id` <=> source.`session_id` AND "
        "target.`_end_date` >= '2026-11-16' AND target.`_end_date` <= '2026-11-24'"
    )


@pytest.mark.usefixtures("fake_delta_table")
def test_apply_changes_deletes_flagged_keys_and_replaces_or_inserts_the_rest(calls):
    _lakehouse(calls).apply_changes(FakeFrame(calls), "gold.dim_user", app_id="m", batch_id=2,
                                    within=(date(2026, 11, 20), date(9999, 12, 31)))

    selected = next(args for path, args, _ in calls if path == "select")
    assert selected[-1] == "`_delete`" and len(selected) == len(catalog.DIM_USER.columns) + 1
    merge = [(path.rsplit(".", 1)[-1], args, kwargs) for path, args, kwargs in _merge_calls(calls)]
    assert merge[2][1][1] == (
        "target.`user_key` <=> source.`user_key` AND "
        "target.`_valid_to_date` >= '2026-11-20' AND target.`_valid_to_date` <= '9999-12-31'"
    )
    values = {c: f"source.`{c}`" for c in catalog.DIM_USER.column_names}
    assert merge[3:] == [
        ("whenMatchedDelete", (), {"condition": "source.`_delete`"}),
        ("whenMatchedUpdate", (), {"set": values}),
        ("whenNotMatchedInsert", (), {"condition": "NOT source.`_delete`", "values": values}),
        ("execute", (), {}),
    ]


@pytest.mark.usefixtures("fake_delta_table")
def test_no_spark_conf_is_set_and_nothing_is_cached(calls):
    lakehouse = _lakehouse(calls)
    lakehouse.upsert(FakeFrame(calls), "gold.daily_kpis", app_id="g", batch_id=1)
    lakehouse.append(FakeFrame(calls), "bronze.events", app_id="b", batch_id=1)

    assert not [path for path, _, _ in calls if path.startswith("spark.conf") or "persist" in path or "cache" in path]


def test_ddl_creates_every_layer_schema_in_the_existing_catalog(calls):
    lakehouse = _lakehouse(calls)
    lakehouse.create_schemas()
    created = lakehouse.create_table(catalog.DAILY_KPIS)

    statements = [args[0] for path, args, _ in calls if path == "spark.sql"]
    assert statements[0] == "SHOW CATALOGS LIKE 'clickstream'"
    assert not [s for s in statements if "CATALOG" in s.split(" LIKE")[0] and not s.startswith("SHOW")]
    assert [s.split(" COMMENT")[0] for s in statements[1:5]] == [
        f"CREATE SCHEMA IF NOT EXISTS `clickstream`.`{layer}`" for layer in catalog.LAYERS
    ]
    assert statements[5].startswith("CREATE TABLE IF NOT EXISTS `clickstream`.`gold`.`daily_kpis` (`event_date` DATE COMMENT")
    assert statements[5].endswith(
        "USING DELTA COMMENT 'Daily KPIs over deduplicated, valid events; day = DATE(event_time) in UTC.' "
        "TBLPROPERTIES ('delta.autoOptimize.autoCompact' = 'auto', 'delta.checkpointInterval' = '10')"
    )
    assert created is True
    assert _lakehouse([], existing={"clickstream.gold.daily_kpis"}).create_table(catalog.DAILY_KPIS) is False


def test_retention_statements_update_then_vacuum_each_table_with_raw_text(calls):
    from datetime import UTC, datetime

    from lakehouse.pipeline import retention

    retention.purge_raw_lines(_lakehouse(calls), retention_days=30, now=datetime(2026, 12, 31, tzinfo=UTC))

    statements = [args[0] for path, args, _ in calls if path == "spark.sql"]
    assert [s.split(" SET")[0] for s in statements] == [
        "UPDATE `clickstream`.`bronze`.`events`", "VACUUM `clickstream`.`bronze`.`events`",
        "UPDATE `clickstream`.`silver`.`quarantine`", "VACUUM `clickstream`.`silver`.`quarantine`",
    ]


def test_a_missing_catalog_is_refused_with_how_to_create_it_and_nothing_is_created(calls):
    lakehouse = UnityCatalogLakehouse(FakeSession(calls, catalogs=()), "clickstream", checkpoint_root=CHECKPOINTS)

    with pytest.raises(LookupError, match=r"catalog 'clickstream' does not exist.*databricks/setup/unity_catalog\.sql"):
        lakehouse.create_schemas()
    assert [args[0] for path, args, _ in calls if path == "spark.sql"] == ["SHOW CATALOGS LIKE 'clickstream'"]


def test_a_path_is_refused_as_a_catalog_and_a_checkpoint_root_is_required():
    with pytest.raises(ValueError, match="Unity Catalog: pass a catalog name"):
        UnityCatalogLakehouse(None, ".lakehouse/demo", checkpoint_root=CHECKPOINTS)
    with pytest.raises(ValueError, match="checkpoint_root"):
        UnityCatalogLakehouse(None, "clickstream")
