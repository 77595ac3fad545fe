"""The bundle's retention job: notebook 90 daily, with the wheel on every target's compute, taking exactly
the widgets the notebook declares (the same check as the pipeline job's, on the notebook's own cells)."""

from __future__ import annotations

import pytest
from bundle_config import CLASSIC, SERVERLESS, TARGETS, WHEEL, declared_widgets, job_parameters, load_bundle, target_job

from lakehouse import config

JOB = "clickstream_retention"


@pytest.fixture(scope="module")
def bundle() -> dict:
    return load_bundle()


@pytest.fixture(scope="module")
def job(bundle) -> dict:
    return bundle["resources"]["jobs"][JOB]


def test_runs_the_retention_notebook_once_a_day(bundle, job):
    (task,) = job["tasks"]
    notebook = (bundle["sources"][("jobs", JOB)].parent / task["notebook_task"]["notebook_path"]).resolve()
    assert notebook.name == "90_raw_line_retention.py" and notebook.is_file()
    seconds, minutes, hours, day_of_month, month, day_of_week = job["schedule"]["quartz_cron_expression"].split()
    assert "/" not in hours + minutes and "*" not in hours + minutes, "once a day"
    assert (day_of_month, month, day_of_week) == ("*", "*", "?")
    assert job["schedule"]["pause_status"] == "${var.schedule_pause_status}", "paused in dev like the pipeline"
    assert job["max_concurrent_runs"] == 1
    assert task["timeout_seconds"] > 0


def test_parameters_are_exactly_the_widgets_the_notebook_declares(bundle, job, monkeypatch):
    (task,) = job["tasks"]
    notebook = (bundle["sources"][("jobs", JOB)].parent / task["notebook_task"]["notebook_path"]).resolve()
    parameters = job_parameters(job, "dev", bundle)

    declared, namespace = declared_widgets(notebook, parameters, monkeypatch)

    assert declared == parameters
    cfg = namespace["cfg"]
    assert cfg.lakehouse == "clickstream_dev_jane_doe"
    assert cfg.raw_retention_days == config.PipelineConfig().raw_retention_days == 30


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_runs_it_with_the_wheel(bundle, target):
    job = target_job(bundle, target, JOB)
    (task,) = job["tasks"]
    if target in SERVERLESS:
        (environment,) = job["environments"]
        assert environment["spec"]["dependencies"] == [WHEEL]
        assert task["environment_key"] == environment["environment_key"]
    else:
        assert target in CLASSIC
        (cluster,) = job["job_clusters"]
        assert task["job_cluster_key"] == cluster["job_cluster_key"]
        assert task["libraries"] == [{"whl": WHEEL}]
