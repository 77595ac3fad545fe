"""The declarative pipeline in the bundle (resources/clickstream.pipeline.yml): valid for the CLI, serverless,
publishing to the job's catalog in a schema of its own, running the definitions with the job's wheel and
configured from the job's variables."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from bundle_config import SERVERLESS, TARGETS, WHEEL, BundleValidator, load_bundle, resolved, schema, target_config
from bundle_config import errors as schema_errors
from bundle_config import job_parameters as resolved_job_parameters
from support import REPO_ROOT

from lakehouse import catalog
from lakehouse.declarative import datasets
from lakehouse.declarative.settings import PipelineSettings, key
from lakehouse_local.declarative import DEFINITIONS, LocalPipeline, settings_for

PIPELINE = "clickstream_declarative"
JOB = "clickstream_pipeline"
# Settings the definitions read that the job's parameters also carry, under the same name.
SHARED_SETTINGS = ("landing_path", "max_files_per_trigger", "max_table_files_per_trigger", "max_lateness_hours",
                   "future_tolerance_minutes")


@pytest.fixture(scope="module")
def bundle() -> dict:
    return load_bundle()


@pytest.fixture(scope="module")
def pipeline(bundle) -> dict:
    return bundle["resources"]["pipelines"][PIPELINE]


@pytest.fixture(scope="module")
def pipeline_file(bundle) -> Path:
    return bundle["sources"][("pipelines", PIPELINE)]


def test_the_pipeline_file_is_valid_against_the_cli_schema(pipeline_file):
    validator = BundleValidator(schema())
    config = {"resources": {"pipelines": {PIPELINE: load_bundle()["resources"]["pipelines"][PIPELINE]}}}
    assert schema_errors(validator, config) == [], pipeline_file.name
    # A misspelled field is caught, so the check above means something.
    config["resources"]["pipelines"][PIPELINE]["serverles"] = True
    assert schema_errors(validator, config) != []


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_deploys_the_pipeline_serverless_into_its_catalog(bundle, target):
    deployed = resolved(bundle, target)
    pipeline = deployed["resources"]["pipelines"][PIPELINE]
    assert pipeline["serverless"] is True and "clusters" not in pipeline
    assert pipeline["continuous"] is False, "each update processes what has landed and stops, as the job's streams"
    assert pipeline["catalog"] == deployed["variables"]["catalog"]["default"], "the job's catalog"
    assert pipeline["event_log"]["catalog"] == pipeline["catalog"]
    assert pipeline["event_log"]["schema"] == pipeline["schema"]


def test_dev_and_prod_publish_to_the_catalog_of_their_target(bundle):
    dev = resolved(bundle, "dev")["resources"]["pipelines"][PIPELINE]
    prod = resolved(bundle, "prod")["resources"]["pipelines"][PIPELINE]
    assert dev["catalog"] == "clickstream_dev_jane_doe" and prod["catalog"] == "clickstream"
    assert dev["schema"] == prod["schema"] == "declarative"


def test_its_schema_is_none_of_the_notebooks_layers(bundle, pipeline):
    assert pipeline["catalog"] == "${var.catalog}" and pipeline["schema"] == "${var.declarative_schema}"
    assert bundle["root"]["variables"]["declarative_schema"]["default"] not in catalog.LAYERS, (
        "the two editions must never write the same table"
    )


def test_the_definitions_are_uploaded_and_every_one_is_a_library(bundle, pipeline, pipeline_file):
    (library,) = pipeline["libraries"]
    include = library["glob"]["include"]
    assert include.endswith("/**")
    folder = (pipeline_file.parent / include.removesuffix("/**")).resolve()
    assert folder == DEFINITIONS and sorted(folder.glob("*.py")), "the folder the local runner runs"
    assert (pipeline_file.parent / pipeline["root_path"]).resolve() == DEFINITIONS
    synced = [(REPO_ROOT / path).resolve() for path in bundle["root"]["sync"]["paths"]]
    assert any(folder.is_relative_to(path) for path in synced), "libraries must be uploaded with the bundle"
    assert not (REPO_ROOT / "databricks" / "__init__.py").exists(), "databricks/ is the databricks-sdk namespace"


def test_the_pipeline_installs_the_wheel_the_job_installs(bundle, pipeline, pipeline_file):
    assert pipeline["environment"]["dependencies"] == [WHEEL]
    job_file = bundle["sources"][("jobs", JOB)]
    assert pipeline_file.parent == job_file.parent, "the same relative path names the same built wheel"
    for target in SERVERLESS:
        (environment,) = target_config(bundle, target)["resources"]["jobs"][JOB]["environments"]
        assert environment["spec"]["dependencies"] == [WHEEL]


def test_the_configuration_is_every_setting_the_definitions_read(pipeline):
    names = {f.name for f in dataclasses.fields(PipelineSettings)}
    assert set(pipeline["configuration"]) == {key(name) for name in names}


@pytest.mark.parametrize("target", TARGETS)
def test_the_settings_both_editions_take_come_from_the_same_variables(bundle, target):
    deployed = resolved(bundle, target)
    configuration = deployed["resources"]["pipelines"][PIPELINE]["configuration"]
    job = target_config(bundle, target)["resources"]["jobs"][JOB]
    parameters = resolved_job_parameters(job, target, bundle)
    for name in SHARED_SETTINGS:
        assert str(configuration[key(name)]) == parameters[name], name
    # And they read back as the settings the definitions use.
    settings = PipelineSettings.from_conf({k: str(v) for k, v in configuration.items()})
    assert settings.landing_path == parameters["landing_path"]
    assert settings.max_lateness_hours == float(parameters["max_lateness_hours"])


def test_the_hmac_key_is_a_secret_reference_to_the_jobs_secret(pipeline):
    assert pipeline["configuration"][key("hmac_key")] == "{{secrets/${var.hmac_secret}}}"


def test_the_local_spec_runs_the_same_definitions_with_the_same_configuration_keys(pipeline, tmp_path):
    local = LocalPipeline(tmp_path)
    files = [path for step, _ in local.steps() for path in step]
    assert set(files) == set(DEFINITIONS.glob("*.py")), "the local run registers every definitions file"
    spec = local.spec(settings_for("s3://bucket/landing"), sorted(DEFINITIONS.glob("*.py")))
    shipped = {name for name in spec["configuration"] if name.startswith("clickstream.")}
    assert shipped == set(pipeline["configuration"])


def test_the_definitions_import_nothing_local(pipeline_file):
    local_only = {"lakehouse_local", "producer", "pyspark_cloudfiles", "benchmarks", "boto3", "moto", "deltalake"}
    for path in sorted(DEFINITIONS.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert imported <= {"pyspark", "lakehouse"}, (path.name, imported)
        assert not imported & local_only


def test_the_setup_sql_creates_the_schema_and_grants_analysts_the_gold_views_only(bundle):
    text = (REPO_ROOT / "databricks" / "setup" / "declarative_schema.sql").read_text()
    assert "CREATE SCHEMA IF NOT EXISTS `${catalog}`.`${schema}`" in text
    analysts = re.findall(r"GRANT SELECT ON TABLE `\$\{catalog\}`\.`\$\{schema\}`\.(\w+) TO `clickstream_analysts`", text)
    assert sorted(analysts) == sorted(datasets.NAMES[name] for name in {**datasets.GOLD, **datasets.MODEL})
    assert not re.search(r"^GRANT SELECT ON SCHEMA .* `clickstream_analysts`", text, re.MULTILINE), (
        "the schema holds raw lines: analysts get the Gold views, not the schema"
    )


def test_the_readme_deploys_runs_and_sets_up_the_pipeline_it_defines(pipeline):
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("### Deploy and run it on Databricks")
    section = text[start:text.index("\n## ", start)]
    commands = [line for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]
    assert f"databricks bundle run -t dev {PIPELINE}" in commands
    (render,) = [c for c in commands if c.startswith("sed ") and "declarative_schema.sql" in c]
    sql = (REPO_ROOT / "databricks" / "setup" / "declarative_schema.sql").read_text()
    statements = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    placeholders = set(re.findall(r"\$\{(\w+)\}", statements))
    assert set(re.findall(r"s/\\\$\{(\w+)\}/", render)) == placeholders == {"catalog", "schema"}
