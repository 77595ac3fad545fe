"""The local notebook runner: notebooks run in the process, in their own folder."""

from __future__ import annotations

import os
import sys
import threading
import types
from pathlib import Path

from lakehouse_local.notebooks import run_notebook

NOTEBOOK = """# Databricks notebook source
import os
import side_by_side

side_by_side.seen[{name!r}] = os.getcwd()
side_by_side.started[{name!r}].set()
assert side_by_side.release[{name!r}].wait(30)
"""


def test_notebooks_side_by_side_run_in_their_folder_and_the_working_directory_comes_back_after_the_last(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    names = ("gold", "gold_model")
    sync = types.SimpleNamespace(
        seen={}, started={n: threading.Event() for n in names}, release={n: threading.Event() for n in names}
    )
    monkeypatch.setitem(sys.modules, "side_by_side", sync)
    runs = {}
    for name in names:
        (folder / f"{name}.py").write_text(NOTEBOOK.format(name=name))
        runs[name] = threading.Thread(target=run_notebook, args=(folder / f"{name}.py", None))
        runs[name].start()
        assert sync.started[name].wait(30)

    sync.release["gold"].set()  # the first to start ends first, while the other still runs
    runs["gold"].join(30)
    assert Path.cwd() == folder
    sync.release["gold_model"].set()
    runs["gold_model"].join(30)

    assert sync.seen == {"gold": str(folder), "gold_model": str(folder)}
    assert Path.cwd() == tmp_path
    assert os.getcwd() == str(tmp_path)
