"""What the dashboard shows, read from the local Delta tables and reduced to plain dicts and lists.

The reductions are pure functions over Arrow tables (one per chart), so they can be checked on
small tables; :func:`load_snapshot` is the only I/O: it reads the Gold, Silver and ``ops`` tables
with delta-rs (no Spark, so it starts at once and can run beside a running pipeline). A table that
does not exist yet, or cannot be read at this moment, leaves its chart empty instead of failing
the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse import catalog, contract
from lakehouse_local import delta_rs

log = logging.getLogger(__name__)

ACTIONS = contract.actions()
PIPELINE_LAYERS = ("bronze", "silver", "gold")
DEFAULT_WINDOW_HOURS = 3
TOP_COUNTRIES = 10

# Only the columns each chart needs are read: Silver and quarantine can be large.
COLUMNS: dict[str, list[str]] = {
    catalog.DAILY_KPIS.name: [
        "event_date", "events", "active_users", "sessions", "purchases", "converted_sessions", "conversion_rate",
    ],
    catalog.FUNNEL_DAILY.name: ["event_date", "step", "step_order", "sessions"],
    catalog.EVENTS_PER_MINUTE.name: ["window_start", "action", "events"],
    catalog.TRAFFIC_DAILY.name: ["event_date", "device_type", "country", "source", "events"],
    catalog.PIPELINE_METRICS.name: [
        "layer", "stream_id", "batch_id", "rows_in", "rows_written", "quarantined",
        "latency_p50_s", "latency_p95_s", "latency_max_s", "committed_at",
    ],
    catalog.SILVER_EVENTS.name: ["is_late"],
    catalog.QUARANTINE.name: ["reason"],
}


@dataclass
class Snapshot:
    """Everything one page (or one ``summary.json``) shows, read at ``generated_at``."""

    lakehouse: str
    generated_at: datetime
    day: date | None = None
    days: list[date] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    kpi_trend: list[dict[str, Any]] = field(default_factory=list)
    funnel: list[dict[str, Any]] = field(default_factory=list)
    events_per_minute: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    freshness: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # table name -> why it could not be read

    def summary(self) -> dict[str, Any]:
        """The headline figures as JSON-ready values (``/api/summary.json``)."""
        gold = next((f for f in self.freshness if f["layer"] == "gold"), None)
        return {
            "lakehouse": self.lakehouse,
            "generated_at": _iso(self.generated_at),
            **{k: _iso(v) if isinstance(v, date | datetime) else v for k, v in self.headline.items()},
            "last_gold_commit": _iso(gold["committed_at"]) if gold else None,
            "unavailable_tables": dict(self.unavailable),
        }


# -- reductions: Arrow table -> plain values ---------------------------------------------------------------------


def kpi_trend(daily_kpis: pa.Table) -> list[dict[str, Any]]:
    """One dict per day, oldest first: events, active_users, sessions, conversion_rate, ..."""
    return daily_kpis.sort_by("event_date").to_pylist()


def headline(daily_kpis: pa.Table | None, silver: pa.Table | None, quarantine: pa.Table | None) -> dict[str, Any]:
    """The latest day's DAU, sessions, conversion rate and events; Silver rows (late ones) and quarantined lines.

    A figure whose table is not there yet is None.
    """
    figures: dict[str, Any] = dict.fromkeys(
        ("latest_day", "dau", "sessions", "conversion_rate", "events", "silver_rows", "late_rows", "quarantined")
    )
    if daily_kpis is not None and daily_kpis.num_rows:
        latest = kpi_trend(daily_kpis)[-1]
        figures.update(
            latest_day=latest["event_date"],
            dau=latest["active_users"],
            sessions=latest["sessions"],
            conversion_rate=latest["conversion_rate"],
            events=latest["events"],
        )
    if silver is not None:
        figures["silver_rows"] = silver.num_rows
        figures["late_rows"] = int(pc.sum(pc.cast(silver["is_late"], pa.int64())).as_py() or 0)
    if quarantine is not None:
        figures["quarantined"] = quarantine.num_rows
    return figures


def days_with_data(*tables: pa.Table | None) -> list[date]:
    """The distinct ``event_date`` values of the tables, newest first."""
    days: set[date] = set()
    for table in tables:
        if table is not None and table.num_rows:
            days.update(d for d in pc.unique(table["event_date"]).to_pylist() if d is not None)
    return sorted(days, reverse=True)


def funnel(funnel_daily: pa.Table, day: date) -> list[dict[str, Any]]:
    """The funnel steps of ``day`` in step order, each with its share of the first step's sessions."""
    rows = _on_day(funnel_daily, day).sort_by("step_order").to_pylist()
    first = rows[0]["sessions"] if rows else 0
    for row in rows:
        row["share_of_first"] = row["sessions"] / first if first else 0.0
    return rows


