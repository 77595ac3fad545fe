"""End to end: producer (every fault) → notebooks 00-04 → Gold equals the ground truth, exactly.

The ground truth is computed here with pandas from the producer's truth file (the valid unique
events as sent), independently of the pipeline's Spark code.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import model_truth
import pandas as pd
import pytest
from support import kill_after_first_silver_commit
from support import params as _params
from support import produce as _produce

from lakehouse import contract, reconcile
from lakehouse_local.cli import run_pipeline
from lakehouse_local.tables import FolderLakehouse

pytestmark = pytest.mark.e2e

ACTIONS = list(contract.actions())


@pytest.fixture(scope="module")
def landed(e2e_landing):
    return e2e_landing


MODES = ["classic", "connect"]


@pytest.fixture(scope="module", params=MODES)
def lakehouse(request):
    """The shared e2e run, once with a classic ``spark`` and once through Spark Connect (serverless's way)."""
    return request.getfixturevalue("e2e_lakehouse" if request.param == "classic" else "e2e_connect_lakehouse")


# -- ground truth, with pandas --------------------------------------------------------------------


def _truth_frame(truth: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(truth)
    for column in ("device_type", "country", "source"):
        if column not in df:
            df[column] = None
    df["event_time"] = pd.to_datetime(df["event_time"], utc=True).dt.tz_localize(None)
    df["event_date"] = df["event_time"].dt.date
    return df


def expected_gold(truth: list[dict]) -> dict[str, pd.DataFrame]:
    df = _truth_frame(truth)
    by_day = df.groupby("event_date")
    kpis = pd.DataFrame(
        {
            "events": by_day.size(),
            "active_users": by_day["user_id"].nunique(),
            "sessions": by_day["session_id"].nunique(),
            "views": by_day["action"].apply(lambda a: (a == "view").sum()),
            "clicks": by_day["action"].apply(lambda a: (a == "click").sum()),
            "add_to_carts": by_day["action"].apply(lambda a: (a == "add_to_cart").sum()),
            "purchases": by_day["action"].apply(lambda a: (a == "purchase").sum()),
            "converted_sessions": df[df.action == "purchase"].groupby("event_date")["session_id"].nunique(),
        }
    ).fillna(0).reset_index()
    kpis["conversion_rate"] = kpis.converted_sessions / kpis.sessions
    per_minute = (
        df.assign(window_start=df.event_time.dt.floor("min"))
        .groupby(["window_start", "action"])
        .size()
        .rename("events")
        .reset_index()
    )
    per_minute["window_end"] = per_minute.window_start + pd.Timedelta(minutes=1)
    reached = df.groupby(["event_date", "action"])["session_id"].nunique()
    funnel = pd.DataFrame(
        [
            (day, step, order, int(reached.get((day, step), 0)))
            for day in sorted(df.event_date.unique())
            for order, step in enumerate(ACTIONS, start=1)
        ],
        columns=["event_date", "step", "step_order", "sessions"],
    )
    dims = df.fillna({"device_type": "unknown", "country": "unknown", "source": "unknown"})
    traffic = (
        dims.groupby(["event_date", "device_type", "country", "source"])
        .agg(events=("event_id", "size"), active_users=("user_id", "nunique"))
        .reset_index()
    )
    views = df[df.action == "view"]
    pages = (
        views.groupby(["event_date", "page"])
        .agg(views=("event_id", "size"), unique_users=("user_id", "nunique"))
        .reset_index()
    )
    return {
        "gold.daily_kpis": kpis,
        "gold.events_per_minute": per_minute,
        "gold.funnel_daily": funnel,
        "gold.traffic_daily": traffic,
        "gold.top_pages_daily": pages,
    }


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    def norm(value):
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime().replace(tzinfo=None)
        if hasattr(value, "item"):
            return value.item()
        return value

    return sorted(tuple(norm(v) for v in row) for row in frame[columns].itertuples(index=False))


def gold_snapshot(lakehouse: FolderLakehouse) -> dict[str, list[tuple]]:
    from lakehouse import catalog

    snapshot = {}
    for spec in catalog.GOLD_TABLES:
        columns = [c for c in spec.public_columns if c != "event_date" or spec.name != "gold.events_per_minute"]
        snapshot[spec.name] = sorted(tuple(r) for r in lakehouse.read(spec.name).select(*columns).collect())
    return snapshot


# -- tests ----------------------------------------------------------------------------------------


def test_every_gold_table_equals_the_ground_truth(lakehouse, landed):
    expected = expected_gold(landed["truth"])
    actual = gold_snapshot(lakehouse)
    from lakehouse import catalog

    for spec in catalog.GOLD_TABLES:
        columns = [c for c in spec.public_columns if c != "event_date" or spec.name != "gold.events_per_minute"]
        assert actual[spec.name] == _rows(expected[spec.name], columns), spec.name
    assert len(actual["gold.daily_kpis"]) >= 2  # the run crosses midnight


def test_conservation_holds_with_every_term_queried(lakehouse, landed):
    counts = landed["manifest"]["counts"]
    c = reconcile.conservation(lakehouse)
    assert c.holds
    assert c.landed_lines == counts["lines_sent"]
    assert c.silver_rows == counts["valid_unique_events"]
    assert c.duplicates_removed == counts["natural_duplicates"]
    assert c.quarantined_rows == sum(counts["expected_quarantine"].values())
    assert reconcile.quarantine_by_reason(lakehouse) == {k: v for k, v in counts["expected_quarantine"].items() if v}


def test_silver_has_one_row_per_valid_event_id_and_keeps_late_events(lakehouse, landed):
    silver = lakehouse.read("silver.events")
    truth_ids = {e["event_id"] for e in landed["truth"]}
    ids = [r.event_id for r in silver.select("event_id").collect()]
    assert len(ids) == len(set(ids)) == len(truth_ids)
    assert set(ids) == truth_ids
    # Late events arrive hours behind the watermark: they are recovered, flagged and counted.
    late = silver.filter("is_late").count()
    assert late > 0
    ops = lakehouse.read("ops.pipeline_metrics").filter("layer = 'silver'")
    assert ops.agg({"late": "sum"}).first()[0] == late
    assert ops.count() >= 2  # several micro-batches, so the watermark advanced between them


def test_first_arrival_wins_for_conflicting_duplicates(lakehouse, landed):
    truth = {e["event_id"]: e for e in landed["truth"]}
    conflicts = lakehouse.read("silver.quarantine").filter("reason = 'conflicting_duplicate'").collect()
    assert conflicts
    silver = {r.event_id: r for r in lakehouse.read("silver.events").collect()}
    for row in conflicts:
        assert row.event_id in silver
        original = truth[row.event_id]
        assert (silver[row.event_id].page, silver[row.event_id].action) == (original["page"], original["action"])


def test_rerunning_the_notebooks_changes_nothing(spark, lakehouse, landed):
    from deltalake import DeltaTable

    from lakehouse import catalog

    versions = {s.name: DeltaTable(lakehouse.path(s.name)).version() for s in catalog.ALL_TABLES}
    before = gold_snapshot(lakehouse)
    run_pipeline(spark, _params(landed["landing"], Path(lakehouse.location)))
    assert gold_snapshot(lakehouse) == before
    data_tables = [s.name for s in catalog.ALL_TABLES if s.name != "ops.pipeline_metrics"]
    assert {n: DeltaTable(lakehouse.path(n)).version() for n in data_tables} == {n: versions[n] for n in data_tables}


@pytest.fixture(scope="module")
def restarted_behind_faulty_s3(spark, s3, s3_endpoint, tmp_path_factory):
    """A classic run in a process of its own, reading the landing area through an S3 endpoint that fails
    (503s, 500s, connection resets, bodies cut off halfway, 2-second delays on every landed object), killed
    (SIGKILL) once Silver has committed its first micro-batch, then run again from the checkpoints."""
    from faulty_s3 import FaultyS3

    folder = tmp_path_factory.mktemp("restart")
    small = _produce(s3, s3_endpoint, folder, "e2e-restart", events=1200, batch_size=300, seed=23)
    root = folder / "lh"
    proxy = FaultyS3(s3_endpoint.endpoint_url, prefix="/e2e-restart/landing/").start()
    try:
        # Two objects per Bronze batch go through the faults side by side; two Bronze batches leave Silver
        # work after its first commit.
        kill_after_first_silver_commit(
            small["landing"], root, env={"AWS_ENDPOINT_URL": proxy.endpoint_url}, max_files_per_trigger="2"
        )
    finally:
        proxy.stop()
    lakehouse = FolderLakehouse(spark, str(root))
    killed_at = lakehouse.read("silver.events").count()
    run_pipeline(spark, _params(small["landing"], root))  # the restart, here: Bronze had read every object
    return SimpleNamespace(small=small, lakehouse=lakehouse, proxy=proxy, silver_rows_when_killed=killed_at)


def test_killed_run_then_restart_gives_the_same_gold(restarted_behind_faulty_s3):
    """Silver and Gold as if never interrupted. "As if never interrupted" is the ground truth, which an
    uninterrupted run equals exactly (test_every_gold_table_equals_the_ground_truth)."""
    run = restarted_behind_faulty_s3
    assert_restarted_run_equals_the_truth(run.lakehouse, run.small, run.silver_rows_when_killed)


def test_killed_connect_run_then_restart_gives_the_same_gold(e2e_connect_run, e2e_landing):
    """The same, through Spark Connect: the shared Connect run was killed once Silver had committed its first
    micro-batch (conftest.e2e_connect_run)."""
    run = e2e_connect_run
    assert_restarted_run_equals_the_truth(run.lakehouse, e2e_landing, run.silver_rows_when_killed)


def assert_restarted_run_equals_the_truth(lakehouse: FolderLakehouse, landed: dict, killed_at: int) -> None:
    from lakehouse import catalog

    expected_silver = landed["manifest"]["counts"]["valid_unique_events"]
    assert 0 < killed_at < expected_silver, "the run was not interrupted mid-stream"
    ids = [r.event_id for r in lakehouse.read("silver.events").select("event_id").collect()]
    assert len(ids) == len(set(ids)) == expected_silver
    expected = expected_gold(landed["truth"])
    actual = gold_snapshot(lakehouse)
    for spec in catalog.GOLD_TABLES:
        columns = [c for c in spec.public_columns if c != "event_date" or spec.name != "gold.events_per_minute"]
        assert actual[spec.name] == _rows(expected[spec.name], columns), spec.name
    assert_model_equals_the_truth(lakehouse, landed["truth"])
    assert reconcile.conservation(lakehouse).holds


def assert_model_equals_the_truth(lakehouse: FolderLakehouse, truth: list[dict]) -> None:
    """Every table of the Gold model equals the independent computation (tests/model_truth.py)."""
    for name, rows in model_truth.expected_model(truth).items():
        assert model_truth.table_rows(lakehouse, name) == rows, name


def _line(event_id: str, event_time: str, ingest_time: str, **fields) -> str:
    event = {
        "event_id": event_id,
        "schema_version": 1,
        "event_time": event_time,
        "ingest_time": ingest_time,
        "user_id": "u1",
        "session_id": "s1",
        "action": "view",
        "page": "/home",
    }
    event.update(fields)
    return json.dumps(event)


def test_duplicates_hours_apart_are_removed_and_late_events_kept(spark, tmp_path):
    """A local landing folder, three drops hours apart, the pipeline run after each (availableNow)."""
    landing, root = tmp_path / "landing", tmp_path / "lh"
    landing.mkdir()
    a = "aaaaaaaa-0000-4000-8000-000000000001"
    late = "bbbbbbbb-0000-4000-8000-000000000002"
    steady = [f"cccccccc-0000-4000-8000-{i:012d}" for i in range(4)]
    drops = [
        [_line(a, "2026-11-20T08:00:00Z", "2026-11-20T08:00:01Z")]
        + [_line(steady[0], "2026-11-20T09:00:00Z", "2026-11-20T09:00:01Z")],
        # Six hours later: the watermark moves to 13:50.
        [_line(steady[1], "2026-11-20T14:00:00Z", "2026-11-20T14:00:01Z")],
        [
            _line(a, "2026-11-20T08:00:00Z", "2026-11-20T14:05:00Z"),  # resent hours later
            _line(a, "2026-11-20T08:00:00Z", "2026-11-20T14:06:00Z", page="/other"),  # same id, new payload
            _line(late, "2026-11-20T09:30:00Z", "2026-11-20T14:07:00Z"),  # 4.5 h behind the watermark
            _line(late, "2026-11-20T09:30:00Z", "2026-11-20T14:08:00Z"),  # and its duplicate
            _line(steady[2], "2026-11-20T14:10:00Z", "2026-11-20T14:10:01Z"),
        ],
    ]
    cached_before = _persistent_rdds(spark)
    for index, lines in enumerate(drops):
        (landing / f"drop-{index}.jsonl").write_text("\n".join(lines) + "\n")
        run_pipeline(spark, _params(str(landing), root))
    # Every micro-batch releases what it cached or checkpointed: a long run must not fill memory.
    assert _persistent_rdds(spark) - cached_before == set()
    lakehouse = FolderLakehouse(spark, str(root))
    silver = {r.event_id: r for r in lakehouse.read("silver.events").collect()}
    assert sorted(silver) == sorted([a, late, steady[0], steady[1], steady[2]])
    assert silver[a].page == "/home" and silver[a].is_late is False
    assert silver[late].is_late is True
    quarantine = [(r.event_id, r.reason) for r in lakehouse.read("silver.quarantine").collect()]
    assert quarantine == [(a, "conflicting_duplicate")]
    c = reconcile.conservation(lakehouse)
    assert (c.landed_lines, c.silver_rows, c.quarantined_rows, c.duplicates_removed, c.late_in_silver) == (8, 5, 1, 2, 1)
    assert c.holds
    kpis = {r.event_date.isoformat(): r.events for r in lakehouse.read("gold.daily_kpis").collect()}
    assert kpis == {"2026-11-20": 5}
    # The model: the late event joined session s1 two runs after its later events, the resent and the
    # conflicting copy of `a` count once, and s1 is what its five events give in time order.
    first_arrivals: dict[str, dict] = {}
    for drop in drops:
        for line in drop:
            first_arrivals.setdefault(json.loads(line)["event_id"], json.loads(line))
    assert_model_equals_the_truth(lakehouse, list(first_arrivals.values()))
    s1 = lakehouse.read("gold.sessions").first()
    assert (s1.session_id, s1.events, s1.session_start, s1.session_end) == (
        "s1", 5, datetime(2026, 11, 20, 8), datetime(2026, 11, 20, 14, 10)
    )


def _persistent_rdds(spark) -> set[int]:
    return {int(k) for k in spark.sparkContext._jsc.getPersistentRDDs().keySet()}


def test_resetting_silver_rebuilds_silver_and_gold_from_bronze_with_truthful_metrics(spark, s3, s3_endpoint, tmp_path):
    """Run, reset Silver (and so Gold), run again: Bronze untouched, the rest equal to the ground truth, and
    ops.pipeline_metrics holding only the new streams' batches, so the reconciliation reads no stale row."""
    from deltalake import DeltaTable

    small = _produce(s3, s3_endpoint, tmp_path, "e2e-reset", events=600, batch_size=150, seed=29)
    root = tmp_path / "lh"
    run_pipeline(spark, _params(small["landing"], root))
    lakehouse = FolderLakehouse(spark, str(root))
    bronze_version = DeltaTable(lakehouse.path("bronze.events")).version()
    old_streams = {r.stream_id for r in lakehouse.read("ops.pipeline_metrics").filter("layer != 'bronze'").collect()}

    run_pipeline(spark, _params(small["landing"], root, reset="silver"))

    assert DeltaTable(lakehouse.path("bronze.events")).version() == bronze_version
    metrics = lakehouse.read("ops.pipeline_metrics").collect()
    new_streams = {r.stream_id for r in metrics if r.layer != "bronze"}
    assert new_streams and not new_streams & old_streams
    c = reconcile.conservation(lakehouse)
    counts = small["manifest"]["counts"]
    assert (c.landed_lines, c.silver_rows, c.duplicates_removed) == (
        counts["lines_sent"], counts["valid_unique_events"], counts["natural_duplicates"]
    )
    assert c.holds
    expected = expected_gold(small["truth"])
    actual = gold_snapshot(lakehouse)
    from lakehouse import catalog

    for spec in catalog.GOLD_TABLES:
        columns = [c for c in spec.public_columns if c != "event_date" or spec.name != "gold.events_per_minute"]
        assert actual[spec.name] == _rows(expected[spec.name], columns), spec.name
    assert_model_equals_the_truth(lakehouse, small["truth"])


def test_the_pipeline_completes_exactly_behind_an_s3_endpoint_that_fails(restarted_behind_faulty_s3):
    """Each failure of the S3 endpoint is retried, and the tables are exactly what they would be without them."""
    from faulty_s3 import FAULTS

    small, proxy, lakehouse = (
        restarted_behind_faulty_s3.small, restarted_behind_faulty_s3.proxy, restarted_behind_faulty_s3.lakehouse
    )
    objects = small["manifest"]["counts"]["objects"]
    # Every landed object met every fault once (and some listings a 503 too) before it was read.
    assert {fault: proxy.injected[fault] for fault in FAULTS if fault and fault != "slow_down"} == dict.fromkeys(
        ("internal_error", "reset", "truncated_body", "delay"), objects
    )
    assert proxy.injected["slow_down"] > objects
    checks = reconcile.against_manifest(lakehouse, small["manifest"])
    assert [(name, expected) for name, expected, _ in checks] == [(name, found) for name, _, found in checks]
    assert reconcile.conservation(lakehouse).holds
