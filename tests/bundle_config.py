"""The Databricks Asset Bundle as the CLI deploys it, for the bundle tests: the files merged, a target's
overrides applied, variables resolved, and validation against the CLI's published bundle JSON schema."""

from __future__ import annotations

import copy
import gzip
import json
import re
from functools import cache
from pathlib import Path

import jsonschema
import yaml
from jsonschema import Draft7Validator
from support import REPO_ROOT

from lakehouse.tables import TABLES_ENV
from lakehouse_local.notebooks import DBUtils, Widgets, parse_notebook

BUNDLE_FILE = REPO_ROOT / "databricks.yml"
SCHEMA_FILE = REPO_ROOT / "tests" / "databricks" / "resources" / "bundle_jsonschema.json.gz"
DASHBOARD = "clickstream_gold"
STREAM_TASKS = ("bronze", "silver", "gold", "gold_model")
TASKS = ("setup", *STREAM_TASKS)
REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
WHEEL = "../dist/*.whl"  # relative to resources/: the artifact's dist/ folder

SERVERLESS = ("dev", "prod")
CLASSIC = ("dev_classic", "prod_classic")
TARGETS = SERVERLESS + CLASSIC
# A target and its twin on the other compute: one deployment.
TWINS = {"dev": "dev_classic", "prod": "prod_classic"}

# What the CLI would fill in for a deployment by user "jane.doe@example.com".
WORKSPACE_VALUES = {
    "workspace.current_user.short_name": "jane_doe",
    "workspace.current_user.userName": "jane.doe@example.com",
    "bundle.name": "clickstream_lakehouse",
}
# Variables without a default, passed with --var or BUNDLE_VAR_<name> on deploy.
REQUIRED_VALUES = {
    "bucket": "example-clickstream-bucket",
    "warehouse_id": "0123456789abcdef",
    "service_principal": "6b7c3a1e-0d3f-4c4e-9a55-0123456789ab",
    "alert_email": "clickstream-oncall@example.com",
}


def load(path: Path) -> dict:
    with path.open() as handle:
        return yaml.safe_load(handle) or {}


def load_bundle() -> dict:
    """databricks.yml with its ``include`` globs merged in; each resource remembers the file it came from."""
    root = load(BUNDLE_FILE)
    resources: dict[str, dict] = {}
    sources: dict[tuple[str, str], Path] = {}
    files = [BUNDLE_FILE] + [p for pattern in root.get("include", []) for p in sorted(REPO_ROOT.glob(pattern))]
    for path in files:
        for kind, items in (load(path).get("resources") or {}).items():
            for key, value in items.items():
                assert key not in resources.setdefault(kind, {}), f"{kind}.{key} is defined twice ({path})"
                resources[kind][key] = value
                sources[(kind, key)] = path
    return {"root": root, "files": files, "resources": resources, "sources": sources}


# -- the configuration the CLI deploys for a target ------------------------------------------------------


def merge(base, override):
    """The CLI's merge of two configuration values: maps key by key, sequences appended, scalars replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return copy.deepcopy(base) + copy.deepcopy(override)
    return copy.deepcopy(override)


def merge_by_key(items: list[dict], key: str) -> list[dict]:
    """Entries with the same key merged into the first one (the CLI does this for tasks, job clusters, parameters)."""
    merged: dict[str, dict] = {}
    for item in items:
        merged[item[key]] = merge(merged[item[key]], item) if item[key] in merged else item
    return list(merged.values())


def merged_files(bundle: dict) -> dict:
    merged: dict = {}
    for path in bundle["files"]:
        merged = merge(merged, load(path))
    return merged


def target_config(bundle: dict, target: str) -> dict:
    """The bundle as deployed to ``target``: files merged, the target's overrides applied, as the CLI does."""
    merged = merged_files(bundle)
    overrides = merged.pop("targets")[target]
    merged.pop("include")
    for field in ("bundle", "workspace", "artifacts", "resources", "sync", "permissions", "presets"):
        if field in overrides:
            merged[field] = merge(merged[field], overrides[field]) if field in merged else copy.deepcopy(overrides[field])
    for name, value in (overrides.get("variables") or {}).items():
        merged["variables"][name]["default"] = value["default"] if isinstance(value, dict) else value
    if "run_as" in overrides:
        merged["run_as"] = copy.deepcopy(overrides["run_as"])
    for job in merged["resources"]["jobs"].values():
        for field, key in (("tasks", "task_key"), ("job_clusters", "job_cluster_key"), ("parameters", "name")):
            if field in job:
                job[field] = merge_by_key(job[field], key)
    return merged


def target_job(bundle: dict, target: str, job: str = "clickstream_pipeline") -> dict:
    return target_config(bundle, target)["resources"]["jobs"][job]


def unset_variables(bundle: dict, target: str) -> set[str]:
    """Variables that have no value in ``target`` unless the deploy passes one."""
    variables = target_config(bundle, target)["variables"]
    return {name for name, spec in variables.items() if "default" not in spec}