def events_per_minute(table: pa.Table, hours: int = DEFAULT_WINDOW_HOURS) -> dict[str, Any]:
    """Events per minute and action over the last ``hours`` of event time in the table.

    The window ends at the table's latest minute, not at the wall clock, so a replayed or backfilled
    day shows its own last hours. Minutes without events count 0. Returns ``minutes`` (datetimes),
    ``actions`` and ``series`` (action -> one count per minute), ``totals`` per action and ``peak``.
    """
    empty: dict[str, Any] = {"minutes": [], "actions": [], "series": {}, "totals": {}, "peak": None, "hours": hours}
    if table.num_rows == 0:
        return empty
    latest = pc.max(table["window_start"]).as_py()
    start = latest - timedelta(hours=hours) + timedelta(minutes=1)
    recent = table.filter(pc.greater_equal(table["window_start"], pa.scalar(start, table.schema.field("window_start").type)))
    grouped = recent.group_by(["window_start", "action"]).aggregate([("events", "sum")]).to_pylist()
    minutes = [start + timedelta(minutes=i) for i in range(hours * 60)]
    seen = {row["action"] for row in grouped}
    actions = [a for a in ACTIONS if a in seen] + sorted(seen - set(ACTIONS) - {None})
    series = {action: [0] * len(minutes) for action in actions}
    for row in grouped:
        if row["action"] in series:
            series[row["action"]][int((row["window_start"] - start).total_seconds() // 60)] += row["events_sum"]
    totals_per_minute = [sum(series[a][i] for a in actions) for i in range(len(minutes))]
    peak_index = max(range(len(minutes)), key=totals_per_minute.__getitem__)
    return {
        "minutes": minutes,
        "actions": actions,
        "series": series,
        "totals": {a: sum(series[a]) for a in actions},
        "peak": {"minute": minutes[peak_index], "events": totals_per_minute[peak_index]},
        "hours": hours,
    }


def traffic_split(traffic_daily: pa.Table, day: date) -> dict[str, list[dict[str, Any]]]:
    """Events and their share on ``day`` by device_type, country (top 10, the rest as ``other``) and source."""
    on_day = _on_day(traffic_daily, day)
    total = int(pc.sum(on_day["events"]).as_py() or 0)
    split: dict[str, list[dict[str, Any]]] = {}
    for dimension in ("device_type", "country", "source"):
        rows = on_day.group_by(dimension).aggregate([("events", "sum")]).to_pylist()
        rows = sorted(
            ({"value": r[dimension] or "unknown", "events": r["events_sum"]} for r in rows),
            key=lambda r: (-r["events"], r["value"]),
        )
        if dimension == "country" and len(rows) > TOP_COUNTRIES:
            rest = rows[TOP_COUNTRIES - 1 :]
            rows = rows[: TOP_COUNTRIES - 1] + [{"value": "other", "events": sum(r["events"] for r in rest)}]
        for row in rows:
            row["share"] = row["events"] / total if total else 0.0
        split[dimension] = rows
    return split


def freshness(pipeline_metrics: pa.Table, now: datetime) -> list[dict[str, Any]]:
    """Per layer: the latest batch that read rows (its latencies), the latest commit (its age), batches and rows so far.

    A batch without rows has no latency: a watermark-only batch, which a stream with event-time state
    commits after its last data (and between data in a live stream), would otherwise hide the latency.
    ``batch_id``, ``rows_in``, ``rows_written`` and the latencies are those of the latest batch with
    rows (of the latest batch when none has any); ``committed_at`` and ``age_s`` of the latest commit.
    """
    rows = pipeline_metrics.to_pylist()
    layers = [layer for layer in PIPELINE_LAYERS if any(r["layer"] == layer for r in rows)]
    layers += sorted({r["layer"] for r in rows} - set(PIPELINE_LAYERS) - {None})
    result = []
    for layer in layers:
        batches = [r for r in rows if r["layer"] == layer]
        committed = [r for r in batches if r["committed_at"] is not None]
        latest = max(committed, key=lambda r: r["committed_at"]) if committed else batches[-1]
        with_rows = [r for r in committed if r["rows_in"]]
        measured = max(with_rows, key=lambda r: r["committed_at"]) if with_rows else latest
        result.append(
            {
                "layer": layer,
                "batch_id": measured["batch_id"],
                "rows_in": measured["rows_in"],
                "rows_written": measured["rows_written"],
                "latency_p50_s": measured["latency_p50_s"],
                "latency_p95_s": measured["latency_p95_s"],
                "latency_max_s": measured["latency_max_s"],
                "committed_at": latest["committed_at"],
                "age_s": (now - latest["committed_at"]).total_seconds() if latest["committed_at"] else None,
                "batches": len(batches),
                "rows_in_total": sum(r["rows_in"] or 0 for r in batches),
            }
        )
    return result


def quarantine_by_reason(quarantine: pa.Table) -> list[dict[str, Any]]:
    """Quarantined lines per reason, most frequent first."""
    rows = quarantine.group_by("reason").aggregate([("reason", "count")]).to_pylist()
    counted = [{"reason": r["reason"] or "unknown", "lines": r["reason_count"]} for r in rows]
    if quarantine.num_rows > sum(r["lines"] for r in counted):  # count() skips null reasons
        counted.append({"reason": "unknown", "lines": quarantine.num_rows - sum(r["lines"] for r in counted)})
    return sorted(counted, key=lambda r: (-r["lines"], r["reason"]))


# -- I/O ---------------------------------------------------------------------------------------------------------


def table_folder(lakehouse: str | Path, name: str) -> Path:
    """The local folder of ``<layer>.<table>`` under the lakehouse root."""
    layer, table = name.split(".")
    return Path(lakehouse) / layer / table


def read_table(lakehouse: str | Path, name: str, unavailable: dict[str, str], *,
               columns: list[str] | None = None) -> pa.Table | None:
    """The table's dashboard columns (``columns``, else :data:`COLUMNS`), or None (with the reason in
    ``unavailable``) when it cannot be read now."""
    try:
        return delta_rs.read(str(table_folder(lakehouse, name)), columns=columns or COLUMNS[name])
    except delta_rs.DeltaTableNotFoundError:
        unavailable[name] = "not created yet"
    except Exception as exc:  # noqa: BLE001 - one unreadable table (e.g. mid-write) must not take the page down
        log.warning("could not read %s under %s: %s", name, lakehouse, exc)
        unavailable[name] = f"could not be read: {exc.__class__.__name__}: {exc}"
    return None


def load_snapshot(
    lakehouse: str | Path,
    *,
    day: date | None = None,
    hours: int = DEFAULT_WINDOW_HOURS,
    now: datetime | None = None,
) -> Snapshot:
    """Read the tables under ``lakehouse`` and reduce them for the page.

    ``day`` selects the funnel and traffic day (default, or when it has no data: the latest day).
    """
    now = now or datetime.now(UTC)
    unavailable: dict[str, str] = {}
    tables = {name: read_table(lakehouse, name, unavailable) for name in COLUMNS}
    kpis = tables[catalog.DAILY_KPIS.name]
    funnel_daily = tables[catalog.FUNNEL_DAILY.name]
    traffic = tables[catalog.TRAFFIC_DAILY.name]
    per_minute = tables[catalog.EVENTS_PER_MINUTE.name]
    metrics = tables[catalog.PIPELINE_METRICS.name]
    quarantine = tables[catalog.QUARANTINE.name]

    days = days_with_data(kpis, funnel_daily, traffic)
    selected = day if day in days else (days[0] if days else None)
    return Snapshot(
        lakehouse=str(Path(lakehouse).resolve()),
        generated_at=now,
        day=selected,
        days=days,
        headline=headline(kpis, tables[catalog.SILVER_EVENTS.name], quarantine),
        kpi_trend=kpi_trend(kpis) if kpis is not None else [],
        funnel=funnel(funnel_daily, selected) if funnel_daily is not None and selected else [],
        events_per_minute=events_per_minute(per_minute, hours) if per_minute is not None else {},
        traffic=traffic_split(traffic, selected) if traffic is not None and selected else {},
        freshness=freshness(metrics, now) if metrics is not None else [],
        quarantine=quarantine_by_reason(quarantine) if quarantine is not None else [],
        unavailable=unavailable,
    )


def _on_day(table: pa.Table, day: date) -> pa.Table:
    return table.filter(pc.equal(table["event_date"], pa.scalar(day, pa.date32())))


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
