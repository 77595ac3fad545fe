"""End to end: producer (every fault) → notebooks 00-04 → the Gold model equals an independent computation.

The shared e2e run (classic and Spark Connect) processes Silver in several Gold model batches, with late
events (hours behind, in later batches) and duplicates. Every model table must equal what
``tests/model_truth.py`` computes in plain Python from the producer's truth file.
"""

from __future__ import annotations

from collections import Counter

import model_truth
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["classic", "connect"])
def lakehouse(request):
    return request.getfixturevalue("e2e_lakehouse" if request.param == "classic" else "e2e_connect_lakehouse")


@pytest.fixture(scope="module")
def expected(e2e_landing) -> dict[str, list[tuple]]:
    return model_truth.expected_model(e2e_landing["truth"])


@pytest.mark.parametrize("table", list(model_truth.EXPECTED))
def test_every_model_table_equals_the_independent_computation(lakehouse, expected, table):
    assert model_truth.table_rows(lakehouse, table) == expected[table]


def test_the_model_was_built_over_several_batches(lakehouse):
    metrics = lakehouse.read("ops.pipeline_metrics").filter("layer = 'gold_model' AND rows_in > 0").collect()
    assert len(metrics) >= 2
    assert sum(m.rows_in for m in metrics) == lakehouse.read("silver.events").count()


def test_is_late_in_the_fact_table_is_silvers(lakehouse):
    silver = {r.event_id: r.is_late for r in lakehouse.read("silver.events").select("event_id", "is_late").collect()}
    fact = {r.event_id: r.is_late for r in lakehouse.read("gold.fact_events").select("event_id", "is_late").collect()}
    assert fact == silver
    assert any(fact.values())


def test_late_events_split_users_history_as_in_order_processing_would(lakehouse, e2e_landing):
    """The producer's late events come hours after the user's later events with another source: each one that
    differs from the version it falls in starts a version of its own, which ends at the user's next event."""
    late = {f["event_id"] for f in e2e_landing["faults"] if f["kind"] == "late"}
    evs = model_truth.events(e2e_landing["truth"])
    by_user = {}
    for e in sorted(evs, key=lambda e: (e["event_time"], e["event_id"])):
        by_user.setdefault(e["user_id"], []).append(e)
    versions = {(r.user_id, r.valid_from): r for r in lakehouse.read("gold.dim_user").collect()}
    splits = 0
    for es in by_user.values():
        for before, event, after in zip(es, es[1:], es[2:], strict=False):
            attrs = [tuple(x[f] for f in model_truth.TRACKED) for x in (before, event, after)]
            if event["event_id"] in late and attrs[1] != attrs[0] and attrs[2] != attrs[1]:
                version = versions[(event["user_id"], event["event_time"])]
                assert version.valid_to == after["event_time"]
                splits += 1
    assert splits >= 3, "the fixture should hold late events that split a user's history"


def test_a_duplicate_counts_once_in_facts_sessions_and_features(lakehouse, e2e_landing):
    duplicated = {f["event_id"] for f in e2e_landing["faults"] if f["kind"] == "natural_duplicate"}
    assert duplicated
    fact = Counter(r.event_id for r in lakehouse.read("gold.fact_events").select("event_id").collect())
    assert all(fact[event_id] == 1 for event_id in duplicated)
    truth = {e["event_id"]: e for e in e2e_landing["truth"]}
    sessions = {truth[i]["session_id"] for i in duplicated if i in truth}
    stored = {r.session_id: r.events for r in lakehouse.read("gold.sessions").collect()}
    sent = Counter(e["session_id"] for e in e2e_landing["truth"])
    assert sessions and all(stored[s] == sent[s] for s in sessions)
    assert len(stored) == len(sent)


def test_the_demo_prints_sessions_and_users_beside_the_kpis(e2e_lakehouse, capsys):
    from lakehouse_local.cli import print_model_summary

    print_model_summary(e2e_lakehouse)
    out = capsys.readouterr().out
    users = e2e_lakehouse.read("gold.customer_features").count()
    sessions = e2e_lakehouse.read("gold.sessions").groupBy("session_date").count().collect()
    assert "Gold model · sessions (by the day they started) and users" in out
    assert f"  users {users:,}: " in out
    for row in sessions:
        assert f"|{row.session_date.isoformat()}|{row['count']:<8}|" in out
