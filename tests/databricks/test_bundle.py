"""The Databricks Asset Bundle: databricks.yml and resources/*.yml, checked without the Databricks CLI.

* The job runs the notebooks 00 -> 03 in the order the local runner does, each task after the one before.
* Every notebook path exists, and every base parameter is a widget the notebook declares (found by
  running the notebook's own cells against the local ``dbutils.widgets`` stand-in), and the other way
  round, so no widget silently keeps its laptop default on Databricks.
* The values the job passes parse into a ``PipelineConfig``.
* Targets, variables, retries, sync and the dashboard resource are what the README documents.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support import REPO_ROOT

from lakehouse import config
from lakehouse.tables import TABLES_ENV
from lakehouse_local.cli import notebook_paths
from lakehouse_local.notebooks import DBUtils, Widgets, parse_notebook

BUNDLE_FILE = REPO_ROOT / "databricks.yml"
JOB = "clickstream_pipeline"
DASHBOARD = "clickstream_gold"
STREAM_TASKS = ("bronze", "silver", "gold")
REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")

# What the CLI would fill in for a `dev` deployment by user "jane.doe@example.com".
WORKSPACE_VALUES = {
    "workspace.current_user.short_name": "jane_doe",
    "workspace.current_user.userName": "jane.doe@example.com",
    "bundle.name": "clickstream_lakehouse",
    "bundle.target": "dev",
}
# Variables without a default, passed with --var on deploy.
REQUIRED_VALUES = {"bucket": "example-clickstream-bucket", "warehouse_id": "0123456789abcdef"}


def _load(path: Path) -> dict:
    with path.open() as handle:
        return yaml.safe_load(handle) or {}


@pytest.fixture(scope="module")
def bundle() -> dict:
    """databricks.yml with its ``include`` globs merged in; each resource remembers the file it came from."""
    root = _load(BUNDLE_FILE)
    resources: dict[str, dict] = {}
    sources: dict[tuple[str, str], Path] = {}
    files = [BUNDLE_FILE] + [p for pattern in root.get("include", []) for p in sorted(REPO_ROOT.glob(pattern))]
    for path in files:
        for kind, items in (_load(path).get("resources") or {}).items():
            for key, value in items.items():
                assert key not in resources.setdefault(kind, {}), f"{kind}.{key} is defined twice ({path})"
                resources[kind][key] = value
                sources[(kind, key)] = path
    return {"root": root, "files": files, "resources": resources, "sources": sources}


@pytest.fixture(scope="module")
def job(bundle) -> dict:
    return bundle["resources"]["jobs"][JOB]


@pytest.fixture(scope="module")
def tasks(job) -> dict[str, dict]:
    return {task["task_key"]: task for task in job["tasks"]}


def _variables(bundle: dict, target: str = "dev") -> dict[str, str]:
    root = bundle["root"]
    values = {name: spec.get("default") for name, spec in root["variables"].items()}
    values.update(root["targets"][target].get("variables") or {})
    values.update({k: v for k, v in REQUIRED_VALUES.items() if values.get(k) is None})
    return {name: str(value) for name, value in values.items()}


def _resolve(value: str, variables: dict[str, str]) -> str:
    known = {**WORKSPACE_VALUES, **{f"var.{k}": v for k, v in variables.items()}}
    for _ in range(10):
        resolved = REFERENCE.sub(lambda m: known[m.group(1)], value)
        if resolved == value:
            return resolved
        value = resolved
    raise AssertionError(f"{value!r} does not resolve")


class _SparkNeeded(Exception):
    """The notebook reached its first use of ``spark``: every widget is declared by then."""


class _NoSpark:
    def __getattr__(self, name: str):
        raise _SparkNeeded(name)


def _declared_widgets(notebook: Path, parameters: dict[str, str], monkeypatch) -> tuple[dict[str, str], dict]:
    """Run the notebook's cells up to its first use of ``spark``; returns (widget values, namespace)."""
    dbutils = DBUtils(Widgets(parameters))
    namespace = {"spark": _NoSpark(), "dbutils": dbutils, "display": print, "__name__": "__main__"}
    monkeypatch.chdir(notebook.parent)
    monkeypatch.delenv(TABLES_ENV, raising=False)  # the notebook gets Databricks' table layer, as in the job
    reached_spark = False
    for cell in parse_notebook(notebook):
        if cell.kind != "python":
            continue
        try:
            exec(compile(cell.source, f"{notebook.name}[cell {cell.index}]", "exec"), namespace)  # noqa: S102
        except _SparkNeeded:
            reached_spark = True
            break
    assert reached_spark, f"{notebook.name} never used spark: is it still a pipeline notebook?"
    return dbutils.widgets.getAll(), namespace


# -- structure -----------------------------------------------------------------------------------


def test_bundle_files_parse_and_define_the_job_and_dashboard(bundle):
    assert bundle["root"]["bundle"]["name"] == "clickstream_lakehouse"
    assert len(bundle["files"]) >= 3, "resources/*.yml should be included"
    assert set(bundle["resources"]["jobs"]) == {JOB}
    assert set(bundle["resources"]["dashboards"]) == {DASHBOARD}
    for path in bundle["files"][1:]:
        assert path.parent.name == "resources" and path.name.endswith((".job.yml", ".dashboard.yml")), path


