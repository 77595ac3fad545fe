"""The dashboard page: one self-contained HTML document with inline SVG charts drawn here.

Nothing is fetched by the browser (no scripts, fonts or styles from elsewhere), so the page works
offline. Every chart has a visible title and shows its figures as text (labels, ``<title>`` tool
tips, small tables); stable ``data-testid`` attributes name the charts and the headline figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape
from typing import Any
from urllib.parse import urlencode

from lakehouse import catalog
from lakehouse_local.dashboard.charts import (
    FONT,
    bar_chart,
    fmt_int,
    fmt_int_axis,
    fmt_rate,
    fmt_seconds,
    fmt_time,
    line_chart,
    stacked_area_chart,
)
from lakehouse_local.dashboard.data import COLUMNS, Snapshot

ACTION_COLORS = {"view": "#4c78a8", "click": "#f58518", "add_to_cart": "#54a24b", "purchase": "#e45756"}
OTHER_COLORS = ("#72b7b2", "#b279a2", "#9d755d", "#bab0ac")
LAYER_COLORS = {"bronze": "#b07d48", "silver": "#8c9ba5", "gold": "#d4a017"}
MAX_DAY_LINKS = 14

CSS = f"""
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: #f4f5f7; color: #1f2430; font: 14px/1.4 {FONT}; }}
header {{ padding: 18px 28px 8px; }}
h1 {{ margin: 0; font-size: 22px; }}
.meta {{ margin: 4px 0 0; color: #5b6270; font-size: 12.5px; }}
.meta code {{ font-size: 12px; }}
.notice {{ margin: 10px 28px 0; padding: 10px 14px; background: #fff4d6; border: 1px solid #f0d48a; border-radius: 6px; }}
.tiles {{ display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; padding: 12px 28px; }}
.tile {{ background: #fff; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
.tile .label {{ color: #5b6270; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }}
.tile .value {{ font-size: 26px; font-weight: 600; margin-top: 2px; }}
.tile .sub {{ color: #5b6270; font-size: 12px; }}
main {{ display: grid; grid-template-columns: 1fr 1fr; gap: 14px; padding: 4px 28px 24px; }}
.card {{ background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); min-width: 0; }}
.card.wide {{ grid-column: 1 / -1; }}
.card h2 {{ margin: 0 0 2px; font-size: 16px; }}
.card .caption {{ margin: 0 0 8px; color: #5b6270; font-size: 12.5px; }}
.row {{ display: flex; gap: 18px; }}
.row > div {{ flex: 1; min-width: 0; }}
h3 {{ margin: 6px 0 2px; font-size: 13px; color: #3a4150; }}
svg {{ display: block; width: 100%; height: auto; font-family: {FONT}; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12.5px; margin-top: 6px; }}
th, td {{ padding: 3px 6px; border-bottom: 1px solid #eceef2; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ color: #5b6270; font-weight: 600; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 14px; font-size: 12.5px; margin: 2px 0 4px; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }}
.days a {{ margin-right: 8px; color: #2f5f9e; text-decoration: none; }}
.days a.selected {{ font-weight: 700; color: #1f2430; border-bottom: 2px solid #1f2430; }}
.empty {{ color: #8a5a00; background: #fff8e6; border-radius: 6px; padding: 10px 12px; margin: 8px 0; }}
footer {{ padding: 0 28px 20px; color: #8a909c; font-size: 12px; }}
"""


# -- page --------------------------------------------------------------------------------------------------------


def render_page(snapshot: Snapshot, *, refresh_seconds: int = 30, hours: int | None = None) -> str:
    """The whole dashboard as one HTML document."""
    query = {"refresh": refresh_seconds, **({"hours": hours} if hours else {})}
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds > 0 else ""
    cards = [
        _kpi_trend_card(snapshot),
        _funnel_card(snapshot, query),
        _events_per_minute_card(snapshot),
        _freshness_card(snapshot),
        _quarantine_card(snapshot),
        _traffic_card(snapshot),
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>Clickstream lakehouse · dashboard</title><style>{CSS}</style></head><body>"
        f"{_header(snapshot, refresh_seconds)}{_notice(snapshot, refresh_seconds)}{_tiles(snapshot)}"
        f"<main>{''.join(cards)}</main>"
        "<footer>Gold tables: daily_kpis, funnel_daily, events_per_minute, traffic_daily · "
        "ops.pipeline_metrics · silver.quarantine. Day = DATE(event_time) in UTC. "
        'Headline figures as JSON: <a href="/api/summary.json">/api/summary.json</a></footer>'
        "</body></html>\n"
    )


def render_error(message: str) -> str:
    """A plain page for a bad request (names the input and what to do)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Clickstream lakehouse · error</title>'
        f"<style>{CSS}</style></head><body><header><h1>Clickstream lakehouse</h1></header>"
        f'<p class="notice" data-testid="error">{escape(message)}</p><p class="meta" style="padding:0 28px">'
        '<a href="/">Back to the dashboard</a></p></body></html>\n'
    )


def _header(snapshot: Snapshot, refresh_seconds: int) -> str:
    gold = next((f for f in snapshot.freshness if f["layer"] == "gold"), None)
    freshness = f" · latest Gold commit {fmt_seconds(gold['age_s'])} ago" if gold and gold["age_s"] is not None else ""
    refresh = f" · refreshes every {refresh_seconds} s" if refresh_seconds > 0 else " · auto-refresh off"
    return (
        '<header><h1 data-testid="page-title">Clickstream lakehouse</h1>'
        f'<p class="meta">Lakehouse <code data-testid="lakehouse-path">{escape(snapshot.lakehouse)}</code> · '
        f'read <span data-testid="generated-at">{fmt_time(snapshot.generated_at)}</span>{freshness}{refresh} · '
        '<a href="/users" data-testid="nav-users">Sessions and users</a></p>'
        "</header>"
    )


def _notice(snapshot: Snapshot, refresh_seconds: int) -> str:
    if not snapshot.unavailable:
        return ""
    if set(snapshot.unavailable) == set(COLUMNS) and all(w == "not created yet" for w in snapshot.unavailable.values()):
        refresh = "this page refreshes by itself" if refresh_seconds > 0 else "then reload this page"
        text = (
            f"No data yet: there are no Delta tables under <code>{escape(snapshot.lakehouse)}</code>. "
            "Run the pipeline first (<code>make demo</code>, or <code>make follow</code> for a live stream), "
            "or point the dashboard at the folder that holds the tables "
            f"(<code>make dashboard LAKEHOUSE=&lt;folder&gt;</code>); {refresh}."
        )
    else:
        items = ", ".join(f"<code>{escape(t)}</code> ({escape(why)})" for t, why in sorted(snapshot.unavailable.items()))
        text = f"Some tables are not available yet: {items}."
    return f'<p class="notice" data-testid="notice">{text}</p>'


def _tiles(snapshot: Snapshot) -> str:
    h = snapshot.headline
    day = h.get("latest_day")
    on_day = f"on {day.isoformat()}" if isinstance(day, date) else "no day yet"
    late = h.get("late_rows")
    tiles = [
        ("kpi-dau", "Daily active users", h.get("dau"), fmt_int(h.get("dau")), on_day),
        ("kpi-sessions", "Sessions", h.get("sessions"), fmt_int(h.get("sessions")), on_day),
        ("kpi-conversion-rate", "Conversion rate", h.get("conversion_rate"), fmt_rate(h.get("conversion_rate")),
         on_day),
        ("kpi-events", "Events", h.get("events"), fmt_int(h.get("events")), on_day),
        ("kpi-silver-rows", "Silver rows", h.get("silver_rows"), fmt_int(h.get("silver_rows")),
         f"{fmt_int(late)} late" if late is not None else "valid, deduplicated"),
        ("kpi-quarantined", "Quarantined lines", h.get("quarantined"), fmt_int(h.get("quarantined")),
         "silver.quarantine"),
    ]
    cells = "".join(
        f'<div class="tile"><div class="label">{escape(label)}</div>'
        f'<div class="value" data-testid="{testid}" data-value="{"" if raw is None else escape(str(raw))}">'
        f'{escape(text)}</div><div class="sub">{escape(sub)}</div></div>'
        for testid, label, raw, text, sub in tiles
    )
    latest = f'<span data-testid="kpi-latest-day" hidden>{escape(day.isoformat()) if isinstance(day, date) else ""}</span>'
    return f'<section class="tiles" data-testid="headline">{cells}{latest}</section>'


def _card(testid: str, title: str, caption: str, body: str, *, wide: bool = False) -> str:
    return (
        f'<section class="card{" wide" if wide else ""}" data-testid="{testid}">'
        f'<h2 data-testid="{testid}-title">{escape(title)}</h2><p class="caption">{caption}</p>{body}</section>'
    )


def _empty(testid: str, snapshot: Snapshot, *tables: str) -> str:
    reasons = [f"{t}: {snapshot.unavailable[t]}" for t in tables if t in snapshot.unavailable]
    detail = f" ({escape('; '.join(reasons))})" if reasons else ""
    return f'<p class="empty" data-testid="{testid}">No data yet — run the pipeline{detail}.</p>'


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><span class="swatch" style="background:{color}"></span>{text}</span>' for text, color in items
    ) + "</div>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, testid: str, row_ids: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        (f'<tr data-testid="{escape(row_ids[i])}">' if i < len(row_ids) else "<tr>")
        + "".join(f"<td>{escape(c)}</td>" for c in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f'<table data-testid="{testid}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kpi_trend_card(snapshot: Snapshot) -> str:
    testid, title = "chart-kpi-trend", "DAU and conversion rate by day"
    trend = snapshot.kpi_trend
    if not trend:
        return _card(testid, title, "gold.daily_kpis", _empty("empty-kpi-trend", snapshot, catalog.DAILY_KPIS.name))
    labels = [row["event_date"].isoformat() for row in trend]
    dau = line_chart(
        testid="chart-dau",
        x_labels=labels,
        series=[("DAU", "#4c78a8", [r["active_users"] for r in trend]),
                ("Sessions", "#9ecae9", [r["sessions"] for r in trend])],
        y_format=fmt_int_axis,
    )
    conversion = line_chart(
        testid="chart-conversion-rate",
        x_labels=labels,
        series=[("Conversion rate", "#e45756", [r["conversion_rate"] for r in trend])],
        y_format=lambda v: f"{v:.1%}",
        height=130,
    )
    recent = trend[-5:][::-1]
    table = _table(
        ["Day", "DAU", "Sessions", "Converted", "Conversion", "Events"],
        [[r["event_date"].isoformat(), fmt_int(r["active_users"]), fmt_int(r["sessions"]),
          fmt_int(r["converted_sessions"]), fmt_rate(r["conversion_rate"]), fmt_int(r["events"])] for r in recent],
        testid="table-kpi-trend",
        row_ids=[f"kpi-trend-{r['event_date'].isoformat()}" for r in recent],
    )
    body = (
        "<h3>Daily active users and sessions</h3>"
        + _legend([("DAU (distinct users)", "#4c78a8"), ("Sessions", "#9ecae9")])
        + dau
        + "<h3>Conversion rate (converted sessions / sessions)</h3>"
        + conversion
        + table
    )
    return _card(testid, title, "gold.daily_kpis · day = DATE(event_time) UTC", body)


def _day_links(snapshot: Snapshot, query: dict[str, Any]) -> str:
    links = []
    for day in snapshot.days[:MAX_DAY_LINKS]:
        selected = ' class="selected"' if day == snapshot.day else ""
        href = "?" + urlencode({**query, "day": day.isoformat()})
        links.append(f'<a href="{escape(href)}"{selected} data-testid="day-{day.isoformat()}">{day.isoformat()}</a>')
    return f'<nav class="days" data-testid="day-selector">Day: {"".join(links)}</nav>'


def _funnel_card(snapshot: Snapshot, query: dict[str, Any]) -> str:
    testid, title = "chart-funnel", "Funnel"
    if not snapshot.funnel:
        return _card(testid, title, "gold.funnel_daily", _empty("empty-funnel", snapshot, catalog.FUNNEL_DAILY.name))
    rows = [
        {
            "label": f"{r['step_order']}. {r['step']}",
            "value": r["sessions"],
            "text": f"{r['sessions']:,} sessions · {r['share_of_first']:.1%}",
            "color": ACTION_COLORS.get(r["step"], OTHER_COLORS[0]),
            "testid": f"funnel-step-{r['step']}",
        }
        for r in snapshot.funnel
    ]
    caption = (
        f'gold.funnel_daily · sessions reaching each step on <b data-testid="funnel-day">{snapshot.day.isoformat()}'
        "</b> (share of the first step)"
    )
    steps = snapshot.funnel
    table = _table(
        ["Step", "Sessions", "Of first step", "Of previous step"],
        [[f"{r['step_order']}. {r['step']}", fmt_int(r["sessions"]), f"{r['share_of_first']:.1%}",
          f"{r['sessions'] / steps[i - 1]['sessions']:.1%}" if i and steps[i - 1]["sessions"] else "—"]
         for i, r in enumerate(steps)],
        testid="table-funnel",
    )
    chart = bar_chart(testid="chart-funnel-bars", rows=rows, label_width=120, row_height=44)
    return _card(testid, title, caption, _day_links(snapshot, query) + chart + table)


def _events_per_minute_card(snapshot: Snapshot) -> str:
    testid, title = "chart-events-per-minute", "Events per minute by action"
    epm = snapshot.events_per_minute
    if not epm.get("minutes"):
        return _card(testid, title, "gold.events_per_minute",
                     _empty("empty-events-per-minute", snapshot, catalog.EVENTS_PER_MINUTE.name), wide=True)
    colors = {a: ACTION_COLORS.get(a, OTHER_COLORS[i % len(OTHER_COLORS)]) for i, a in enumerate(epm["actions"])}
    legend = _legend(
        [(f'{escape(a)} <b data-testid="epm-total-{escape(a)}">{epm["totals"][a]:,}</b>', colors[a])
         for a in epm["actions"]]
    )
    first, last = epm["minutes"][0], epm["minutes"][-1]
    peak = epm["peak"]
    caption = (
        f"gold.events_per_minute · last {epm['hours']} h of event time in the table, "
        f"{first:%Y-%m-%d %H:%M} to {last:%H:%M} UTC, stacked · peak "
        f'<b data-testid="epm-peak">{peak["events"]:,}</b> events/min at {peak["minute"]:%H:%M}'
    )
    chart = stacked_area_chart(testid="chart-epm-area", minutes=epm["minutes"], series=epm["series"], colors=colors)
    return _card(testid, title, caption, legend + chart, wide=True)


def _traffic_card(snapshot: Snapshot) -> str:
    testid, title = "chart-traffic", "Traffic split"
    if not snapshot.traffic:
        return _card(testid, title, "gold.traffic_daily",
                     _empty("empty-traffic", snapshot, catalog.TRAFFIC_DAILY.name), wide=True)
    columns = []
    for dimension, heading, color in (
        ("device_type", "By device type", "#4c78a8"),
        ("country", "By country (top 10)", "#72b7b2"),
        ("source", "By source", "#b279a2"),
    ):
        rows = [
            {
                "label": r["value"],
                "value": r["events"],
                "text": f"{r['events']:,} · {r['share']:.1%}",
                "color": color,
                "testid": f"traffic-{dimension}-{r['value']}",
            }
            for r in snapshot.traffic.get(dimension, [])
        ]
        chart = bar_chart(testid=f"chart-traffic-{dimension}", rows=rows, width=410, label_width=96, row_height=22)
        columns.append(f"<div><h3>{heading}</h3>{chart}</div>")
    caption = f'gold.traffic_daily · events on <b data-testid="traffic-day">{snapshot.day.isoformat()}</b> and share'
    return _card(testid, title, caption, f'<div class="row">{"".join(columns)}</div>', wide=True)


def _freshness_card(snapshot: Snapshot) -> str:
    testid, title = "chart-freshness", "Pipeline freshness"
    if not snapshot.freshness:
        return _card(testid, title, "ops.pipeline_metrics",
                     _empty("empty-freshness", snapshot, catalog.PIPELINE_METRICS.name))
    rows = []
    for f in snapshot.freshness:
        color = LAYER_COLORS.get(f["layer"], OTHER_COLORS[0])
        for stat, label in (("latency_p50_s", "p50"), ("latency_p95_s", "p95")):
            rows.append({
                "label": f"{f['layer']} {label}",
                "value": f[stat] or 0,
                "text": fmt_seconds(f[stat]),
                "color": color if label == "p95" else color + "99",
                "testid": f"freshness-{f['layer']}-{label}",
            })
    chart = bar_chart(testid="chart-freshness-bars", rows=rows, label_width=96, row_height=22)
    table = _table(
        ["Layer", "Batch with rows", "Rows in", "p50", "p95", "Max", "Last commit", "Batches"],
        [[f["layer"], str(f["batch_id"]), fmt_int(f["rows_in"]), fmt_seconds(f["latency_p50_s"]),
          fmt_seconds(f["latency_p95_s"]), fmt_seconds(f["latency_max_s"]),
          f"{fmt_seconds(f['age_s'])} ago" if f["age_s"] is not None else "—", fmt_int(f["batches"])]
         for f in snapshot.freshness],
        testid="table-freshness",
        row_ids=[f"freshness-layer-{f['layer']}" for f in snapshot.freshness],
    )
    caption = (
        "ops.pipeline_metrics · latest batch with rows per layer: seconds from ingest_time to commit "
        "(p50, p95, max); last commit: any batch, empty ones included"
    )
    return _card(testid, title, caption, chart + table)


def _quarantine_card(snapshot: Snapshot) -> str:
    testid, title = "chart-quarantine", "Quarantine by reason"
    if not snapshot.quarantine:
        if catalog.QUARANTINE.name not in snapshot.unavailable:
            body = '<p class="caption" data-testid="quarantine-none">No quarantined lines.</p>'
            return _card(testid, title, "silver.quarantine", body)
        return _card(testid, title, "silver.quarantine", _empty("empty-quarantine", snapshot, catalog.QUARANTINE.name))
    total = sum(r["lines"] for r in snapshot.quarantine)
    rows = [
        {
            "label": r["reason"],
            "value": r["lines"],
            "text": f"{r['lines']:,} · {r['lines'] / total:.1%}",
            "color": "#e45756",
            "testid": f"quarantine-reason-{r['reason']}",
        }
        for r in snapshot.quarantine
    ]
    caption = f'silver.quarantine · <b data-testid="quarantine-total">{total:,}</b> lines, by typed reason'
    return _card(testid, title, caption, bar_chart(testid="chart-quarantine-bars", rows=rows, label_width=190))
