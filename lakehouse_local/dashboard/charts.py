"""The dashboard's figures as text and its charts as inline SVG, drawn here with no library.

Each chart takes plain values (from :mod:`lakehouse_local.dashboard.data`) and returns an ``<svg>``
string with a ``data-testid``, a visible title and its figures as text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

FONT = "-apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


# -- formatting --------------------------------------------------------------------------------------------------


def fmt_int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def fmt_seconds(value: float | None) -> str:
    """A duration in the unit that reads best: 0.4 s, 12.3 min, 5.2 h, 2.0 d."""
    if value is None:
        return "—"
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172_800, "h", 3600)):
        if abs(value) < limit:
            return f"{value / size:.1f} {unit}"
    return f"{value / 86_400:.1f} d"


def fmt_time(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


# -- SVG charts --------------------------------------------------------------------------------------------------


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above ``value`` (an axis maximum)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def line_chart(
    *,
    testid: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    labelled: int = 1,
    y_format: Callable[[float], str],
    width: int = 620,
    height: int = 170,
) -> str:
    """Lines with a point per x; each point carries its value as a ``<title>``.

    The first ``labelled`` series also show their values as text (every point when there are few).
    """
    left, right, top, bottom = 64, 16, 14, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, _, vs in series for v in vs if v is not None]
    y_max = nice_ceiling(max(values, default=0) * 1.1)

    inset = 36  # room for the first and last x labels

    def x(i: int) -> float:
        if len(x_labels) == 1:
            return left + plot_w / 2
        return left + inset + (plot_w - 2 * inset) * i / (len(x_labels) - 1)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [_svg_open(testid, width, height), *_y_grid(left, width - right, y, y_max, y_format)]
    label_every = max(1, math.ceil(len(x_labels) / 8))
    for i, label in enumerate(x_labels):
        if i % label_every == 0 or i == len(x_labels) - 1:
            parts.append(_text(x(i), height - 8, label, anchor="middle", size=11, fill="#5b6270"))
    for n, (name, color, vs) in enumerate(series):
        points = [(x(i), y(v), v, x_labels[i]) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2"/>')
        for i, (px, py, v, label) in enumerate(points):
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}">'
                f"<title>{escape(name)} on {escape(label)}: {escape(y_format(v))}</title></circle>"
            )
            if n < labelled and (len(points) <= 8 or i == len(points) - 1):
                parts.append(_text(px, py - 8, y_format(v), anchor="middle", size=11, fill=color, weight=600))
    parts.append("</svg>")
    return "".join(parts)


def stacked_area_chart(
    *,
    testid: str,
    minutes: Sequence[datetime],
    series: dict[str, Sequence[int]],
    colors: dict[str, str],
    width: int = 1300,
    height: int = 200,
) -> str:
    """Counts per minute stacked by series, oldest minute on the left; x labels every 30 minutes."""
    left, right, top, bottom = 52, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    names = list(series)
    totals = [sum(series[n][i] for n in names) for i in range(len(minutes))]
    y_max = nice_ceiling(max(totals, default=0) * 1.05)

    def x(i: int) -> float:
        return left + (plot_w * i / max(len(minutes) - 1, 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [_svg_open(testid, width, height), *_y_grid(left, width - right, y, y_max, fmt_int_axis)]
    below = [0] * len(minutes)
    for name in names:
        above = [b + v for b, v in zip(below, series[name], strict=True)]
        upper = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(above)]
        lower = [f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(below)))]
        total = sum(series[name])
        parts.append(
            f'<polygon points="{" ".join(upper + lower)}" fill="{colors[name]}" fill-opacity=".85" '
            f'data-testid="epm-area-{escape(name)}"><title>{escape(name)}: {total:,} events</title></polygon>'
        )
        below = above
    for i, minute in enumerate(minutes):
        if minute.minute % 30 == 0:
            parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#9aa0ab"/>')
            parts.append(_text(x(i), height - 8, minute.strftime("%H:%M"), anchor="middle", size=11, fill="#5b6270"))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    *,
    testid: str,
    rows: Sequence[dict[str, Any]],
    width: int = 620,
    label_width: int = 150,
    row_height: int = 24,
) -> str:
    """Horizontal bars; each row: ``label``, ``value``, ``text`` (shown after the bar), ``color``, ``testid``."""
    value_width = 130
    bar_max = width - label_width - value_width - 8
    height = row_height * len(rows) + 6
    top_value = max((r["value"] or 0 for r in rows), default=0) or 1
    parts = [_svg_open(testid, width, height)]
    for i, row in enumerate(rows):
        y = 3 + i * row_height
        length = max(bar_max * (row["value"] or 0) / top_value, 1.5 if row["value"] else 0)
        mid = y + row_height / 2
        parts.append(
            f'<g data-testid="{escape(row["testid"])}" data-value="{escape(str(row["value"]))}">'
            f"<title>{escape(row['label'])}: {escape(row['text'])}</title>"
            + _text(label_width - 8, mid + 4, row["label"], anchor="end", size=12.5, fill="#1f2430")
            + f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row_height - 6}" rx="3" '
            f'fill="{row["color"]}"/>'
            + _text(label_width + length + 6, mid + 4, row["text"], size=12, fill="#3a4150")
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def fmt_int_axis(value: float) -> str:
    """An axis tick of a count: whole values without decimals, quarter ticks (12.5, 0.25) as they are."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _svg_open(testid: str, width: int, height: int) -> str:
    return (
        f'<svg data-testid="{escape(testid)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg">'
    )


def _y_grid(x0: float, x1: float, y: Callable[[float], float], y_max: float, y_format: Callable[[float], str]) -> list[str]:
    parts = []
    for k in range(5):
        value = y_max * k / 4
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eceef2"/>')
        parts.append(_text(x0 - 6, y(value) + 4, y_format(value), anchor="end", size=11, fill="#8a909c"))
    return parts


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: float = 12, fill: str = "#1f2430",
          weight: int = 400) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}" '
        f'font-weight="{weight}">{escape(text)}</text>'
    )
