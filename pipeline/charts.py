"""Inline SVG charts drawn in Python for the HTML report: no JavaScript, no CDN, nothing fetched.

Every chart is one ``<svg id=... class="chart">`` string; all text is escaped.

>>> svg = line_chart("t", "rate", [Series("a", [0, 60, 120], [1.0, 3.0, 2.0])])
>>> svg.count("<path"), 'id="t"' in svg
(1, True)
>>> "<rect" in bar_chart("b", "mix", [Bar("chat", 0.5), Bar("math", 0.25)])
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

PALETTE = ("#c0392b", "#2471a3", "#7d8c8d", "#d68910", "#239b56", "#8e44ad")
FONT = 'font-family="sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    """One line: x in epoch seconds, y values; ``dashed`` for baselines."""

    name: str
    xs: list[float]
    ys: list[float]
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True)
class Bar:
    """One horizontal bar; ``reference`` draws a thin marker (e.g. the population's value)."""

    label: str
    value: float
    reference: float | None = None
    note: str = ""


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n if hi > lo else 1.0
    return [lo + i * step for i in range(n + 1)]


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.2f}".rstrip("0").rstrip(".") if v % 1 else f"{v:.0f}"


def _time(x: float) -> str:
    return datetime.fromtimestamp(x, tz=UTC).strftime("%m-%d %H:%M")


def _svg_head(chart_id: str, title: str, width: int, height: int, title_x: float) -> list[str]:
    """Opening ``<svg>`` tag and the bold title of a chart."""
    return [
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="{title_x}" y="16" {FONT} font-weight="bold">{escape(title)}</text>',
    ]


def _no_data(out: list[str], x: float, y: float) -> str:
    """Close an empty chart with a centred "no data" label."""
    out.append(f'<text x="{x}" y="{y}" {FONT} text-anchor="middle">no data</text></svg>')
    return "\n".join(out)


def line_chart(
    chart_id: str,
    title: str,
    series: list[Series],
    width: int = 860,
    height: int = 260,
    y_max: float | None = None,
    hline: tuple[float, str] | None = None,
) -> str:
    """A time-series chart: one path per series, time axis in UTC, optional horizontal marker."""
    left, right, top, bottom = 56, 44, 28, 40
    pts = [(x, y) for s in series for x, y in zip(s.xs, s.ys, strict=True)]
    out = _svg_head(chart_id, title, width, height, left)
    if not pts:
        return _no_data(out, width / 2, height / 2)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    x1 = x1 if x1 > x0 else x0 + 60
    y1 = y_max if y_max is not None else max(max(p[1] for p in pts), hline[0] if hline else 0) * 1.1 or 1.0
    w, h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return top + h - min(max(y, 0.0), y1) / y1 * h

    out.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fbfbfb" stroke="#ccc"/>')
    for t in _ticks(0, y1, 4):
        out.append(
            f'<line x1="{left}" x2="{left + w}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" {FONT} text-anchor="end">{_fmt(t)}</text>'
        )
    for t in _ticks(x0, x1, 5):
        out.append(f'<text x="{sx(t):.1f}" y="{top + h + 16}" {FONT} text-anchor="middle">{_time(t)}</text>')
    if hline is not None:
        out.append(
            f'<line x1="{left}" x2="{left + w}" y1="{sy(hline[0]):.1f}" y2="{sy(hline[0]):.1f}" '
            f'stroke="#555" stroke-dasharray="2,3"/><text x="{left + w - 4}" y="{sy(hline[0]) - 4:.1f}" '
            f'{FONT} text-anchor="end">{escape(hline[1])}</text>'
        )
    for i, s in enumerate(series):
        if not s.xs:
            continue
        steps = [b - a for a, b in zip(s.xs, s.xs[1:], strict=False) if b > a]
        gap = 3 * min(steps) if steps else 0.0  # no line across a silence longer than 3 steps
        d = " ".join(
            f"{'M' if j == 0 or x - s.xs[j - 1] > gap else 'L'}{sx(x):.1f},{sy(y):.1f}"
            for j, (x, y) in enumerate(zip(s.xs, s.ys, strict=True))
        )
        dash = ' stroke-dasharray="6,4"' if s.dashed else ""
        out.append(f'<path class="series" d="{d}" fill="none" stroke="{s.color}" stroke-width="1.6"{dash}/>')
        lx = left + 8 + i * 190
        out.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{height - 8}" y2="{height - 8}" stroke="{s.color}"'
            f' stroke-width="2"{dash}/><text x="{lx + 22}" y="{height - 4}" {FONT}>{escape(s.name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    chart_id: str,
    title: str,
    bars: list[Bar],
    width: int = 860,
    bar_h: int = 18,
    value_fmt: str = "{:.3g}",
    reference_name: str = "",
) -> str:
    """Horizontal bars (one ``<rect class="bar">`` each), labelled, with optional reference markers."""
    left, right, top = 170, 230, 28
    height = top + max(1, len(bars)) * (bar_h + 6) + 24
    out = _svg_head(chart_id, title, width, height, 8)
    if not bars:
        return _no_data(out, width / 2, top + 14)
    top_value = max(max(abs(b.value), abs(b.reference or 0.0)) for b in bars) or 1.0
    w = width - left - right
    for i, b in enumerate(bars):
        y = top + i * (bar_h + 6)
        bw = max(1.0, abs(b.value) / top_value * w)
        out.append(
            f'<text x="{left - 6}" y="{y + bar_h - 5}" {FONT} text-anchor="end">{escape(b.label)}</text>'
            f'<rect class="bar" x="{left}" y="{y}" width="{bw:.1f}" height="{bar_h}" '
            f'fill="{PALETTE[1] if b.value >= 0 else PALETTE[2]}"/>'
            f'<text x="{left + bw + 4:.1f}" y="{y + bar_h - 5}" {FONT}>'
            f"{escape(value_fmt.format(b.value))} {escape(b.note)}</text>"
        )
        if b.reference is not None:
            rx = left + abs(b.reference) / top_value * w
            out.append(
                f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{y - 2}" y2="{y + bar_h + 2}" stroke="{PALETTE[0]}"'
                ' stroke-width="2"/>'
            )
    if reference_name:
        out.append(
            f'<line x1="{left}" x2="{left}" y1="{height - 14}" y2="{height - 4}" stroke="{PALETTE[0]}" '
            f'stroke-width="2"/><text x="{left + 6}" y="{height - 5}" {FONT}>{escape(reference_name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