def variables(bundle: dict, target: str = "dev") -> dict:
    """Every variable's value in ``target`` (typed as written), required ones from REQUIRED_VALUES."""
    values = {name: spec.get("default") for name, spec in target_config(bundle, target)["variables"].items()}
    values.update({name: REQUIRED_VALUES[name] for name in unset_variables(bundle, target)})
    return values


def substitute(value, known: dict):
    """Resolve ``${...}`` references: a value that is one reference takes the referenced value's type."""
    if isinstance(value, dict):
        return {k: substitute(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, known) for v in value]
    if not isinstance(value, str):
        return value
    for _ in range(10):
        whole = REFERENCE.fullmatch(value)
        if whole:
            value = known[whole.group(1)]
            if not isinstance(value, str):
                return value
            continue
        resolved = REFERENCE.sub(lambda m: str(known[m.group(1)]), value)
        if resolved == value:
            return resolved
        value = resolved
    raise AssertionError(f"{value!r} does not resolve")


def resolved(bundle: dict, target: str) -> dict:
    known = {**WORKSPACE_VALUES, "bundle.target": target}
    known.update({f"var.{name}": value for name, value in variables(bundle, target).items()})
    return substitute(target_config(bundle, target), known)


def resolve(value: str, variables: dict, target: str = "dev") -> str:
    known = {**WORKSPACE_VALUES, "bundle.target": target, **{f"var.{k}": v for k, v in variables.items()}}
    return str(substitute(value, known))


# -- the CLI's bundle JSON schema ------------------------------------------------------------------------


def python_pattern(pattern: str) -> str:
    r"""The schema's patterns in Python's ``re``: ``\p{L}`` (a letter) and ``[\p{L}\p{N}]`` (a letter or number)."""
    translated = pattern.replace(r"[\p{L}\p{N}]", r"[^\W_]").replace(r"\p{L}", r"[^\W\d_]")
    assert r"\p" not in translated, f"unsupported Unicode class in {pattern!r}"
    return translated


def pattern(validator, pattern: str, instance, schema):
    if validator.is_type(instance, "string") and not re.search(python_pattern(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# The schema declares no $schema: its references are JSON pointers into $defs, which Draft 7 (the
# dialect of the editors the CLI publishes it for) resolves. Its interpolation patterns use \p{...}.
BundleValidator = jsonschema.validators.extend(Draft7Validator, {"pattern": pattern})


@cache
def schema() -> dict:
    return json.loads(gzip.decompress(SCHEMA_FILE.read_bytes()))


def causes(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors under ``error``. Every value is a oneOf (its type | a ${...} reference): the causes are
    those of the branch that got furthest into the value."""
    if not error.context:
        return [error]
    branches: dict = {}
    for cause in error.context:
        branches.setdefault(cause.relative_schema_path[0], []).append(cause)
    furthest = max(branches.values(), key=lambda causes: max(len(c.absolute_path) for c in causes))
    return [leaf for cause in furthest for leaf in causes(cause)]


def errors(validator, config: dict) -> list[str]:
    """Schema errors of ``config``, each with its path; plus top-level keys the schema does not define
    (its root admits any key, the CLI warns on them)."""
    found = []
    for error in validator.iter_errors(json.loads(json.dumps(config))):
        for leaf in causes(error):
            found.append(f"{'.'.join(map(str, leaf.absolute_path)) or '<root>'}: {leaf.message[:200]}")
    found += [f"{key}: not a top-level bundle key" for key in config if key not in schema()["properties"]]
    return found


# -- parameters ----------------------------------------------------------------------------------


class SparkNeeded(Exception):
    """The notebook reached its first use of ``spark``: every widget is declared by then."""


class NoSpark:
    def __getattr__(self, name: str):
        raise SparkNeeded(name)


def declared_widgets(notebook: Path, parameters: dict[str, str], monkeypatch) -> tuple[dict[str, str], dict]:
    """Run the notebook's cells up to its first use of ``spark``; returns (widget values, namespace)."""
    dbutils = DBUtils(Widgets(parameters))
    namespace = {"spark": NoSpark(), "dbutils": dbutils, "display": print, "__name__": "__main__"}
    monkeypatch.chdir(notebook.parent)
    monkeypatch.delenv(TABLES_ENV, raising=False)  # the notebook gets Databricks' table layer, as in the job
    reached_spark = False
    for cell in parse_notebook(notebook):
        if cell.kind != "python":
            continue
        try:
            exec(compile(cell.source, f"{notebook.name}[cell {cell.index}]", "exec"), namespace)  # noqa: S102
        except SparkNeeded:
            reached_spark = True
            break
    assert reached_spark, f"{notebook.name} never used spark: is it still a pipeline notebook?"
    return dbutils.widgets.getAll(), namespace


def job_parameters(job: dict, target: str, bundle: dict) -> dict[str, str]:
    values = variables(bundle, target)
    return {p["name"]: resolve(p["default"], values, target) for p in job["parameters"]}

