"""The local runner of the declarative edition: its spec, its two steps, what the Connect server starts with,
and the pieces that let spark-pipelines reach the local ``cloudFiles`` source."""

from __future__ import annotations

import pkgutil
from importlib import import_module
from pathlib import Path

import pytest
from pyspark.sql.datasource import DataSource

from lakehouse.declarative import datasets
from lakehouse.declarative.settings import key
from lakehouse_local import declarative_update
from lakehouse_local.declarative import DEDUP_DEFINITIONS, DEFINITIONS, PROGRESS, LocalPipeline, settings_for
from lakehouse_local.sources.cloudfiles import CloudFilesOptions
from lakehouse_local.sources.cloudfiles.source import STATE_ROOT_ENV, CloudFilesDataSource, default_schema_location


def test_the_spec_names_each_definitions_file_in_order_with_the_configuration(tmp_path):
    local = LocalPipeline(tmp_path / "run")
    files = sorted(DEFINITIONS.glob("*.py"))
    spec = local.spec(settings_for("s3://bucket/landing", max_table_files_per_trigger=1), files)
    includes = [library["glob"]["include"] for library in spec["libraries"]]
    assert [(local.folder / include).resolve() for include in includes] == files
    assert spec["storage"] == (tmp_path / "run" / "storage").as_uri()
    assert spec["configuration"][key("landing_path")] == "s3://bucket/landing"
    assert spec["configuration"][key("max_table_files_per_trigger")] == "1"
    assert spec["configuration"]["spark.sql.shuffle.partitions"] == "2", "the local session's runtime settings"


def test_an_update_runs_up_to_the_deduplicated_table_then_everything_refreshing_what_follows(tmp_path):
    (first, everything_before), (files, refreshed) = LocalPipeline(tmp_path).steps()
    assert everything_before == [], "the first step refreshes all it registers"
    assert [p.name for p in first] == [p.name for p in files if p.name < DEDUP_DEFINITIONS]
    assert files == sorted(DEFINITIONS.glob("*.py"))
    assert refreshed[0] == "silver_events" and "daily_kpis" in refreshed
    assert not {"bronze_landed", "silver_arrivals", "silver_quarantine"} & set(refreshed)


def test_an_update_runs_its_steps_in_one_spark_pipelines_process(tmp_path):
    command = LocalPipeline(tmp_path).command()
    assert command[1:3] == ["org.apache.spark.deploy.SparkPipelines", declarative_update.__file__]
    assert Path(command[0]).name == "spark-class" and Path(command[0]).exists()
    assert command[-1] == str((tmp_path / "update.json").resolve()), "the plan: each step's spec and refresh"


def test_the_connect_server_gets_few_settings_so_pyspark_keeps_them_all(tmp_path):
    conf = LocalPipeline(tmp_path).spark_conf()
    # pyspark 4.2.0 keeps only the last group of ten of spark-submit's settings (six are its own).
    assert len(conf) <= 4
    assert conf["spark.sql.catalogImplementation"] == "hive", "a metastore that outlives the run"
    assert conf["spark.sql.warehouse.dir"] == str((tmp_path / "spark-warehouse").resolve())


def test_the_pipelines_jvm_compiles_as_the_local_sessions_do_with_flags_of_your_own_last(tmp_path, monkeypatch):
    from lakehouse_local.session import FIRST_TIER_JIT, JAVA_OPTIONS_ENV, THROUGHPUT_GC

    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Dexisting=1")
    monkeypatch.setenv(JAVA_OPTIONS_ENV, "-XX:TieredStopAtLevel=4")
    flags = LocalPipeline(tmp_path).environment()["JAVA_TOOL_OPTIONS"]
    assert flags == f"-Dexisting=1 {FIRST_TIER_JIT} {THROUGHPUT_GC} -XX:TieredStopAtLevel=4"


def test_only_lines_that_end_something_are_echoed():
    assert PROGRESS.match("2026-12-01 00:07:33: Flow spark_catalog.default.silver_quarantine has COMPLETED.")
    assert PROGRESS.match("2026-12-01 00:07:35: Run is COMPLETED.")
    assert PROGRESS.match("2026-12-01 00:07:35: Flow spark_catalog.default.x is FAILED.")
    assert not PROGRESS.match("2026-12-01 00:07:33: Flow spark_catalog.default.silver_quarantine is RUNNING.")


def test_the_warehouse_reader_finds_tables_by_either_name(spark, tmp_path):
    from lakehouse_local.declarative import WarehouseTables

    tables = WarehouseTables(spark, tmp_path)
    assert tables.path("gold.daily_kpis") == tmp_path / "daily_kpis"
    assert tables.path("silver.events") == tables.path("silver_events") == tmp_path / "silver_events"
    assert set(datasets.NAMES) >= {"bronze.landed", "silver.quarantine", "silver.duplicates"}


# -- cloudFiles in a declarative pipeline ----------------------------------------------------------------


def test_spark_finds_the_cloudfiles_source_package_as_it_looks_for_them():
    # What Spark runs when it starts (pyspark.sql.worker.lookup_data_sources): every pyspark_* module's DefaultSource.
    found = {}
    for info in pkgutil.iter_modules():
        if info.name.startswith("pyspark_"):
            module = import_module(info.name)
            if issubclass(getattr(module, "DefaultSource", object), DataSource):
                found[module.DefaultSource.name()] = module.DefaultSource
    assert found.get("cloudFiles") is CloudFilesDataSource


def _options(path: str, **extra) -> CloudFilesOptions:
    return CloudFilesDataSource({"path": path, "cloudFiles.format": "binaryFile", **extra}).cloud_files


def test_a_stream_that_names_no_schema_location_keeps_its_discovery_log_under_the_state_root(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path))
    location = default_schema_location(_options("s3://bucket/landing"))
    assert Path(location.removeprefix("file://")).parent == tmp_path
    # The same files read: the same log, whatever the batch size; other files: another log.
    assert default_schema_location(_options("s3://bucket/landing", **{"cloudFiles.maxFilesPerTrigger": "3"})) == location
    assert default_schema_location(_options("s3://bucket/other")) != location


def test_without_a_state_root_a_stream_must_name_its_schema_location(monkeypatch):
    monkeypatch.delenv(STATE_ROOT_ENV, raising=False)
    with pytest.raises(ValueError, match=rf"cloudFiles\.schemaLocation.*\${STATE_ROOT_ENV}"):
        default_schema_location(_options("s3://bucket/landing"))


def test_a_failed_update_is_reported_from_its_first_error():
    from lakehouse_local.declarative import first_error

    output = "\n".join([
        "26/12/02 20:40:01 INFO SparkContext: Running Spark version 4.2.0",
        "26/12/02 20:40:09 ERROR Utils: Uncaught exception in thread dag-scheduler",
        "java.lang.OutOfMemoryError: Java heap space",
        *(f"\tat frame{i}" for i in range(100)),
        "pyspark.errors.exceptions.connect.SparkConnectGrpcException: Stream removed",
    ])
    first = first_error(output, lines=3).splitlines()
    assert first[0].endswith("ERROR Utils: Uncaught exception in thread dag-scheduler")
    assert first[1] == "java.lang.OutOfMemoryError: Java heap space" and len(first) == 3
    assert first_error("no error here\nat all", lines=1) == "no error here", "its first lines when none is marked"