def test_tasks_run_the_notebooks_in_order_each_after_the_one_before(job, tasks):
    keys = [task["task_key"] for task in job["tasks"]]
    assert keys == ["setup", *STREAM_TASKS]
    assert "depends_on" not in tasks["setup"]
    for before, after in zip(keys, keys[1:], strict=False):
        assert tasks[after]["depends_on"] == [{"task_key": before}], f"{after} must depend on {before} only"
    names = [Path(task["notebook_task"]["notebook_path"]).name for task in job["tasks"]]
    assert names == [path.name for path in notebook_paths()], "the job and the local runner must run the same notebooks"
    assert names == ["00_setup.py", "01_bronze_autoloader.py", "02_silver_stream.py", "03_gold_metrics.py"]


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


def test_tasks_share_one_unity_catalog_job_cluster(job, tasks):
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    assert set(clusters) == {task["job_cluster_key"] for task in tasks.values()}
    for cluster in clusters.values():
        assert cluster["data_security_mode"] in ("SINGLE_USER", "USER_ISOLATION", "DATA_SECURITY_MODE_DEDICATED")


# -- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("task_key", ["setup", *STREAM_TASKS])
def test_base_parameters_are_exactly_the_widgets_the_notebook_declares(bundle, tasks, task_key, monkeypatch):
    task = tasks[task_key]
    notebook = (bundle["sources"][("jobs", JOB)].parent / task["notebook_task"]["notebook_path"]).resolve()
    variables = _variables(bundle)
    parameters = {k: _resolve(str(v), variables) for k, v in task["notebook_task"]["base_parameters"].items()}

    declared, namespace = _declared_widgets(notebook, parameters, monkeypatch)

    assert set(parameters) <= set(declared), f"{notebook.name} does not declare {sorted(set(parameters) - set(declared))}"
    assert set(declared) <= set(parameters), (
        f"{notebook.name} declares {sorted(set(declared) - set(parameters))} but the job does not pass them: "
        "they would keep their local defaults on Databricks"
    )
    # The notebook read the job's values into its config (types parse, dropdown choices accepted).
    cfg = namespace["cfg"]
    assert isinstance(cfg, config.PipelineConfig)
    assert cfg.lakehouse == "clickstream_dev_jane_doe"
    assert cfg.checkpoint_root == "/Volumes/clickstream_dev_jane_doe/ops/checkpoints"
    if task_key != "setup":
        assert cfg.landing_path == "s3://example-clickstream-bucket/landing/clickstream"
        assert cfg.reset == "false"  # a scheduled run never resets
        assert cfg.trigger == config.AVAILABLE_NOW


def test_stream_tasks_pass_the_same_parameters(tasks):
    first = tasks[STREAM_TASKS[0]]["notebook_task"]["base_parameters"]
    for key in STREAM_TASKS[1:]:
        assert tasks[key]["notebook_task"]["base_parameters"] == first, f"{key} differs from {STREAM_TASKS[0]}"
    assert tasks["setup"]["notebook_task"]["base_parameters"] == {k: first[k] for k in ("lakehouse", "checkpoint_root")}


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


def test_every_variable_reference_is_defined(bundle):
    defined = set(bundle["root"]["variables"])
    for path in bundle["files"]:
        for name in re.findall(r"\$\{var\.([A-Za-z0-9_]+)\}", path.read_text()):
            assert name in defined, f"{path.name} uses ${{var.{name}}}, which databricks.yml does not define"


# -- targets, variables, sync ------------------------------------------------------------------------


def test_dev_and_prod_targets(bundle):
    targets = bundle["root"]["targets"]
    assert targets["dev"]["mode"] == "development"
    assert targets["dev"]["default"] is True
    assert "${workspace.current_user.short_name}" in targets["dev"]["variables"]["catalog"], "dev is per user"
    assert targets["prod"]["mode"] == "production"
    assert targets["prod"]["workspace"]["root_path"]
    assert targets["prod"]["variables"]["catalog"] == "clickstream"
    assert _variables(bundle, "dev")["catalog"] != _variables(bundle, "prod")["catalog"]


def test_variables_for_bucket_landing_prefix_and_catalog(bundle):
    from producer.config import DEFAULT_PREFIX

    variables = bundle["root"]["variables"]
    assert {"bucket", "landing_prefix", "catalog", "warehouse_id"} <= set(variables)
    assert "default" not in variables["bucket"], "the bucket is the user's: no default"
    assert variables["landing_prefix"]["default"] == DEFAULT_PREFIX, "the producer writes where the job reads"
    for name, spec in variables.items():
        assert spec.get("description"), f"variable {name} needs a description"


def test_sync_uploads_the_package_and_contract_but_not_the_laptop_files(bundle):
    excluded = bundle["root"]["sync"]["exclude"]
    assert {"tests/**", ".venv/**", "**/.lakehouse/**"} <= set(excluded)
    for needed in ("lakehouse", "schemas", "databricks"):
        assert not any(pattern.split("/")[0] == needed for pattern in excluded), f"{needed}/ must be synced"
    assert not (REPO_ROOT / "databricks" / "__init__.py").exists(), "databricks/ is the databricks-sdk namespace"


def test_dashboard_resource(bundle):
    dashboard = bundle["resources"]["dashboards"][DASHBOARD]
    path = (bundle["sources"][("dashboards", DASHBOARD)].parent / dashboard["file_path"]).resolve()
    assert path.is_file() and path.name.endswith(".lvdash.json")
    assert dashboard["warehouse_id"] == "${var.warehouse_id}"
    assert dashboard["dataset_catalog"] == "${var.catalog}", "queries name gold.<table>; the catalog comes from the target"
    assert dashboard["embed_credentials"] is False, "viewers' own Unity Catalog grants apply"
