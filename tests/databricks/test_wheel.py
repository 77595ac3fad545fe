"""The wheel the bundle deploys: the ``lakehouse`` package with the contract inside, and nothing local.

* Built from pyproject.toml with its build backend, as the bundle's artifact build does (without build
  isolation here, so no network): it holds ``lakehouse/`` and the contract as package data
  (``lakehouse/schemas/clickstream.schema.json``), and no ``lakehouse_local``, ``producer`` or tests.
* Its dependencies are what the package imports that a Databricks runtime may lack; never pyspark or
  delta-spark, which Databricks provides.
* Installed on its own (no checkout on the path), the package loads the contract through
  ``importlib.resources``, and the notebooks' import cells run with no ``sys.path`` edits.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from support import REPO_ROOT

from lakehouse_local.cli import notebook_paths

CONTRACT = "lakehouse/schemas/clickstream.schema.json"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("hatchling, the build backend pyproject.toml names, is not installed: it belongs in requirements.txt")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(out), str(REPO_ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (what Databricks does with a task library)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _run_isolated(code: str, site: Path, cwd: Path) -> dict:
    """Run ``code`` with only ``site`` (and the interpreter's own packages) importable; returns its JSON output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_wheel_holds_the_package_and_the_contract_and_nothing_local(wheel):
    assert re.fullmatch(r"clickstream_lakehouse-[\w.]+-py3-none-any\.whl", wheel.name), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert CONTRACT in names
    assert "lakehouse/schemas/clickstream.avsc" in names
    top = {name.split("/")[0] for name in names}
    assert top == {"lakehouse", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, sorted(top)
    for forbidden in ("lakehouse_local", "producer", "tests", "benchmarks", "scripts"):
        assert not any(name.startswith(forbidden + "/") for name in names), forbidden
    # Every module of the package is in it.
    modules = {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "lakehouse").rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
    # The contract in the wheel is the repository's schemas/ file, byte for byte.
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(CONTRACT) == (REPO_ROOT / "schemas" / "clickstream.schema.json").read_bytes()


def _third_party_imports() -> set[str]:
    """Top-level modules the shipped package imports that are neither its own nor the standard library."""
    found = set()
    for path in (REPO_ROOT / "lakehouse").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in ("lakehouse", "__future__")}


def test_the_wheel_requires_what_databricks_may_lack_and_not_spark(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(metadata).decode())
    requires = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in message.get_all("Requires-Dist")}
    assert requires == {"jsonschema", "rfc3339-validator", "orjson"}
    # What Databricks provides is what the package imports beyond those three.
    provided = {"pyspark", "delta", "pyarrow", "pandas", "numpy", "databricks"}
    assert _third_party_imports() == {"jsonschema", "rfc3339_validator", "orjson"} | provided


def test_installed_the_package_loads_the_contract_through_importlib_resources(installed, tmp_path):
    result = _run_isolated(
        """
        import json
        from lakehouse import contract
        print(json.dumps({"package": contract.__file__, "schema_path": str(contract.SCHEMA_PATH),
                          "schema": contract.load_schema(), "version": contract.schema_version()}))
        """,
        installed,
        tmp_path,
    )
    assert Path(result["package"]).is_relative_to(installed), "the wheel's copy, not the checkout's"
    assert result["schema_path"] == str(installed / CONTRACT)
    assert result["schema"] == json.loads((REPO_ROOT / "schemas" / "clickstream.schema.json").read_text())
    assert result["version"] >= 1


def test_the_notebooks_import_the_package_with_no_sys_path_edits(installed):
    notebooks = notebook_paths()
    for notebook in notebooks:
        text = notebook.read_text()
        assert "sys.path" not in text, f"{notebook.name} edits sys.path: the package comes from the wheel"
        assert "os.getcwd()" not in text, notebook.name
    # Each notebook's cells run in its own folder, as on Databricks, with only the installed wheel
    # importable, until the first cell that needs the runtime (dbutils or spark).
    result = _run_isolated(
        f"""
        import json, os, sys
        out = {{}}
        for path in {[str(p) for p in notebooks]!r}:
            os.chdir(os.path.dirname(path))
            namespace = {{"__name__": "__main__"}}
            cells = open(path).read().split("# COMMAND ----------")
            for cell in cells:
                try:
                    exec(compile(cell, path, "exec"), namespace)
                except NameError as exc:
                    assert exc.name in ("dbutils", "spark"), exc
                    break
            out[os.path.basename(path)] = sorted(
                m.__file__ for m in sys.modules.values()
                if m.__name__.split(".")[0] == "lakehouse" and getattr(m, "__file__", None)
            )
        print(json.dumps(out))
        """,
        installed,
        notebooks[0].parent,
    )
    assert set(result) == {path.name for path in notebooks}
    for name, files in result.items():
        assert files, f"{name} imported nothing from lakehouse"
        outside = [f for f in files if not Path(f).is_relative_to(installed)]
        assert not outside, f"{name} imported {outside} from outside the wheel"
