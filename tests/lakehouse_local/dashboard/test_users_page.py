"""The dashboard's "Sessions and users" page (``/users``) in a real browser: headless Chromium renders it over the
demo lakehouse (``e2e_lakehouse``), and its figures must equal values read here, independently, from the Gold
model's Delta tables.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from browser import Element, find_chromium, get, parse_dom, read_delta, run_chromium, start_dashboard

CHARTS = {
    "chart-sessions": ("Sessions per day", "chart-sessions-line"),
    "chart-new-returning": ("New and returning users per day", "chart-new-returning-line"),
    "chart-session-lengths": ("Session lengths", "session-length"),
    "chart-entry-pages": ("Sessions by entry page type", "entry-type"),
    "chart-user-history": ("Users by versions of their attributes", "user-versions"),
}
BANDS = [(30, "under 30 s"), (60, "30 s - 1 min"), (300, "1 - 5 min"), (900, "5 - 15 min"),
         (1800, "15 - 30 min"), (3600, "30 - 60 min"), (float("inf"), "1 h or more")]


def band(seconds: float) -> str:
    return "single event" if seconds == 0 else next(label for limit, label in BANDS if seconds < limit)


@pytest.fixture(scope="module")
def root(e2e_lakehouse) -> Path:
    return Path(e2e_lakehouse.location)


@pytest.fixture(scope="module")
def url(root):
    server = start_dashboard(root)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def page(url, tmp_path_factory) -> Element:
    html = run_chromium(find_chromium(), tmp_path_factory.mktemp("chromium-users"), "--virtual-time-budget=5000",
                        "--dump-dom", url + "users")
    dom = parse_dom(html)
    assert dom.one("page-title").text() == "Sessions and users", html[:2000]
    return dom


@pytest.fixture(scope="module")
def tables(root) -> dict[str, list[dict]]:
    names = ("gold.sessions", "gold.fact_events", "gold.customer_features", "gold.dim_user", "gold.dim_page")
    return {name: read_delta(root, name).to_pylist() for name in names}


def test_every_chart_has_its_title_and_figures_and_the_pages_link_each_other(page, url):
    assert page.all("notice") == []
    for testid, (title, drawing) in CHARTS.items():
        card = page.one(testid)
        assert card.one(f"{testid}-title").text() == title
        assert card.one(drawing).tag == "svg" and card.one(drawing).tags("text"), drawing
    assert page.one("nav-metrics").attrs["href"] == "/"
    status, html = get(url)
    assert status == 200 and parse_dom(html).one("nav-users").attrs["href"] == "/users"


def test_headline_and_daily_figures_equal_the_tables(page, tables):
    sessions, features = tables["gold.sessions"], tables["gold.customer_features"]
    versions = Counter(r["user_id"] for r in tables["gold.dim_user"])
    first_day = {r["user_id"]: r["first_seen"].date() for r in features}
    latest = max(r["event_date"] for r in tables["gold.fact_events"])
    active = {r["user_id"] for r in tables["gold.fact_events"] if r["event_date"] == latest}
    new = sum(1 for u in active if first_day[u] == latest)
    expected = {
        "users-sessions": len(sessions),
        "users-users": len(features),
        "users-new": new,
        "users-history": sum(1 for n in versions.values() if n > 1),
    }
    for testid, value in expected.items():
        assert page.one(testid).attrs["data-value"] == str(value), testid
        assert page.one(testid).text() == f"{value:,}", testid
    row = [td.text() for td in page.one(f"users-{latest.isoformat()}").tags("td")]
    assert row == [latest.isoformat(), f"{len(active):,}", f"{new:,}", f"{len(active) - new:,}"]
    started = [s for s in sessions if s["session_date"] == latest]
    row = [td.text() for td in page.one(f"sessions-{latest.isoformat()}").tags("td")]
    assert row[:3] == [latest.isoformat(), f"{len(started):,}", f"{sum(s['converted'] for s in started):,}"]


def test_bars_equal_the_tables(page, tables):
    sessions = tables["gold.sessions"]
    bands = Counter(band(s["duration_s"]) for s in sessions)
    for label in ("single event", *(label for _, label in BANDS)):
        assert page.one(f"session-length-{label}").attrs["data-value"] == str(bands[label]), label
    kind = {r["page"]: r["page_type"] for r in tables["gold.dim_page"]}
    entries = Counter(kind[s["entry_page"]] for s in sessions)
    bars = {g.testid.removeprefix("entry-type-"): int(g.attrs["data-value"]) for g in page.one("entry-type").tags("g")}
    assert bars == dict(entries)
    versions = Counter(min(n, 4) for n in Counter(r["user_id"] for r in tables["gold.dim_user"]).values())
    for n, label in ((1, "1"), (2, "2"), (3, "3"), (4, "4+")):
        assert page.one(f"user-versions-{label}").attrs["data-value"] == str(versions[n]), label


def test_without_the_model_the_page_says_which_tables_are_missing(tmp_path):
    server = start_dashboard(tmp_path / "nothing")
    try:
        status, html = get(server.url + "users")
    finally:
        server.stop()
    dom = parse_dom(html)
    assert status == 200 and "gold.sessions" in dom.one("notice").text()
    for testid in CHARTS:
        assert any((e.testid or "").startswith("empty-") for e in dom.one(testid).iter()), testid
