"""Run Databricks source-format notebooks locally, with a ``dbutils.widgets`` stand-in.

A notebook file is cells separated by ``# COMMAND ----------``; ``# MAGIC %md`` cells are prose. Code
cells run in order in one namespace that holds ``spark``, ``dbutils`` and ``display``, with the
working directory set to the notebook's folder, as on Databricks. Widget values passed to
:func:`run_notebook` override the notebook's declared defaults, like job parameters do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


class InputWidgetNotDefined(KeyError):
    """``dbutils.widgets.get`` of a widget the notebook never declared (Databricks raises the same)."""


class Widgets:
    """The part of ``dbutils.widgets`` notebooks use: text, dropdown, combobox, get, getAll, remove(All)."""

    def __init__(self, parameters: dict[str, str] | None = None) -> None:
        self._parameters = {k: str(v) for k, v in (parameters or {}).items()}
        self._values: dict[str, str] = {}
        self._choices: dict[str, list[str]] = {}

    def _declare(self, name: str, default: str, choices: list[str] | None = None) -> None:
        value = self._parameters.get(name, str(default))
        if choices is not None and value not in choices:
            raise ValueError(f"widget {name!r}: value {value!r} is not one of {choices}")
        self._values[name] = value
        if choices is not None:
            self._choices[name] = list(choices)

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:  # noqa: N803 - Databricks' names
        self._declare(name, defaultValue)

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:  # noqa: N803
        if defaultValue not in choices:
            raise ValueError(f"widget {name!r}: default {defaultValue!r} is not one of {choices}")
        self._declare(name, defaultValue, choices)

    def combobox(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:  # noqa: N803
        self._declare(name, defaultValue)

    def get(self, name: str) -> str:
        if name not in self._values:
            raise InputWidgetNotDefined(f"No input widget named {name} is defined")
        return self._values[name]

    def getAll(self) -> dict[str, str]:  # noqa: N802 - Databricks' name
        return dict(self._values)

    def remove(self, name: str) -> None:
        self._values.pop(name, None)
        self._choices.pop(name, None)

    def removeAll(self) -> None:  # noqa: N802 - Databricks' name
        self._values.clear()
        self._choices.clear()


class Secrets:
    """``dbutils.secrets.get``: a secret ``<scope>/<key>`` is the environment variable ``<SCOPE>_<KEY>``.

    ``clickstream/hmac_key`` is therefore ``CLICKSTREAM_HMAC_KEY``, the variable the producer reads.
    """

    def get(self, scope: str, key: str) -> str:
        name = f"{scope}_{key}".upper().replace("-", "_")
        value = os.environ.get(name)
        if value is None:
            raise KeyError(f"secret {scope}/{key} is not set: locally, set the environment variable {name}")
        return value


@dataclass
class DBUtils:
    """A ``dbutils`` with the ``widgets`` and ``secrets`` utilities; anything else raises a clear error."""

    widgets: Widgets
    secrets: Secrets = field(default_factory=Secrets)

    def __getattr__(self, name: str):
        raise AttributeError(
            f"dbutils.{name} is not available in the local runtime (only dbutils.widgets and dbutils.secrets are)"
        )


@dataclass(frozen=True)
class Cell:
    index: int
    kind: str  # "python" | "markdown"
    source: str


def parse_notebook(path: str | Path) -> list[Cell]:
    """Split a Databricks source-format notebook into cells; refuses magics it cannot run."""
    text = Path(path).read_text()
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"{path} is not a Databricks source-format notebook (first line must be '{HEADER}')")
    cells: list[Cell] = []
    for index, chunk in enumerate("\n".join(lines[1:]).split(SEPARATOR)):
        body = chunk.strip("\n")
        if not body.strip():
            continue
        body_lines = [ln for ln in body.splitlines() if ln.strip()]
        if all(ln.startswith(MAGIC) for ln in body_lines):
            magic = body_lines[0][len(MAGIC):].strip()
            if magic.startswith("%md"):
                cells.append(Cell(index, "markdown", body))
                continue
            raise ValueError(f"{path} cell {index}: magic {magic.split()[0]!r} is not supported by the local runner")
        cells.append(Cell(index, "python", body))
    return cells


def _display(obj, *args, **kwargs) -> None:
    show = getattr(obj, "show", None)
    if callable(show):
        show(truncate=False)
    else:
        print(obj)


_cwd_lock = threading.Lock()
_cwd_users: list[Path] = []  # the working directory before the first running notebook, once per notebook running


@contextlib.contextmanager
def _working_directory(path: Path):
    """The notebook's folder as the working directory while it runs (as on Databricks). The working
    directory is the process's: notebooks run side by side in threads share it, and the one before
    them is restored when the last of them ends."""
    with _cwd_lock:
        _cwd_users.append(_cwd_users[0] if _cwd_users else Path.cwd())
        os.chdir(path)
    try:
        yield
    finally:
        with _cwd_lock:
            previous = _cwd_users.pop()
            if not _cwd_users:
                os.chdir(previous)


def run_notebook(path: str | Path, spark, parameters: dict[str, str] | None = None) -> dict:
    """Execute one notebook file; returns its namespace (for inspection by callers and tests)."""
    path = Path(path).resolve()
    dbutils = DBUtils(Widgets(parameters))
    namespace = {"spark": spark, "dbutils": dbutils, "display": _display, "__name__": "__main__", "__file__": str(path)}
    log.info("running notebook %s", path.name)
    with _working_directory(path.parent):
        for cell in parse_notebook(path):
            if cell.kind != "python":
                continue
            code = compile(cell.source, f"{path.name}[cell {cell.index}]", "exec")
            exec(code, namespace)  # noqa: S102 - running the notebook is the point
    return namespace
