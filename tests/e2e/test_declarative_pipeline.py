"""End to end, the declarative edition: spark-pipelines over the shared e2e landing data → its Gold equals the
notebooks' Gold and the ground truth, every line is accounted for; then where it cannot match the notebooks.

One pipeline, two updates, shared by every test here (``declarative``):

1. over a copy of the shared e2e landing area (``e2e_landing``, in a bucket of its own, so the notebooks'
   fixture is never touched): the tables are compared with the notebooks' and with the producer's truth;
2. after three more files land: a first event six days after the e2e events (the watermark moves on), one
   five days after (it does not), then a file holding a conflicting duplicate of the earliest e2e event three
   days after it, a buffered event a day and a half after it, and a resend of that earliest event. The notebooks run over the same four events
   (``notebooks_on_the_scenario``), so each difference is shown on both editions.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from types import SimpleNamespace

import model_truth
import pytest
from e2e.test_pipeline import _rows, expected_gold, gold_snapshot
from support import PREFIX, params

from lakehouse import catalog, reconcile
from lakehouse.declarative import datasets
from lakehouse.declarative import reconcile as declarative_reconcile
from lakehouse_local.cli import notebook_paths
from lakehouse_local.declarative import LocalPipeline, WarehouseTables, settings_for
from lakehouse_local.notebooks import run_notebook
from lakehouse_local.tables import FolderLakehouse

pytestmark = pytest.mark.e2e

BUCKET = "e2e-declarative"
# The first update reads the landing area in one Bronze batch (one Bronze file: the lines in landing order),
# and Silver one Bronze file per batch, so arrivals are processed in landing order (first arrival wins).
FILES_PER_BATCH, TABLE_FILES_PER_BATCH = 1000, 1


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(template: dict, event_id: str, event_time: datetime, **fields) -> dict:
    return {**template, "event_id": event_id, "event_time": _text(event_time),
            "ingest_time": _text(event_time + timedelta(minutes=1)), **fields}


def scenario_files(truth: list[dict]) -> tuple[dict[str, list[dict]], dict]:
    """The files of the second update, in landing order, and the events that matter in them."""
    first = min(truth, key=lambda e: e["event_time"])
    base = _time(first["event_time"])
    ahead = _event(first, "aaaaaaaa-0000-4000-8000-000000000001", base + timedelta(days=6, hours=2))
    behind_it = _event(first, "aaaaaaaa-0000-4000-8000-000000000002", base + timedelta(days=5))
    other = next(a for a in ("view", "click", "add_to_cart", "purchase") if a != first["action"])
    conflicting = _event(first, first["event_id"], base + timedelta(days=3, hours=3.6), action=other)
    buffered = _event(first, "aaaaaaaa-0000-4000-8000-000000000003", base + timedelta(days=1, hours=12))
    files = {"1-ahead.jsonl": [ahead], "2-behind.jsonl": [behind_it], "3-late.jsonl": [conflicting, buffered, first]}
    return files, {"first": first, "conflicting": conflicting, "buffered": buffered, "ahead": ahead}


def _snapshot(tables) -> SimpleNamespace:
    return SimpleNamespace(
        gold=gold_snapshot(tables),
        model={name: model_truth.table_rows(tables, name) for name in model_truth.EXPECTED},
        conservation=declarative_reconcile.conservation(tables),
        by_reason=declarative_reconcile.quarantine_by_reason(tables),
        by_kind=declarative_reconcile.duplicates_by_kind(tables),
        arrivals_hold=declarative_reconcile.arrivals_hold(tables),
        silver={(r.event_id, r.page, r.action) for r in tables.read("silver.events").collect()},
        silver_rows=tables.read("silver.events").count(),
    )


@pytest.fixture(scope="module")
def declarative(spark, s3, e2e_landing, tmp_path_factory):
    s3.create_bucket(Bucket=BUCKET)
    source = e2e_landing["landing"].removeprefix("s3://").split("/", 1)[0]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source, Prefix=PREFIX):
        for item in page.get("Contents", []):
            s3.copy_object(Bucket=BUCKET, Key=item["Key"], CopySource={"Bucket": source, "Key": item["Key"]})
    landing = f"s3://{BUCKET}/{PREFIX}"
    pipeline = LocalPipeline(tmp_path_factory.mktemp("declarative") / "pipeline")
    tables = WarehouseTables(spark, pipeline.warehouse)
    first_update = pipeline.run(settings_for(landing, max_files_per_trigger=FILES_PER_BATCH,
                                             max_table_files_per_trigger=TABLE_FILES_PER_BATCH))
    first = _snapshot(tables)

    files, events = scenario_files(e2e_landing["truth"])
    for name, lines in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/scenario/{name}", Body="".join(json.dumps(e) + "\n" for e in lines))
    # One landed file per micro-batch, so the watermark moves between them as it would between updates.
    second_update = pipeline.run(settings_for(landing, max_files_per_trigger=1, max_table_files_per_trigger=1))
    print(f"declarative pipeline: first update {first_update:.0f} s, second {second_update:.0f} s")
    return SimpleNamespace(first=first, second=_snapshot(tables), tables=tables, events=events, files=files)


def _gold_rows(snapshot: dict, name: str, days: set | None = None) -> list[tuple]:
    rows = snapshot[name]
    return [row for row in rows if days is None or _day(row) in days]


def _day(row: tuple):
    first = row[0]
    return first.date() if isinstance(first, datetime) else first


def _columns(spec) -> list[str]:
    return [c for c in spec.public_columns if c != "event_date" or spec.name != "gold.events_per_minute"]


# -- the first update: the shared e2e landing data -----------------------------------------------------


def test_every_gold_view_equals_the_ground_truth(declarative, e2e_landing):
    expected = expected_gold(e2e_landing["truth"])
    for spec in catalog.GOLD_TABLES:
        assert declarative.first.gold[spec.name] == _rows(expected[spec.name], _columns(spec)), spec.name


def test_every_gold_view_equals_the_notebooks_gold_table(declarative, e2e_lakehouse):
    notebooks = gold_snapshot(e2e_lakehouse)
    for spec in catalog.GOLD_TABLES:
        assert declarative.first.gold[spec.name] == notebooks[spec.name], spec.name


def test_every_model_view_equals_the_independent_computation_and_the_notebooks_model(declarative, e2e_landing,
                                                                                    e2e_lakehouse):
    expected = model_truth.expected_model(e2e_landing["truth"])
    for name in model_truth.EXPECTED:
        assert declarative.first.model[name] == expected[name], name
        assert declarative.first.model[name] == model_truth.table_rows(e2e_lakehouse, name), name


def test_silver_holds_the_first_arrival_of_every_valid_event_as_the_notebooks_silver(declarative, e2e_lakehouse):
    notebooks = {(r.event_id, r.page, r.action) for r in e2e_lakehouse.read("silver.events").collect()}
    assert declarative.first.silver == notebooks
    assert declarative.first.silver_rows == len(notebooks), "one row per event_id"


def test_conservation_holds_over_silver_quarantine_and_duplicates(declarative, e2e_landing):
    c, counts = declarative.first.conservation, e2e_landing["manifest"]["counts"]
    assert c.holds and declarative.first.arrivals_hold
    assert c.landed_lines == counts["lines_sent"] and c.landed_files == counts["objects"]
    assert c.silver_rows == counts["valid_unique_events"]
    assert c.duplicates_removed == counts["natural_duplicates"]
    assert c.late_not_in_silver == 0, "the watermark spans the lateness limit: no first arrival was dropped"
    expected_reasons = {reason: n for reason, n in counts["expected_quarantine"].items() if n}
    assert declarative.first.by_reason == expected_reasons
    assert declarative.first.by_kind[datasets.CONFLICTING_DUPLICATE] == counts["synthetic_duplicates"]
    checks = reconcile.manifest_checks(c, declarative.first.by_reason, e2e_landing["manifest"])
    assert [check for check in checks if check[1] != check[2]] == []


# -- the second update: incremental, and what the declarative edition does not do as the notebooks do ---


def test_a_second_update_reads_only_the_new_files_and_changes_no_earlier_day(declarative, e2e_landing):
    new_lines = sum(len(lines) for lines in declarative.files.values())
    assert declarative.second.conservation.landed_lines == declarative.first.conservation.landed_lines + new_lines
    assert declarative.second.conservation.holds and declarative.second.arrivals_hold
    # The model's views ran after Silver in this update too: the fact table holds the new events.
    assert len(declarative.second.model["gold.fact_events"]) == declarative.second.silver_rows
    days = {_day(row) for row in declarative.first.gold["gold.daily_kpis"]}
    for spec in catalog.GOLD_TABLES:
        assert _gold_rows(declarative.second.gold, spec.name, days) == declarative.first.gold[spec.name], spec.name


@pytest.fixture(scope="module")
def notebooks_on_the_scenario(spark, declarative, tmp_path_factory):
    """The notebooks up to Silver over the same events: the earliest e2e event as it first arrived, then the
    three files."""
    folder = tmp_path_factory.mktemp("scenario")
    landing, lakehouse = folder / "landing", folder / "lakehouse"
    landing.mkdir()
    files = {"0-first.jsonl": [declarative.events["first"]], **declarative.files}
    for order, (name, lines) in enumerate(files.items()):
        path = landing / name
        path.write_text("".join(json.dumps(e) + "\n" for e in lines))
        os.utime(path, (1_800_000_000 + order, 1_800_000_000 + order))  # landed in this order
    # Setup, Bronze and Silver: the differences shown here are Silver's.
    for notebook in notebook_paths()[:3]:
        run_notebook(notebook, spark, params(str(landing), lakehouse, max_files_per_trigger="1"))
    return FolderLakehouse(spark, str(lakehouse))


def test_a_first_arrival_behind_the_watermark_is_counted_but_not_kept_where_the_notebooks_keep_it(
    declarative, notebooks_on_the_scenario
):
    """A producer's buffered upload: valid (ingest_time a minute after event_time) but more than the lateness
    limit behind the newest event. The notebooks recover it from behind their watermark (is_late); a declarative
    flow cannot, so it is in silver_duplicates as late_dropped: counted, missing from Silver and Gold."""
    buffered = declarative.events["buffered"]["event_id"]
    kinds = {r.event_id: r.kind for r in declarative.tables.read("silver.duplicates").collect()}
    assert kinds[buffered] == datasets.LATE_DROPPED
    assert buffered not in {event_id for event_id, _, _ in declarative.second.silver}
    assert declarative.second.conservation.late_not_in_silver == 1

    notebooks = {r.event_id: r.is_late for r in notebooks_on_the_scenario.read("silver.events").collect()}
    assert notebooks[buffered] is True


def test_a_conflicting_duplicate_beyond_the_watermark_becomes_a_second_silver_row_where_the_notebooks_quarantine_it(
    declarative, notebooks_on_the_scenario
):
    """The same event_id with another payload, its event_time three days after the first arrival's: past the
    declarative watermark, whose state no longer holds the id, but within the notebooks' lookup of Silver
    (max_lateness_hours rounded up to days, plus one). The notebooks quarantine it; the declarative Silver
    keeps it as a second row for that event_id, and Gold counts the event twice."""
    first, conflicting = declarative.events["first"], declarative.events["conflicting"]
    rows = [r for r in declarative.tables.read("silver.events").collect() if r.event_id == first["event_id"]]
    assert sorted(r.action for r in rows) == sorted([first["action"], conflicting["action"]])

    quarantined = notebooks_on_the_scenario.read("silver.quarantine").collect()
    assert [(r.event_id, r.reason) for r in quarantined] == [(first["event_id"], "conflicting_duplicate")]
    kept = [r for r in notebooks_on_the_scenario.read("silver.events").collect() if r.event_id == first["event_id"]]
    assert [r.action for r in kept] == [first["action"]], "first arrival wins"


def test_a_resend_days_later_is_a_duplicate_in_both_editions(declarative, notebooks_on_the_scenario):
    """The same line sent again carries the first arrival's event_time: while the id is held, dedup drops it;
    once the id has left the state, the event is behind the watermark and dropped as late. Either way it is in
    silver_duplicates as a duplicate of the arrival Silver kept, never a second row; the notebooks count it too."""
    first = declarative.events["first"]["event_id"]
    assert declarative.second.by_kind[datasets.DUPLICATE] == declarative.first.by_kind[datasets.DUPLICATE] + 1
    resent = [r for r in declarative.tables.read("silver.duplicates").collect()
              if r.event_id == first and r.kind == datasets.DUPLICATE]
    assert len(resent) == 1
    assert reconcile.conservation(notebooks_on_the_scenario).duplicates_removed == 1
