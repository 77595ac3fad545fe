"""The local dashboard in a real browser: Debian's headless Chromium loads the page served over the
demo lakehouse (``e2e_lakehouse``), and the charts' titles and figures in the DOM it rendered must
equal values read here, independently, from the Gold, Silver and ``ops`` Delta tables.

A screenshot of the page is kept as a test artifact: ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from browser import Element, find_chromium, get, parse_dom, read_delta, run_chromium, start_dashboard
from support import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "dashboard.png"
WINDOW = (1400, 2200)

# Each chart card: its data-testid, the title it must show, and the SVG charts drawn inside it.
CHARTS = {
    "chart-kpi-trend": ("DAU and conversion rate by day", ["chart-dau", "chart-conversion-rate"]),
    "chart-funnel": ("Funnel", ["chart-funnel-bars"]),
    "chart-events-per-minute": ("Events per minute by action", ["chart-epm-area"]),
    "chart-freshness": ("Pipeline freshness", ["chart-freshness-bars"]),
    "chart-quarantine": ("Quarantine by reason", ["chart-quarantine-bars"]),
    "chart-traffic": (
        "Traffic split",
        ["chart-traffic-device_type", "chart-traffic-country", "chart-traffic-source"],
    ),
}
TABLES = (
    "gold.daily_kpis",
    "gold.funnel_daily",
    "gold.events_per_minute",
    "gold.traffic_daily",
    "ops.pipeline_metrics",
    "silver.events",
    "silver.quarantine",
)
# Bar colours of the funnel (view, click, add_to_cart, purchase) and of the traffic split (country, source).
CHART_COLOURS = ("4c78a8", "f58518", "54a24b", "e45756", "72b7b2", "b279a2")


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


@pytest.fixture(scope="module")
def lakehouse_root(e2e_lakehouse) -> Path:
    return Path(e2e_lakehouse.location)


@pytest.fixture(scope="module")
def dashboard(lakehouse_root):
    server = start_dashboard(lakehouse_root)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chromium-profile")


@pytest.fixture(scope="module")
def page(chromium, profile, dashboard) -> Element:
    """The DOM as Chromium rendered it."""
    html = run_chromium(chromium, profile, "--virtual-time-budget=5000", "--dump-dom", dashboard)
    dom = parse_dom(html)
    assert dom.one("page-title").text() == "Clickstream lakehouse", html[:2000]
    return dom


# -- the expected figures, read straight from the Delta tables ---------------------------------------------------


@pytest.fixture(scope="module")
def tables(lakehouse_root) -> dict[str, pa.Table]:
    read = {name: read_delta(lakehouse_root, name) for name in TABLES}
    for name in TABLES:
        assert read[name].num_rows > 0, f"the demo lakehouse's {name} is empty: nothing for the page to show"
    return read


@pytest.fixture(scope="module")
def latest_kpis(tables) -> dict:
    kpis = tables["gold.daily_kpis"]
    latest_day = pc.max(kpis["event_date"]).as_py()
    rows = kpis.filter(pc.equal(kpis["event_date"], pa.scalar(latest_day, pa.date32()))).to_pylist()
    assert len(rows) == 1, f"gold.daily_kpis has {len(rows)} rows for {latest_day}"
    return rows[0]


def rows_on(table: pa.Table, day) -> list[dict]:
    return table.filter(pc.equal(table["event_date"], pa.scalar(day, pa.date32()))).to_pylist()


def svg_texts(element: Element) -> list[str]:
    return [t.text() for t in element.tags("text")]


# -- the page in the browser -------------------------------------------------------------------------------------


def test_every_chart_shows_its_title_and_drawing(page):
    assert page.all("notice") == [], f"the page reports unavailable tables: {page.one('notice').text()}"
    for testid, (title, drawings) in CHARTS.items():
        card = page.one(testid)
        assert card.tag == "section"
        assert card.one(f"{testid}-title").text() == title
        for drawing in drawings:
            svg = card.one(drawing)
            assert svg.tag == "svg", f"{drawing} is a <{svg.tag}>, not an SVG chart"
            assert svg.tags("text"), f"{drawing} in {testid} has no text (labels or figures)"
        empty = [e.testid for e in card.iter() if (e.testid or "").startswith("empty-")]
        assert empty == [], f"{testid} shows an empty-chart placeholder: {empty}"


def test_headline_figures_equal_the_tables(page, tables, latest_kpis):
    day = latest_kpis["event_date"].isoformat()
    assert page.one("kpi-latest-day").text() == day
    expected = {
        "kpi-dau": (latest_kpis["active_users"], f"{latest_kpis['active_users']:,}"),
        "kpi-sessions": (latest_kpis["sessions"], f"{latest_kpis['sessions']:,}"),
        "kpi-events": (latest_kpis["events"], f"{latest_kpis['events']:,}"),
        "kpi-conversion-rate": (latest_kpis["conversion_rate"], f"{latest_kpis['conversion_rate']:.2%}"),
        "kpi-silver-rows": (tables["silver.events"].num_rows, f"{tables['silver.events'].num_rows:,}"),
        "kpi-quarantined": (tables["silver.quarantine"].num_rows, f"{tables['silver.quarantine'].num_rows:,}"),
    }
    for testid, (raw, shown) in expected.items():
        tile = page.one(testid)
        assert tile.text() == shown, f"{testid} shows {tile.text()!r}, the tables give {shown!r}"
        assert tile.attrs["data-value"] == str(raw), testid
    late = int(pc.sum(pc.cast(tables["silver.events"]["is_late"], pa.int64())).as_py() or 0)
    assert f"{late:,} late" in page.one("headline").text()

    # The latest day in the trend: its row in the table and its (always labelled) point on the DAU chart.
    row = [td.text() for td in page.one(f"kpi-trend-{day}").tags("td")]
    assert row == [
        day,
        f"{latest_kpis['active_users']:,}",
        f"{latest_kpis['sessions']:,}",
        f"{latest_kpis['converted_sessions']:,}",
        f"{latest_kpis['conversion_rate']:.2%}",
        f"{latest_kpis['events']:,}",
    ]
    dau_chart = page.one("chart-dau")
    assert day in svg_texts(dau_chart)
    assert f"{latest_kpis['active_users']:,}" in svg_texts(dau_chart)
    assert f"{latest_kpis['conversion_rate']:.1%}" in svg_texts(page.one("chart-conversion-rate"))


def test_funnel_and_traffic_of_the_latest_day_equal_the_tables(page, tables, latest_kpis):
    day = latest_kpis["event_date"]
    assert page.one("funnel-day").text() == day.isoformat()
    steps = sorted(rows_on(tables["gold.funnel_daily"], day), key=lambda r: r["step_order"])
    assert steps, f"gold.funnel_daily has no rows for {day}"
    for step in steps:
        bar = page.one(f"funnel-step-{step['step']}")
        share = step["sessions"] / steps[0]["sessions"]
        assert bar.attrs["data-value"] == str(step["sessions"])
        assert svg_texts(bar) == [f"{step['step_order']}. {step['step']}", f"{step['sessions']:,} sessions · {share:.1%}"]
    assert len(page.one("chart-funnel-bars").tags("g")) == len(steps)

    assert page.one("traffic-day").text() == day.isoformat()
    traffic = rows_on(tables["gold.traffic_daily"], day)
    total = sum(r["events"] for r in traffic)
    by_device = Counter()
    for r in traffic:
        by_device[r["device_type"] or "unknown"] += r["events"]
    for device, events in by_device.items():
        bar = page.one(f"traffic-device_type-{device}")
        assert bar.attrs["data-value"] == str(events)
        assert svg_texts(bar)[-1] == f"{events:,} · {events / total:.1%}"
    assert len(page.one("chart-traffic-device_type").tags("g")) == len(by_device)
    # Countries: at most 10 bars (the smallest folded into "other"), every event counted once.
    by_country = Counter()
    for r in traffic:
        by_country[r["country"] or "unknown"] += r["events"]
    bars = {g.testid.removeprefix("traffic-country-"): int(g.attrs["data-value"])
            for g in page.one("chart-traffic-country").tags("g")}
    assert sum(bars.values()) == total
    if len(by_country) <= 10:
        assert bars == dict(by_country)
    else:
        shown = {country: events for country, events in bars.items() if country != "other"}
        assert len(shown) == 9 and all(by_country[country] == events for country, events in shown.items()), bars
        assert min(shown.values()) >= max(e for c, e in by_country.items() if c not in shown), "not the top countries"


def test_events_per_minute_totals_equal_the_table(page, tables):
    epm = tables["gold.events_per_minute"]
    latest = pc.max(epm["window_start"]).as_py()
    start = latest - timedelta(hours=3) + timedelta(minutes=1)  # the page's default window: 3 h, both ends in
    totals: Counter = Counter()
    for r in epm.to_pylist():
        if r["window_start"] >= start:
            totals[r["action"]] += r["events"]
    assert totals, "no events in the last 3 hours of gold.events_per_minute"
    for action, events in totals.items():
        assert page.one(f"epm-total-{action}").text() == f"{events:,}", action
    per_minute: Counter = Counter()
    for r in epm.to_pylist():
        if r["window_start"] >= start:
            per_minute[r["window_start"]] += r["events"]
    assert page.one("epm-peak").text() == f"{max(per_minute.values()):,}"


def test_quarantine_and_freshness_equal_the_tables(page, tables):
    quarantine = tables["silver.quarantine"]
    assert page.one("quarantine-total").text() == f"{quarantine.num_rows:,}"
    by_reason = Counter(r or "unknown" for r in quarantine["reason"].to_pylist())
    for reason, lines in by_reason.items():
        bar = page.one(f"quarantine-reason-{reason}")
        assert bar.attrs["data-value"] == str(lines)
        assert svg_texts(bar) == [reason, f"{lines:,} · {lines / quarantine.num_rows:.1%}"]
    assert len(page.one("chart-quarantine-bars").tags("g")) == len(by_reason)

    # Freshness: per layer, the latencies of the latest batch that read rows (an empty, watermark-only
    # batch after the data has none), and the number of batches.
    metrics = tables["ops.pipeline_metrics"].to_pylist()
    layers = {m["layer"] for m in metrics}
    assert {"bronze", "silver", "gold"} <= layers
    for layer in layers:
        batches = [m for m in metrics if m["layer"] == layer]
        measured = max((m for m in batches if m["rows_in"]), key=lambda m: m["committed_at"])
        cells = [td.text() for td in page.one(f"freshness-layer-{layer}").tags("td")]
        assert cells == [
            layer,
            str(measured["batch_id"]),
            f"{measured['rows_in']:,}",
            seconds(measured["latency_p50_s"]),
            seconds(measured["latency_p95_s"]),
            seconds(measured["latency_max_s"]),
            cells[6],  # the age of the last commit, which moves with the clock
            f"{len(batches):,}",
        ], layer
        assert cells[6].endswith(" ago"), cells
        for stat in ("p50", "p95"):
            bar = page.one(f"freshness-{layer}-{stat}")
            assert svg_texts(bar)[-1] == seconds(measured[f"latency_{stat}_s"]), (layer, stat)
            assert svg_texts(bar)[-1] != "—", f"{layer} {stat} latency not shown"


def seconds(value: float) -> str:
    """The page's durations: one decimal in s below 2 min, min below 2 h, h below 2 days, else d."""
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172_800, "h", 3600)):
        if abs(value) < limit:
            return f"{value / size:.1f} {unit}"
    return f"{value / 86_400:.1f} d"


