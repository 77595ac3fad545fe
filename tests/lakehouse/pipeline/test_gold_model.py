"""The Gold model's micro-batch on a folder lakehouse, batch by batch: events arriving out of order give the tables
in-order processing gives, and a batch replayed (after a crash at any write, or on a compute whose MERGEs have
no transaction guard, as on Databricks) changes nothing."""

from __future__ import annotations

from datetime import datetime

import model_truth
import pytest

from lakehouse import catalog
from lakehouse.pipeline import gold_model
from lakehouse.pipeline.metrics import MicroBatch
from lakehouse_local.tables import FolderLakehouse

COLUMNS = (
    "event_id string, event_time timestamp, event_date date, user_id string, session_id string, page string, "
    "action string, device_type string, country string, source string, is_late boolean, ingest_time timestamp"
)
FIELDS = [c.split()[0] for c in COLUMNS.split(", ")]


def event(event_id: str, time: str, *, user="u1", session="s1", action="view", page="/", source="organic",
          device="mobile", country="DE") -> dict:
    t = datetime.fromisoformat(time)
    return {"event_id": event_id, "event_time": t, "event_date": t.date(), "user_id": user, "session_id": session,
            "page": page, "action": action, "device_type": device, "country": country, "source": source,
            "is_late": False, "ingest_time": t}


@pytest.fixture
def lakehouse(spark, tmp_path):
    tables = FolderLakehouse(spark, str(tmp_path / "lh"))
    tables.create_schemas()
    for spec in (*catalog.MODEL_TABLES, catalog.PIPELINE_METRICS):
        tables.create_table(spec)
    return tables


def run_batch(spark, tables, batch_id: int, events: list[dict], stream: str = "test") -> None:
    batch = spark.createDataFrame([tuple(e[f] for f in FIELDS) for e in events], COLUMNS)
    gold_model.process(MicroBatch(tables.bind(spark), gold_model.STREAM, stream, batch_id), batch, lookup_days=4)


def snapshot(tables) -> dict[str, list[tuple]]:
    return {name: model_truth.table_rows(tables, name) for name in model_truth.EXPECTED}


def test_three_changes_with_the_middle_event_last_give_exactly_three_versions(spark, lakehouse):
    first = event("e1", "2026-11-20 10:00:00", source="organic")
    middle = event("e2", "2026-11-20 11:00:00", source="email", session="s2")
    last = event("e3", "2026-11-20 12:00:00", source="social", session="s3")
    run_batch(spark, lakehouse, 0, [first, last])
    run_batch(spark, lakehouse, 1, [middle])

    versions = sorted(
        (r.source, r.valid_from, r.valid_to, r.is_current) for r in lakehouse.read("gold.dim_user").collect()
    )
    t = [e["event_time"] for e in (first, middle, last)]
    assert versions == sorted([
        ("organic", t[0], t[1], False),
        ("email", t[1], t[2], False),
        ("social", t[2], None, True),
    ])
    assert snapshot(lakehouse) == model_truth.expected_model([first, middle, last])


def test_a_late_event_recomputes_its_session_and_a_duplicate_never_reaches_the_model(spark, lakehouse):
    """Silver holds one row per event_id: what reaches this stream is each event once, late ones in later batches."""
    events = [
        event("a1", "2026-11-20 10:00:00", page="/category/shoes"),
        event("a2", "2026-11-20 10:02:00", action="click", page="/products/sku-1"),
        event("a4", "2026-11-20 10:09:00", action="purchase", page="/checkout"),
        event("b1", "2026-11-20 23:59:00", user="u2", session="s9", source=None, device=None),
    ]
    late = [
        event("a3", "2026-11-20 10:05:00", action="add_to_cart", page="/cart"),  # inside s1
        event("a0", "2026-11-20 09:58:00", page="/", source="email"),  # before s1's start: new entry
        event("b2", "2026-11-21 00:01:00", user="u2", session="s9", page="/search"),  # s9 crosses midnight
    ]
    run_batch(spark, lakehouse, 0, events)
    run_batch(spark, lakehouse, 1, late)
    assert snapshot(lakehouse) == model_truth.expected_model(events + late)
    s1 = next(r for r in lakehouse.read("gold.sessions").collect() if r.session_id == "s1")
    assert (s1.events, s1.entry_page, s1.source, s1.add_to_carts, s1.duration_s) == (5, "/", "email", 1, 660.0)


@pytest.mark.parametrize("writes_before_the_crash", [1, 4])
def test_a_batch_interrupted_after_a_write_and_replayed_twice_gives_the_same_tables(spark, lakehouse,
                                                                                     writes_before_the_crash):
    """Killed after the fact rows (1) or after users' history (4, before their features); then replayed with
    MERGEs that carry no transaction id, as on Databricks (appends keep theirs, as Delta's txnAppId does), twice."""
    events = [event("e1", "2026-11-20 10:00:00"), event("e2", "2026-11-20 10:05:00", source="email", page="/cart")]
    late = [event("e0", "2026-11-20 09:00:00", source="social", session="s0"),
            event("e3", "2026-11-20 10:03:00", source="social"), event("f1", "2026-11-20 10:04:00", user="u2")]
    run_batch(spark, lakehouse, 0, events)
    with pytest.raises(Interrupted):
        run_batch(spark, Crashing(spark, lakehouse.location, writes=writes_before_the_crash), 1, late)
    expected = model_truth.expected_model(events + late)
    run_batch(spark, Unguarded(spark, lakehouse.location), 1, late)
    assert snapshot(lakehouse) == expected
    run_batch(spark, Unguarded(spark, lakehouse.location), 1, late)
    assert snapshot(lakehouse) == expected


class Unguarded(FolderLakehouse):
    """MERGEs as on Databricks: no transaction id is checked, so a replayed batch MERGEs again."""

    _calls = 0

    def _fresh(self, app_id: str) -> str:
        Unguarded._calls += 1
        return f"{app_id}:replay-{Unguarded._calls}"

    def upsert(self, df, name, *, app_id, batch_id, **options):
        super().upsert(df, name, app_id=self._fresh(app_id), batch_id=batch_id, **options)

    def apply_changes(self, df, name, *, app_id, batch_id, within=None):
        super().apply_changes(df, name, app_id=self._fresh(app_id), batch_id=batch_id, within=within)


class Interrupted(RuntimeError):
    pass


class Crashing(Unguarded):
    """Stops the batch (as a kill would) once ``writes`` model tables have been written: counted as each write
    commits, which for writes given together is when their block ends."""

    def __init__(self, spark, location: str, *, writes: int) -> None:
        super().__init__(spark, location)
        self.left = [writes]  # shared with the copies a together() block works on

    def _write(self, source, commit):
        def counted(rows):
            if self.left[0] == 0:
                raise Interrupted("killed mid-batch")
            self.left[0] -= 1
            return commit(rows)

        return super()._write(source, counted)
