"""The traffic model: stable users, keyed ip hashes, sessions, funnel journeys, referrers, contract-valid events."""

from __future__ import annotations

import hmac
import re
from collections import Counter, defaultdict
from datetime import timedelta
from hashlib import sha256

from support import parse_time, traffic_events, traffic_model

from lakehouse import contract
from lakehouse.rules import SESSION_TIMEOUT_MINUTES
from producer.traffic import SITE, ip_hash


def test_users_keep_their_device_country_agent_and_ip_hash_across_runs():
    attributes = defaultdict(set)
    for seed in (1, 2):
        for event in traffic_events(traffic_model(seed), 4000):
            attributes[event["user_id"]].add(
                (event["device_type"], event["country"], event["user_agent"], event["ip_hash"])
            )
    assert len(attributes) > 100
    assert all(len(values) == 1 for values in attributes.values())
    devices = Counter(next(iter(v))[0] for v in attributes.values())
    assert devices["mobile"] > devices["desktop"] > devices["tablet"] > 0


def test_ip_hash_is_an_hmac_sha256_with_the_configured_key(monkeypatch):
    monkeypatch.setenv("CLICKSTREAM_HMAC_KEY", "key-one")
    first = traffic_model().user(5)
    monkeypatch.setenv("CLICKSTREAM_HMAC_KEY", "key-two")
    second = traffic_model().user(5)
    assert re.fullmatch(r"[0-9a-f]{64}", first.ip_hash)
    assert first.ip_hash != second.ip_hash
    assert (first.device_type, first.country, first.user_agent) == (
        second.device_type,
        second.country,
        second.user_agent,
    )
    assert ip_hash("203.0.113.7", b"key-one") == hmac.new(b"key-one", b"203.0.113.7", sha256).hexdigest()
    assert ip_hash("203.0.113.7", b"key-one") != sha256(b"203.0.113.7").hexdigest()


def test_sessions_never_span_30_minutes_of_inactivity():
    # One event an hour: every event finds its session timed out and opens a new one.
    sparse = traffic_events(traffic_model(rate=1 / 3600), 20, rate=1 / 3600)
    assert len({e["session_id"] for e in sparse}) == 20
    by_session = defaultdict(list)
    for event in traffic_events(traffic_model(rate=0.5), 3000, rate=0.5):
        by_session[event["session_id"]].append(parse_time(event["event_time"]))
    gaps = [b - a for times in by_session.values() for a, b in zip(times, times[1:], strict=False)]
    assert gaps and max(gaps) <= timedelta(minutes=SESSION_TIMEOUT_MINUTES)
    assert all(b >= a for times in by_session.values() for a, b in zip(times, times[1:], strict=False))
    users_per_session = defaultdict(set)
    for event in traffic_events(traffic_model(), 2000):
        users_per_session[event["session_id"]].add(event["user_id"])
    assert all(len(u) == 1 for u in users_per_session.values())


def test_journeys_follow_the_funnel_with_the_configured_probabilities():
    def journeys(**probabilities):
        sessions = defaultdict(list)
        for event in traffic_events(traffic_model(**probabilities), 6000):
            sessions[event["session_id"]].append(event)
        return sessions

    everything = journeys(click_probability=1.0, add_to_cart_probability=1.0, purchase_probability=1.0)
    for events in everything.values():
        actions = [e["action"] for e in events]
        expected = ["view", "click", "add_to_cart", "purchase"] * (len(actions) // 4 + 1)
        assert actions == expected[: len(actions)]
        for event in events:
            if event["action"] == "add_to_cart":
                assert event["page"].startswith("/products/sku-")
            if event["action"] == "purchase":
                assert event["page"] == "/checkout"
    views_only = journeys(click_probability=0.0)
    assert {e["action"] for events in views_only.values() for e in events} == {"view"}
    low = Counter(e["action"] for s in journeys(click_probability=0.2).values() for e in s)
    high = Counter(e["action"] for s in journeys(click_probability=0.8).values() for e in s)
    assert low["click"] / low["view"] < high["click"] / high["view"]
    assert high["purchase"] > 0


def test_referrers_come_from_the_source_then_from_the_previous_page():
    sessions = defaultdict(list)
    for event in traffic_events(traffic_model(), 5000):
        sessions[event["session_id"]].append(event)
    external = {"organic": "https://", "paid_search": "https://", "social": "https://", "referral": "https://"}
    for events in sessions.values():
        first = events[0]
        assert first["action"] == "view"
        if first["source"] in (None, "email"):
            assert first["referrer"] is None
        else:
            assert first["referrer"].startswith(external[first["source"]])
            assert not first["referrer"].startswith(SITE)
        assert len({e["source"] for e in events}) == 1
        for previous, event in zip(events, events[1:], strict=False):
            if event["action"] == "view":
                assert event["referrer"] == SITE + previous["page"]


def test_every_event_satisfies_the_contract_and_is_received_after_it_happened():
    for event in traffic_events(traffic_model(), 1500):
        assert contract.violation(event) is None
        assert parse_time(event["ingest_time"]) >= parse_time(event["event_time"])
        assert event["ingest_time"].endswith("Z") and len(event["ingest_time"]) == 24
