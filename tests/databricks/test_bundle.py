"""The Databricks Asset Bundle: databricks.yml and resources/*.yml, checked without the Databricks CLI.

* Every file, and the configuration the CLI deploys for every target (root + included files + the
  target's overrides, merged as the CLI merges them), is valid against the CLI's published bundle JSON
  schema (tests/databricks/resources), before and after variables are resolved; a misspelled field fails.
* Four targets: dev and prod, each on serverless (default) and on a classic job cluster; a target and its
  _classic twin are one deployment (one root_path). Every task runs with the wheel of the ``lakehouse``
  package: a job environment on serverless, a task library on the job cluster.
* Production is one shared deployment, run as a service principal, engineers manage, analysts view.
* The job runs the notebooks 00 -> 04 in the order the local runner does, each task after the one before.
  Its job-level parameters are the widgets the notebooks declare (found by running the notebook's own
  cells against the local ``dbutils.widgets`` stand-in), so no widget keeps its laptop default on
  Databricks, and the values the job passes parse into a ``PipelineConfig``.
* Each task has a timeout (so retry_on_timeout means something); failures and slow runs notify.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
from pathlib import Path

import pytest
from bundle_config import (
    BUNDLE_FILE,
    CLASSIC,
    REQUIRED_VALUES,
    SCHEMA_FILE,
    SERVERLESS,
    TARGETS,
    TWINS,
    WHEEL,
    BundleValidator,
    load_bundle,
)
from bundle_config import (
    declared_widgets as _declared_widgets,
)
from bundle_config import (
    errors as _errors,
)
from bundle_config import (
    job_parameters as _job_parameters,
)
from bundle_config import (
    load as _load,
)
from bundle_config import (
    resolved as _resolved,
)
from bundle_config import (
    schema as _schema,
)
from bundle_config import (
    target_config as _target_config,
)
from bundle_config import (
    target_job as _target_job,
)
from bundle_config import (
    unset_variables as _unset_variables,
)
from bundle_config import (
    variables as _variables,
)
from support import REPO_ROOT

from lakehouse import config
from lakehouse_local.cli import notebook_paths

JOB = "clickstream_pipeline"
DASHBOARD = "clickstream_gold"
STREAM_TASKS = ("bronze", "silver", "gold", "gold_model")
TASKS = ("setup", *STREAM_TASKS)


@pytest.fixture(scope="module")
def bundle() -> dict:
    return load_bundle()


@pytest.fixture(scope="module")
def job(bundle) -> dict:
    return bundle["resources"]["jobs"][JOB]


@pytest.fixture(scope="module")
def tasks(job) -> dict[str, dict]:
    return {task["task_key"]: task for task in job["tasks"]}



@pytest.fixture(scope="module")
def validator():
    schema = _schema()
    BundleValidator.check_schema(schema)
    return BundleValidator(schema)



def test_the_schema_copy_is_the_one_its_readme_names():
    readme = (SCHEMA_FILE.parent / "README.md").read_text()
    assert "github.com/databricks/cli" in readme and "bundle/schema/jsonschema.json" in readme
    digest = hashlib.sha256(gzip.decompress(SCHEMA_FILE.read_bytes())).hexdigest()
    assert digest in readme, "the README's sha256 is that of the stored schema"
    assert {"resources", "targets", "artifacts", "run_as", "permissions"} <= set(_schema()["properties"])


def test_every_bundle_file_is_valid_against_the_cli_schema(bundle, validator):
    for path in bundle["files"]:
        assert _errors(validator, _load(path)) == [], path.name


@pytest.mark.parametrize("target", TARGETS)
def test_the_deployed_configuration_of_every_target_is_valid_against_the_cli_schema(bundle, validator, target):
    assert _errors(validator, _target_config(bundle, target)) == []
    # Resolved: the values variables hold have the types the fields take.
    assert _errors(validator, _resolved(bundle, target)) == []


@pytest.mark.parametrize(
    ("where", "change", "expected"),
    [
        ("task", lambda c: c["resources"]["jobs"][JOB]["tasks"][1].update(max_retrys=3), "max_retrys"),
        ("job", lambda c: c["resources"]["jobs"][JOB].update(max_concurent_runs=1), "max_concurent_runs"),
        ("timeout", lambda c: c["resources"]["jobs"][JOB]["tasks"][0].update(timeout_seconds="an hour"), "an hour"),
        ("health", lambda c: c["resources"]["jobs"][JOB]["health"]["rules"][0].update(metric="RUN_SECONDS"), "RUN_SECONDS"),
        ("artifact", lambda c: c["artifacts"]["lakehouse_wheel"].update(dynamic_versions=True), "dynamic_versions"),
        ("top level", lambda c: c.update(permisions=[]), "permisions"),
        ("reference", lambda c: c["resources"]["jobs"][JOB].update(max_concurrent_runs="${var.max runs}"), "max runs"),
    ],
)
def test_a_misspelled_or_mistyped_field_fails_the_schema_check(bundle, validator, where, change, expected):
    for target in ("dev", "prod_classic"):
        config = _target_config(bundle, target)
        change(config)
        errors = _errors(validator, config)
        assert errors, f"{where}: the schema check let a mistake through"
        assert any(expected in error for error in errors), errors


def test_a_misspelled_field_in_a_target_override_fails_the_schema_check(bundle, validator):
    job_file = _load(bundle["sources"][("jobs", JOB)])
    job_file["targets"]["dev_classic"]["resources"]["jobs"][JOB]["job_clusters"][0]["new_cluster"]["num_worker"] = 1
    assert any("num_worker" in error for error in _errors(validator, job_file))


# -- targets: two deployments x two compute choices -------------------------------------------------------


def test_dev_and_prod_targets_each_on_serverless_and_classic_compute(bundle):
    targets = bundle["root"]["targets"]
    assert set(targets) == set(TARGETS)
    assert [name for name, spec in targets.items() if spec.get("default")] == ["dev"], "dev (serverless) is the default"
    for name in ("dev", "dev_classic"):
        assert targets[name]["mode"] == "development"
        assert "${workspace.current_user.short_name}" in targets[name]["variables"]["catalog"], "dev is per user"
    for name in ("prod", "prod_classic"):
        assert targets[name]["mode"] == "production"
        assert targets[name]["variables"]["catalog"] == "clickstream"
    assert _variables(bundle, "dev")["catalog"] != _variables(bundle, "prod")["catalog"]
    # The compute choice is the only difference between a target and its twin.
    for target, twin in TWINS.items():
        strip = {"default"}
        assert {k: v for k, v in targets[target].items() if k not in strip} == {
            k: v for k, v in targets[twin].items() if k not in strip
        }


@pytest.mark.parametrize(("target", "twin"), TWINS.items())
def test_a_target_and_its_classic_twin_are_one_deployment(bundle, target, twin):
    roots = {_resolved(bundle, name)["workspace"]["root_path"] for name in (target, twin)}
    assert len(roots) == 1, f"{target} and {twin} would be two deployments writing the same tables: {roots}"
    assert _resolved(bundle, target)["variables"]["catalog"] == _resolved(bundle, twin)["variables"]["catalog"]


@pytest.mark.parametrize("target", SERVERLESS)
def test_serverless_tasks_run_in_a_job_environment_with_the_wheel(bundle, target):
    job = _target_job(bundle, target)
    assert "job_clusters" not in job
    (environment,) = job["environments"]
    assert environment["spec"]["dependencies"] == [WHEEL]
    assert _resolved(bundle, target)["resources"]["jobs"][JOB]["environments"][0]["spec"]["environment_version"] == "4"
    for task in job["tasks"]:
        assert task["environment_key"] == environment["environment_key"], task["task_key"]
        # Serverless notebook tasks take no task libraries and no cluster.
        assert not {"libraries", "job_cluster_key", "new_cluster", "existing_cluster_id"} & set(task), task["task_key"]


@pytest.mark.parametrize("target", CLASSIC)
def test_classic_tasks_share_one_unity_catalog_job_cluster_with_the_wheel(bundle, target):
    job = _target_job(bundle, target)
    assert "environments" not in job
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    assert {task["job_cluster_key"] for task in job["tasks"]} == set(clusters) and len(clusters) == 1
    for cluster in clusters.values():
        assert cluster["data_security_mode"] in ("SINGLE_USER", "USER_ISOLATION", "DATA_SECURITY_MODE_DEDICATED")
        assert cluster["spark_version"] == "${var.spark_version}"
    for task in job["tasks"]:
        assert task["libraries"] == [{"whl": WHEEL}], task["task_key"]
        assert "environment_key" not in task, task["task_key"]


def test_the_wheel_the_tasks_install_is_the_one_the_bundle_builds(bundle):
    (artifact,) = bundle["root"]["artifacts"].values()
    assert artifact["type"] == "whl"
    assert (BUNDLE_FILE.parent / artifact["path"]).resolve() == REPO_ROOT, "built from the pyproject.toml at the root"
    assert re.search(r"pip wheel .*--no-deps .*--wheel-dir dist \.$", artifact["build"]), artifact["build"]
    assert artifact["dynamic_version"] is True, "each deploy installs the code it deployed"
    # ../dist/*.whl, relative to the job file, is where the build writes.
    job_dir = bundle["sources"][("jobs", JOB)].parent
    assert (job_dir / WHEEL).parent.resolve() == (REPO_ROOT / artifact["path"] / "dist").resolve()
    assert "/dist/" in (REPO_ROOT / ".gitignore").read_text().split(), "built wheels are neither committed nor synced"


def test_only_the_notebooks_and_the_pipeline_definitions_are_uploaded_as_files(bundle, job):
    assert bundle["root"]["sync"] == {"paths": ["databricks/notebooks", "databricks/pipelines"]}, (
        "the package and the contract ship in the wheel"
    )
    source = bundle["sources"][("jobs", JOB)].parent
    for task in job["tasks"]:
        path = (source / task["notebook_task"]["notebook_path"]).resolve()
        assert path.parent == REPO_ROOT / "databricks" / "notebooks", task["task_key"]
    assert not (REPO_ROOT / "databricks" / "__init__.py").exists(), "databricks/ is the databricks-sdk namespace"


# -- production: one shared deployment -------------------------------------------------------------------


@pytest.mark.parametrize("target", ("prod", "prod_classic"))
def test_prod_is_one_shared_deployment_run_as_a_service_principal(bundle, target):
    spec = bundle["root"]["targets"][target]
    root_path = spec["workspace"]["root_path"]
    assert root_path.startswith("/Workspace/Shared/"), "a shared folder, not the deploying user's"
    assert "current_user" not in root_path and "${bundle.target}" not in root_path, root_path
    assert spec["run_as"] == {"service_principal_name": "${var.service_principal}"}
    # prod cannot be deployed without naming the service principal and who hears of failures.
    assert _unset_variables(bundle, target) == {"bucket", "warehouse_id", "service_principal", "alert_email"}
    config = _resolved(bundle, target)
    assert config["run_as"]["service_principal_name"] == REQUIRED_VALUES["service_principal"]
    assert {(p["group_name"], p["level"]) for p in config["permissions"]} == {
        ("clickstream_engineers", "CAN_MANAGE"),
        ("clickstream_analysts", "CAN_VIEW"),
    }
    dashboard = config["resources"]["dashboards"][DASHBOARD]
    assert {(p["group_name"], p["level"]) for p in dashboard["permissions"]} == {("clickstream_analysts", "CAN_RUN")}
    assert config["variables"]["schedule_pause_status"]["default"] == "UNPAUSED"


@pytest.mark.parametrize("target", ("dev", "dev_classic"))
def test_dev_runs_as_the_developer_in_a_folder_of_their_own(bundle, target):
    spec = bundle["root"]["targets"][target]
    assert "run_as" not in spec and "permissions" not in spec
    assert _unset_variables(bundle, target) == {"bucket", "warehouse_id"}
    config = _resolved(bundle, target)
    assert config["workspace"]["root_path"].startswith("/Workspace/Users/jane.doe@example.com/")
    assert config["variables"]["alert_email"]["default"] == "jane.doe@example.com"


def test_ci_deploys_prod_with_a_service_principal():
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert 'databricks bundle validate -t "$TARGET"' in commands
    assert 'databricks bundle deploy -t "$TARGET"' in commands
    env = {k: v for job in workflow["jobs"].values() for k, v in (job.get("env") or {}).items()}
    assert env["TARGET"] == "${{ vars.BUNDLE_TARGET || 'prod' }}", "prod unless the repository picks prod_classic"
    # OAuth machine-to-machine: the service principal's client ID and secret, from repository secrets.
    assert {"DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"} <= set(env)
    assert all(str(env[k]).startswith("${{ secrets.") for k in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"))
    assert "BUNDLE_VAR_service_principal" in env
    assert "DATABRICKS_TOKEN" not in env


# -- the job ---------------------------------------------------------------------------------------------


def test_bundle_files_parse_and_define_the_job_and_dashboard(bundle):
    assert bundle["root"]["bundle"]["name"] == "clickstream_lakehouse"
    assert len(bundle["files"]) >= 3, "resources/*.yml should be included"
    assert set(bundle["resources"]["jobs"]) == {JOB, "clickstream_retention"}
    assert set(bundle["resources"]["dashboards"]) == {DASHBOARD}
    for path in bundle["files"][1:]:
        assert path.parent.name == "resources" and path.name.endswith((".job.yml", ".dashboard.yml", ".pipeline.yml")), path


def test_tasks_run_the_notebooks_in_order_and_the_two_gold_streams_side_by_side_after_silver(job, tasks):
    keys = [task["task_key"] for task in job["tasks"]]
    assert keys == list(TASKS)
    assert "depends_on" not in tasks["setup"]
    after_silver = {"gold", "gold_model"}
    for before, after in zip(keys, keys[1:], strict=False):
        if after not in after_silver:
            assert tasks[after]["depends_on"] == [{"task_key": before}], f"{after} must depend on {before} only"
    for key in after_silver:
        assert tasks[key]["depends_on"] == [{"task_key": "silver"}], f"{key} must depend on silver only"
    names = [Path(task["notebook_task"]["notebook_path"]).name for task in job["tasks"]]
    assert names == [path.name for path in notebook_paths()], "the job and the local runner must run the same notebooks"
    assert names == [
        "00_setup.py", "01_bronze_autoloader.py", "02_silver_stream.py", "03_gold_metrics.py", "04_gold_model.py",
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_keeps_the_four_tasks_in_order(bundle, target):
    job = _target_job(bundle, target)
    assert [task["task_key"] for task in job["tasks"]] == list(TASKS)
    assert all("notebook_task" in task for task in job["tasks"]), "a compute override without a task behind it"


def test_every_notebook_path_exists_relative_to_its_yml(bundle, job):
    source = bundle["sources"][("jobs", JOB)]
    for task in job["tasks"]:
        path = (source.parent / task["notebook_task"]["notebook_path"]).resolve()
        assert path.is_file(), f"task {task['task_key']}: {path} does not exist"
        assert path.read_text().startswith("# Databricks notebook source"), path


def test_streaming_tasks_retry_and_the_job_never_runs_twice_at_once(job, tasks):
    for key in STREAM_TASKS:
        assert tasks[key]["max_retries"] >= 1, f"{key} should retry (it resumes from its checkpoint)"
        assert tasks[key]["min_retry_interval_millis"] >= 10_000
    assert job["max_concurrent_runs"] == 1, "two runs would share checkpoints and tables"
    assert job["queue"] == {"enabled": True}, "a scheduled run that finds one running waits for it"


def test_every_task_has_a_timeout_so_retry_on_timeout_means_something(tasks):
    for key, task in tasks.items():
        assert 0 < task["timeout_seconds"] <= 4 * 3600, key
        if task.get("retry_on_timeout"):
            assert task["max_retries"] >= 1, key
    assert all(tasks[key]["retry_on_timeout"] is True for key in STREAM_TASKS), "a timed-out stream resumes"


def test_failures_and_slow_runs_notify(job):
    (rule,) = job["health"]["rules"]
    assert rule["metric"] == "RUN_DURATION_SECONDS" and rule["op"] == "GREATER_THAN"
    schedule_seconds = 15 * 60
    assert schedule_seconds < rule["value"] < max(t["timeout_seconds"] for t in job["tasks"])
    assert job["email_notifications"]["on_failure"] == ["${var.alert_email}"]
    assert job["email_notifications"]["on_duration_warning_threshold_exceeded"] == ["${var.alert_email}"]
    assert job["schedule"]["quartz_cron_expression"] == "0 0/15 * * * ?"


def test_tasks_take_the_job_parameters_and_none_of_their_own(job):
    for task in job["tasks"]:
        assert "base_parameters" not in task["notebook_task"], f"{task['task_key']}: parameters are job-level"
    names = [p["name"] for p in job["parameters"]]
    assert len(names) == len(set(names))
    assert all(isinstance(p["default"], str) for p in job["parameters"]), "job parameter defaults are strings"


@pytest.mark.parametrize("task_key", TASKS)
def test_job_parameters_cover_exactly_the_widgets_the_notebooks_declare(bundle, job, tasks, task_key, monkeypatch):
    task = tasks[task_key]
    notebook = (bundle["sources"][("jobs", JOB)].parent / task["notebook_task"]["notebook_path"]).resolve()
    parameters = _job_parameters(job, "dev", bundle)

    declared, namespace = _declared_widgets(notebook, parameters, monkeypatch)

    assert set(declared) <= set(parameters), (
        f"{notebook.name} declares {sorted(set(declared) - set(parameters))} but the job does not pass them: "
        "they would keep their local defaults on Databricks"
    )
    if task_key in STREAM_TASKS:
        assert set(declared) == set(parameters), f"{notebook.name} ignores {sorted(set(parameters) - set(declared))}"
    else:
        assert set(declared) == {"lakehouse", "checkpoint_root"}
    # Every value the notebook read is the job's (types parse, dropdown choices accepted).
    assert declared == {name: parameters[name] for name in declared}
    cfg = namespace["cfg"]
    assert isinstance(cfg, config.PipelineConfig)
    assert cfg.lakehouse == "clickstream_dev_jane_doe"
    assert cfg.checkpoint_root == "/Volumes/clickstream_dev_jane_doe/ops/checkpoints"
    if task_key != "setup":
        assert cfg.landing_path == "s3://example-clickstream-bucket/landing/clickstream"
        assert cfg.reset == "false"  # a scheduled run never resets
        assert cfg.trigger == config.AVAILABLE_NOW


def test_the_job_parameters_are_the_pipeline_config(job):
    streaming = [f.name for f in dataclasses.fields(config.PipelineConfig) if f.name in config.STREAM_WIDGETS]
    assert [p["name"] for p in job["parameters"]] == streaming
    assert set(config.STREAM_WIDGETS) == {f.name for f in dataclasses.fields(config.PipelineConfig)} - {
        "raw_retention_days"
    }, "every setting but the retention job's is the pipeline job's"


def test_parameter_defaults_match_the_pipeline_defaults(bundle):
    variables = _variables(bundle)
    defaults = config.PipelineConfig()
    assert variables["trigger"] == defaults.trigger
    assert variables["watermark_delay"] == defaults.watermark_delay
    assert float(variables["max_lateness_hours"]) == defaults.max_lateness_hours
    assert float(variables["future_tolerance_minutes"]) == defaults.future_tolerance_minutes
    assert int(variables["max_files_per_trigger"]) == defaults.max_files_per_trigger
    assert int(variables["max_table_files_per_trigger"]) == defaults.max_table_files_per_trigger
    assert int(variables["gold_max_table_files_per_trigger"]) == defaults.gold_max_table_files_per_trigger
    assert variables["max_table_bytes_per_trigger"] == defaults.max_table_bytes_per_trigger
    assert variables["gold_max_table_bytes_per_trigger"] == defaults.gold_max_table_bytes_per_trigger
    assert variables["hmac_secret"] == defaults.hmac_secret


def test_every_variable_reference_is_defined(bundle):
    defined = set(bundle["root"]["variables"])
    for path in bundle["files"]:
        for name in re.findall(r"\$\{var\.([A-Za-z0-9_]+)\}", path.read_text()):
            assert name in defined, f"{path.name} uses ${{var.{name}}}, which databricks.yml does not define"


def test_variables_for_bucket_landing_prefix_and_catalog(bundle):
    from producer.config import DEFAULT_PREFIX

    variables = bundle["root"]["variables"]
    assert {"bucket", "landing_prefix", "catalog", "warehouse_id"} <= set(variables)
    assert "default" not in variables["bucket"], "the bucket is the user's: no default"
    assert "default" not in variables["service_principal"], "prod names its service principal"
    assert variables["landing_prefix"]["default"] == DEFAULT_PREFIX, "the producer writes where the job reads"
    for name, spec in variables.items():
        assert spec.get("description"), f"variable {name} needs a description"


def test_dashboard_resource(bundle):
    dashboard = bundle["resources"]["dashboards"][DASHBOARD]
    path = (bundle["sources"][("dashboards", DASHBOARD)].parent / dashboard["file_path"]).resolve()
    assert path.is_file() and path.name.endswith(".lvdash.json")
    assert dashboard["warehouse_id"] == "${var.warehouse_id}"
    assert dashboard["dataset_catalog"] == "${var.catalog}", "queries name gold.<table>; the catalog comes from the target"
    assert dashboard["embed_credentials"] is False, "viewers' own Unity Catalog grants apply"