def test_summary_json_equals_the_tables(dashboard, tables, latest_kpis):
    status, body = get(dashboard + "api/summary.json")
    assert status == 200, body
    summary = json.loads(body)
    assert summary["unavailable_tables"] == {}
    assert summary["latest_day"] == latest_kpis["event_date"].isoformat()
    assert summary["dau"] == latest_kpis["active_users"]
    assert summary["sessions"] == latest_kpis["sessions"]
    assert summary["events"] == latest_kpis["events"]
    assert summary["conversion_rate"] == latest_kpis["conversion_rate"]
    assert summary["silver_rows"] == tables["silver.events"].num_rows
    assert summary["quarantined"] == tables["silver.quarantine"].num_rows


# -- the screenshot ----------------------------------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int, Counter]:
    """Width, height and a count of every RGB colour of an 8-bit, non-interlaced RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    position, compressed, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunk = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            compressed += chunk
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(compressed), width * bpp
    previous, colours, offset = bytearray(stride), Counter(), 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = previous[x]
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                c = previous[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc_ = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc_ else b if pb <= pc_ else c)) & 255
        colours.update(bytes(line[x : x + 3]).hex() for x in range(0, stride, bpp))
        previous = line
    return width, height, colours


def test_screenshot_shows_the_charts(chromium, profile, dashboard, page):
    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    run_chromium(
        chromium, profile, "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={SCREENSHOT}", dashboard,
    )
    assert SCREENSHOT.is_file(), f"Chromium wrote no screenshot at {SCREENSHOT}"
    data = SCREENSHOT.read_bytes()
    assert len(data) > 50_000, f"{SCREENSHOT} is only {len(data)} bytes: a blank or error page?"
    width, height, colours = decode_png(data)
    assert (width, height) == WINDOW
    assert colours["ffffff"] > 0.2 * width * height, "no white chart cards on the page"
    missing = [c for c in CHART_COLOURS if colours[c] < 200]
    assert missing == [], f"chart colours #{', #'.join(missing)} hardly appear in {SCREENSHOT}: charts not drawn?"


# -- no lakehouse yet --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_without_tables_the_page_says_so_and_names_the_folder(tmp_path, state):
    folder = tmp_path / "lakehouse"
    if state == "empty":
        folder.mkdir()
    server = start_dashboard(folder)
    try:
        status, html = get(server.url)
        summary_status, summary = get(server.url + "api/summary.json")
    finally:
        server.stop()
    assert status == 200, html
    dom = parse_dom(html)
    notice = dom.one("notice").text()
    assert "No data yet" in notice and str(folder) in notice and "make demo" in notice, notice
    assert dom.one("lakehouse-path").text() == str(folder)
    for testid in ("kpi-dau", "kpi-events", "kpi-conversion-rate", "kpi-quarantined"):
        assert dom.one(testid).text() == "—"
    for testid, (title, _) in CHARTS.items():
        card = dom.one(testid)
        assert card.one(f"{testid}-title").text() == title
        assert any((e.testid or "").startswith("empty-") for e in card.iter()), f"{testid} is not marked empty"
    assert summary_status == 200
    assert sorted(json.loads(summary)["unavailable_tables"]) == sorted(TABLES)
