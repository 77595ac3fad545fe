"""The "Sessions and users" page (``/users``): the Gold model's sessions, new and returning users, session lengths,
entry page types and users' attribute history, drawn like the main page (inline SVG, figures as text)."""

from __future__ import annotations

from datetime import date
from html import escape

from lakehouse import catalog
from lakehouse_local.dashboard.charts import (
    bar_chart,
    fmt_int,
    fmt_int_axis,
    fmt_rate,
    fmt_seconds,
    fmt_time,
    line_chart,
)
from lakehouse_local.dashboard.model_data import UsersSnapshot
from lakehouse_local.dashboard.render import CSS, _card, _legend, _table

NEW, RETURNING, SESSIONS, CONVERTED = "#4c78a8", "#f58518", "#54a24b", "#e45756"


def render_users_page(snapshot: UsersSnapshot, *, refresh_seconds: int = 30) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds > 0 else ""
    cards = [_sessions_card(snapshot), _users_card(snapshot), _lengths_card(snapshot), _entry_card(snapshot),
             _history_card(snapshot)]
    notice = ""
    if snapshot.unavailable:
        items = ", ".join(f"<code>{escape(t)}</code> ({escape(w)})" for t, w in sorted(snapshot.unavailable.items()))
        notice = f'<p class="notice" data-testid="notice">Some tables are not available yet: {items}. Run the pipeline ' \
                 "(<code>make demo</code>) first.</p>"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>Clickstream lakehouse · sessions and users</title><style>{CSS}</style></head><body>"
        '<header><h1 data-testid="page-title">Sessions and users</h1>'
        f'<p class="meta">Lakehouse <code data-testid="lakehouse-path">{escape(snapshot.lakehouse)}</code> · read '
        f'{fmt_time(snapshot.generated_at)} · <a href="/" data-testid="nav-metrics">Gold metrics</a></p></header>'
        f"{notice}{_tiles(snapshot)}<main>{''.join(cards)}</main>"
        "<footer>Gold model: sessions, fact_events, customer_features, dim_user, dim_page. Day = DATE(event_time) in "
        "UTC; a session counts on the day it started.</footer></body></html>\n"
    )


def _tiles(snapshot: UsersSnapshot) -> str:
    h = snapshot.headline
    day = h.get("latest_day")
    on_day = f"on {day.isoformat()}" if isinstance(day, date) else "no day yet"
    tiles = [
        ("users-sessions", "Sessions", h.get("sessions"), fmt_int(h.get("sessions")), "gold.sessions"),
        ("users-avg-length", "Mean session length", h.get("avg_duration_s"), fmt_seconds(h.get("avg_duration_s")),
         "first to last event"),
        ("users-conversion", "Sessions converted", h.get("conversion_rate"), fmt_rate(h.get("conversion_rate")),
         "with a purchase"),
        ("users-users", "Users", h.get("users"), fmt_int(h.get("users")), "gold.customer_features"),
        ("users-new", "New users", h.get("new_users"), fmt_int(h.get("new_users")), on_day),
        ("users-history", "Users whose attributes changed", h.get("users_with_history"),
         fmt_int(h.get("users_with_history")), "2+ versions in gold.dim_user"),
    ]
    cells = "".join(
        f'<div class="tile"><div class="label">{escape(label)}</div>'
        f'<div class="value" data-testid="{testid}" data-value="{"" if raw is None else escape(str(raw))}">'
        f'{escape(text)}</div><div class="sub">{escape(sub)}</div></div>'
        for testid, label, raw, text, sub in tiles
    )
    return f'<section class="tiles" data-testid="headline">{cells}</section>'


def _empty(testid: str, snapshot: UsersSnapshot, *tables: str) -> str:
    reasons = [f"{t}: {snapshot.unavailable[t]}" for t in tables if t in snapshot.unavailable]
    detail = f" ({escape('; '.join(reasons))})" if reasons else ""
    return f'<p class="empty" data-testid="{testid}">No data yet — run the pipeline{detail}.</p>'


def _sessions_card(snapshot: UsersSnapshot) -> str:
    testid, title = "chart-sessions", "Sessions per day"
    days = snapshot.sessions_per_day
    if not days:
        return _card(testid, title, "gold.sessions", _empty("empty-sessions", snapshot, catalog.SESSIONS.name))
    labels = [d["day"].isoformat() for d in days]
    chart = line_chart(testid="chart-sessions-line", x_labels=labels, y_format=fmt_int_axis, labelled=2,
                       series=[("Sessions", SESSIONS, [d["sessions"] for d in days]),
                               ("Converted", CONVERTED, [d["converted"] for d in days])])
    recent = days[-5:][::-1]
    table = _table(
        ["Day", "Sessions", "Converted", "Conversion", "Mean length"],
        [[d["day"].isoformat(), fmt_int(d["sessions"]), fmt_int(d["converted"]), fmt_rate(d["conversion_rate"]),
          fmt_seconds(d["avg_duration_s"])] for d in recent],
        testid="table-sessions", row_ids=[f"sessions-{d['day'].isoformat()}" for d in recent],
    )
    legend = _legend([("Sessions", SESSIONS), ("Converted (with a purchase)", CONVERTED)])
    return _card(testid, title, "gold.sessions · by the day each session started (UTC)", legend + chart + table)


def _users_card(snapshot: UsersSnapshot) -> str:
    testid, title = "chart-new-returning", "New and returning users per day"
    days = snapshot.users_per_day
    if not days:
        return _card(testid, title, "gold.fact_events · gold.customer_features",
                     _empty("empty-new-returning", snapshot, catalog.FACT_EVENTS.name, catalog.CUSTOMER_FEATURES.name))
    labels = [d["day"].isoformat() for d in days]
    chart = line_chart(testid="chart-new-returning-line", x_labels=labels, y_format=fmt_int_axis, labelled=2,
                       series=[("New", NEW, [d["new"] for d in days]), ("Returning", RETURNING, [d["returning"] for d in days])])
    recent = days[-5:][::-1]
    table = _table(
        ["Day", "Active", "New", "Returning"],
        [[d["day"].isoformat(), fmt_int(d["active"]), fmt_int(d["new"]), fmt_int(d["returning"])] for d in recent],
        testid="table-new-returning", row_ids=[f"users-{d['day'].isoformat()}" for d in recent],
    )
    caption = "gold.fact_events · a user is new on the day of their first event (customer_features.first_seen)"
    return _card(testid, title, caption, _legend([("New", NEW), ("Returning", RETURNING)]) + chart + table)


def _bars(testid: str, rows: list[dict], label: str, value: str, color: str, text) -> str:
    return bar_chart(testid=testid, label_width=130, rows=[
        {"label": r[label], "value": r[value], "text": text(r), "color": color, "testid": f"{testid}-{r[label]}"}
        for r in rows
    ])


def _lengths_card(snapshot: UsersSnapshot) -> str:
    testid, title = "chart-session-lengths", "Session lengths"
    if not snapshot.length_bands:
        return _card(testid, title, "gold.sessions", _empty("empty-session-lengths", snapshot, catalog.SESSIONS.name))
    chart = _bars("session-length", snapshot.length_bands, "band", "sessions", SESSIONS,
                  lambda r: f"{r['sessions']:,} · {r['share']:.1%}")
    return _card(testid, title, "gold.sessions · seconds from first to last event, every session", chart)


def _entry_card(snapshot: UsersSnapshot) -> str:
    testid, title = "chart-entry-pages", "Sessions by entry page type"
    if not snapshot.entry_page_types:
        return _card(testid, title, "gold.sessions · gold.dim_page",
                     _empty("empty-entry-pages", snapshot, catalog.SESSIONS.name, catalog.DIM_PAGE.name))
    chart = _bars("entry-type", snapshot.entry_page_types, "page_type", "sessions", NEW,
                  lambda r: f"{r['sessions']:,} · {r['converted']:,} converted")
    return _card(testid, title, "gold.sessions joined to gold.dim_page on entry_page", chart)


def _history_card(snapshot: UsersSnapshot) -> str:
    testid, title = "chart-user-history", "Users by versions of their attributes"
    if not snapshot.versions_per_user:
        return _card(testid, title, "gold.dim_user", _empty("empty-user-history", snapshot, catalog.DIM_USER.name))
    chart = _bars("user-versions", snapshot.versions_per_user, "versions", "users", RETURNING,
                  lambda r: f"{r['users']:,} users")
    caption = "gold.dim_user (SCD Type 2) · a version per change of device type, country or source, in event time"
    return _card(testid, title, caption, chart)
