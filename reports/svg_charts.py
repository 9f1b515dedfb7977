"""Inline SVG charts for the HTML report, drawn in plain Python (no JavaScript, no fonts).

Every function returns an ``<svg>`` element as a string, ready to be placed inside an HTML
page. All text that comes from data (group names, titles, labels) is escaped with
:func:`html.escape`, so the output is safe to mark as trusted markup.

Axes are scaled from the data *including* the confidence intervals, so a whisker never runs
off the plot; rows whose estimate or CI is missing (``None`` or NaN) are drawn with what is
known and labelled ``n/a`` where nothing is.

The number formatters :func:`format_number` and :func:`format_interval` (from
``_number_format``) are re-exported here: tick labels need them, and every reporter formats
numbers the same way.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from ._number_format import format_interval, format_number, is_number

__all__ = [
    "ChartRow",
    "bar_chart_svg",
    "forest_plot_svg",
    "format_interval",
    "format_number",
    "histogram_svg",
    "is_number",
]

WIDTH = 720
ROW_HEIGHT = 22
TOP = 34
AXIS_HEIGHT = 40
RIGHT_MARGIN = 74
LABEL_CHARS = 30
FONT = "font-family:inherit;font-size:12px"
INK = "#24292f"
MUTED = "#57606a"
GRID = "#d8dee4"
BAR = "#4c78a8"
POINT = "#1f4e79"
SERIES_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")


class ChartRow(Protocol):
    """What a chart needs from a row: :class:`audit_sdk.report_model.GroupEstimate` fits."""

    @property
    def group(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def estimate(self) -> float | None: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...
    @property
    def warning(self) -> str | None: ...
    @property
    def significant(self) -> bool | None: ...


# -- scales -------------------------------------------------------------------------------------


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _nice_domain(
    values: Sequence[float],
    *,
    target: int = 5,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float, list[float]]:
    """A domain covering ``values``, widened to round tick marks, and the ticks. With
    ``bounds`` (the metric's declared range, e.g. 1 to 7) the domain is exactly that range,
    widened only where a value lies outside it."""
    finite = [v for v in values if is_number(v)]
    if bounds is not None and bounds[0] < bounds[1]:
        lo = min([bounds[0], *finite])
        hi = max([bounds[1], *finite])
        step = _nice_step(hi - lo, target)
        count = int((hi - lo) / step + 1e-9)
        ticks = [round(lo + i * step, 12) for i in range(count + 1)]
        if hi - ticks[-1] > 0.3 * step:
            ticks.append(round(hi, 12))
        return lo, hi, ticks
    if not finite:
        return 0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    lo, hi = min(finite), max(finite)
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, target)
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    count = round((stop - start) / step)
    ticks = [start + i * step for i in range(count + 1)]
    # Clean float noise such as 0.30000000000000004 so labels stay short.
    ticks = [round(t, 12) for t in ticks]
    return start, stop, ticks


class _Scale:
    def __init__(self, lo: float, hi: float, x0: float, x1: float) -> None:
        self.lo, self.hi, self.x0, self.x1 = lo, hi, x0, x1

    def __call__(self, value: float) -> float:
        value = min(max(value, self.lo), self.hi)
        return self.x0 + (value - self.lo) / (self.hi - self.lo) * (self.x1 - self.x0)


def _tick_label(value: float) -> str:
    return "0" if abs(value) < 1e-12 else f"{value:.4g}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    label = " ".join(str(label).split())
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _label_width(labels: Sequence[str]) -> float:
    longest = max((len(_short(s)) for s in labels), default=4)
    return min(16 + 6.8 * longest, 16 + 6.8 * LABEL_CHARS)


def _open_svg(height: float, title: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" '
        f'height="{height:.0f}" role="img" aria-label="{_esc(title)}" fill="{INK}" '
        f'style="{FONT}">',
        f"<title>{_esc(title)}</title>",
        f'<text x="0" y="16" font-weight="600" fill="{INK}" font-size="13">{_esc(title)}</text>',
    ]


def _x_axis(
    parts: list[str],
    scale: _Scale,
    ticks: Sequence[float],
    *,
    top: float,
    bottom: float,
    label: str,
) -> None:
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" fill="{MUTED}">'
            f"{_esc(_tick_label(tick))}</text>"
        )
    parts.append(
        f'<line x1="{scale.x0:.1f}" y1="{bottom:.1f}" x2="{scale.x1:.1f}" y2="{bottom:.1f}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    )
    mid = (scale.x0 + scale.x1) / 2
    parts.append(
        f'<text x="{mid:.1f}" y="{bottom + 30:.1f}" text-anchor="middle">{_esc(label)}</text>'
    )


def _row_tooltip(row: ChartRow) -> str:
    text = (
        f"{row.group}: {format_number(row.estimate)} "
        f"{format_interval(row.ci_low, row.ci_high)}, n={row.n}"
    )
    if row.warning:
        text += f" ({row.warning})"
    return text


def _row_label(parts: list[str], row: ChartRow, *, x: float, y: float) -> None:
    parts.append(
        f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="end">{_esc(_short(row.group))}</text>'
    )


def _whisker(parts: list[str], scale: _Scale, row: ChartRow, y: float, color: str) -> None:
    low, high = row.ci_low, row.ci_high
    if not (is_number(low) and is_number(high)):
        return
    assert low is not None
    assert high is not None
    xa, xb = scale(low), scale(high)
    parts.append(
        f'<path d="M{xa:.1f} {y:.1f}H{xb:.1f}M{xa:.1f} {y - 5:.1f}V{y + 5:.1f}'
        f'M{xb:.1f} {y - 5:.1f}V{y + 5:.1f}" stroke="{color}" stroke-width="1.5" fill="none"/>'
    )


def _empty_chart(title: str, message: str) -> str:
    parts = _open_svg(54, title)
    parts.append(f'<text x="0" y="40" fill="{MUTED}">{_esc(message)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- charts -------------------------------------------------------------------------------------


def bar_chart_svg(
    rows: Sequence[ChartRow],
    *,
    overall: float | None = None,
    title: str,
    value_label: str,
    value_range: tuple[float, float] | None = None,
) -> str:
    """Horizontal bars per group with CI whiskers and a dashed line at ``overall``.

    Bars start at zero (the axis always includes it) so that their lengths compare honestly;
    with ``value_range`` (the metric's declared range, e.g. a rating on 1 to 7) the axis is
    that range and bars start at its lower end. Rows with a small-group warning are pale.
    """
    if not rows:
        return _empty_chart(title, "no per-group rows to chart")
    values: list[float] = [] if value_range is not None else [0.0]
    for row in rows:
        values.extend(v for v in (row.estimate, row.ci_low, row.ci_high) if is_number(v))  # type: ignore[misc]
    if is_number(overall):
        values.append(overall)  # type: ignore[arg-type]
    lo, hi, ticks = _nice_domain(values, bounds=value_range)
    left = _label_width([r.group for r in rows])
    plot_top = TOP + 8
    plot_bottom = plot_top + ROW_HEIGHT * len(rows)
    scale = _Scale(lo, hi, left, WIDTH - RIGHT_MARGIN)
    any_warning = any(r.warning for r in rows)
    height = plot_bottom + AXIS_HEIGHT + (18 if any_warning else 0)
    parts = _open_svg(height, title)
    _x_axis(parts, scale, ticks, top=plot_top - 4, bottom=plot_bottom, label=value_label)
    zero = scale(0.0 if lo <= 0.0 <= hi else lo)
    for i, row in enumerate(rows):
        y = plot_top + ROW_HEIGHT * i + ROW_HEIGHT / 2
        parts.append(f"<g><title>{_esc(_row_tooltip(row))}</title>")
        _row_label(parts, row, x=left - 8, y=y)
        if is_number(row.estimate):
            assert row.estimate is not None
            x = scale(row.estimate)
            opacity = "0.4" if row.warning else "0.85"
            parts.append(
                f'<rect x="{min(x, zero):.1f}" y="{y - 7:.1f}" width="{abs(x - zero):.1f}" '
                f'height="14" fill="{BAR}" fill-opacity="{opacity}" rx="1.5"/>'
            )
            value_text = format_number(row.estimate)
        else:
            value_text = "n/a"
        _whisker(parts, scale, row, y, INK)
        parts.append(
            f'<text x="{WIDTH - 4}" y="{y + 4:.1f}" text-anchor="end">{_esc(value_text)}</text>'
        )
        parts.append("</g>")
    if lo < 0 < hi:
        parts.append(
            f'<line x1="{zero:.1f}" y1="{plot_top - 4:.1f}" x2="{zero:.1f}" '
            f'y2="{plot_bottom:.1f}" stroke="{MUTED}" stroke-width="1"/>'
        )
    if is_number(overall):
        assert overall is not None
        x = scale(overall)
        parts.append(
            f'<line x1="{x:.1f}" y1="{plot_top - 6:.1f}" x2="{x:.1f}" y2="{plot_bottom:.1f}" '
            f'stroke="#bf3989" stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
        anchor = "end" if x > (scale.x0 + scale.x1) / 2 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(
            f'<text x="{x + dx:.1f}" y="{plot_top - 6:.1f}" text-anchor="{anchor}" '
            f'fill="#bf3989">overall {_esc(format_number(overall))}</text>'
        )
    if any_warning:
        y = plot_bottom + AXIS_HEIGHT + 10
        parts.append(
            f'<rect x="{left:.1f}" y="{y - 9:.1f}" width="14" height="10" fill="{BAR}" '
            f'fill-opacity="0.4"/><text x="{left + 20:.1f}" y="{y:.1f}" fill="{MUTED}">'
            "pale bar: small-group warning (see table)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def forest_plot_svg(
    rows: Sequence[ChartRow],
    *,
    null_value: float = 0.0,
    title: str,
    value_label: str,
    value_range: tuple[float, float] | None = None,
) -> str:
    """A forest plot: a point and its CI per row, a vertical line at ``null_value``.

    Significant rows are filled, non-significant rows hollow, rows without a test grey. With
    ``value_range`` the axis is the metric's declared range.
    """
    if not rows:
        return _empty_chart(title, "no rows to chart")
    values: list[float] = [null_value]
    for row in rows:
        values.extend(v for v in (row.estimate, row.ci_low, row.ci_high) if is_number(v))  # type: ignore[misc]
    lo, hi, ticks = _nice_domain(values, bounds=value_range)
    left = _label_width([r.group for r in rows])
    plot_top = TOP + 8
    plot_bottom = plot_top + ROW_HEIGHT * len(rows)
    scale = _Scale(lo, hi, left, WIDTH - RIGHT_MARGIN)
    height = plot_bottom + AXIS_HEIGHT + 22
    parts = _open_svg(height, title)
    _x_axis(parts, scale, ticks, top=plot_top - 4, bottom=plot_bottom, label=value_label)
    x_null = scale(null_value)
    parts.append(
        f'<line x1="{x_null:.1f}" y1="{plot_top - 6:.1f}" x2="{x_null:.1f}" '
        f'y2="{plot_bottom:.1f}" stroke="{MUTED}" stroke-width="1.5"/>'
    )
    kinds_seen: set[str] = set()
    for i, row in enumerate(rows):
        y = plot_top + ROW_HEIGHT * i + ROW_HEIGHT / 2
        if i % 2 == 0:
            parts.append(
                f'<rect x="{left:.1f}" y="{y - ROW_HEIGHT / 2:.1f}" '
                f'width="{scale.x1 - left:.1f}" height="{ROW_HEIGHT}" fill="#f6f8fa" '
                f'fill-opacity="0.6"/>'
            )
        parts.append(f"<g><title>{_esc(_row_tooltip(row))}</title>")
        _row_label(parts, row, x=left - 8, y=y)
        if row.significant is True:
            kind, color, fill = "significant", POINT, POINT
        elif row.significant is False:
            kind, color, fill = "not significant", POINT, "#ffffff"
        else:
            kind, color, fill = "not tested", MUTED, "#ffffff"
        _whisker(parts, scale, row, y, color)
        if is_number(row.estimate):
            assert row.estimate is not None
            kinds_seen.add(kind)
            parts.append(
                f'<circle cx="{scale(row.estimate):.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" '
                f'stroke="{color}" stroke-width="1.8"/>'
            )
            value_text = format_number(row.estimate)
        else:
            value_text = "n/a"
        parts.append(
            f'<text x="{WIDTH - 4}" y="{y + 4:.1f}" text-anchor="end">{_esc(value_text)}</text></g>'
        )
    y = plot_bottom + AXIS_HEIGHT + 12
    x = left
    legend = [
        ("significant", POINT, POINT),
        ("not significant", POINT, "#ffffff"),
        ("not tested", MUTED, "#ffffff"),
    ]
    for kind, color, fill in legend:
        if kind not in kinds_seen:
            continue
        parts.append(
            f'<circle cx="{x + 5:.1f}" cy="{y - 4:.1f}" r="4.5" fill="{fill}" stroke="{color}" '
            f'stroke-width="1.8"/><text x="{x + 14:.1f}" y="{y:.1f}" fill="{MUTED}">'
            f"{kind}</text>"
        )
        x += 24 + 7 * len(kind)
    parts.append(
        f'<line x1="{x + 2:.1f}" y1="{y - 9:.1f}" x2="{x + 2:.1f}" y2="{y + 1:.1f}" '
        f'stroke="{MUTED}" stroke-width="1.5"/><text x="{x + 8:.1f}" y="{y:.1f}" '
        f'fill="{MUTED}">no effect ({_esc(format_number(null_value))})</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(
    edges: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    value_label: str,
    count_label: str = "count",
) -> str:
    """A histogram from bin ``edges`` (n+1 numbers) and one or more ``series`` of n counts.

    Several series (for example ``treated`` and ``control`` propensity scores) are overlaid
    semi-transparently with a legend. Raises :class:`ValueError` if the shapes disagree.
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2 or not all(math.isfinite(e) for e in edges):
        raise ValueError("a histogram needs at least two finite bin edges")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("histogram edges must increase")
    if not series:
        raise ValueError("a histogram needs at least one series of counts")
    clean: dict[str, list[float]] = {}
    for name, counts in series.items():
        values = [float(c) if is_number(c) else 0.0 for c in counts]
        if len(values) != len(edges) - 1:
            raise ValueError(
                f"series {name!r} has {len(values)} counts for {len(edges) - 1} bins "
                f"({len(edges)} edges)"
            )
        clean[name] = values
    top_count = max((max(v, default=0.0) for v in clean.values()), default=0.0)
    _, y_hi, y_ticks = _nice_domain([0.0, top_count or 1.0], target=4)
    x_lo, x_hi = edges[0], edges[-1]
    _, _, x_ticks = _nice_domain([x_lo, x_hi], target=6)
    x_ticks = [t for t in x_ticks if x_lo - 1e-12 <= t <= x_hi + 1e-12]
    left, plot_top, plot_height = 56.0, float(TOP + 10), 180.0
    plot_bottom = plot_top + plot_height
    legend = len(clean) > 1
    height = plot_bottom + AXIS_HEIGHT + (18 if legend else 0)
    parts = _open_svg(height, title)
    x_scale = _Scale(x_lo, x_hi, left, WIDTH - 16)
    _x_axis(parts, x_scale, x_ticks, top=plot_top, bottom=plot_bottom, label=value_label)

    def y_of(count: float) -> float:
        return plot_bottom - (count / y_hi) * plot_height

    for tick in y_ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{WIDTH - 16}" y2="{y:.1f}" stroke="{GRID}" '
            f'stroke-width="1"/><text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED}">{_esc(_tick_label(tick))}</text>'
        )
    parts.append(
        f'<text x="12" y="{(plot_top + plot_bottom) / 2:.1f}" text-anchor="middle" '
        f'fill="{INK}" transform="rotate(-90 12 {(plot_top + plot_bottom) / 2:.1f})">'
        f"{_esc(count_label)}</text>"
    )
    opacity = "0.55" if legend else "0.85"
    for index, (name, counts) in enumerate(clean.items()):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        for (a, b), count in zip(itertools.pairwise(edges), counts, strict=True):
            if count <= 0:
                continue
            xa, xb = x_scale(a), x_scale(b)
            y = y_of(count)
            parts.append(
                f'<rect x="{xa + 0.5:.1f}" y="{y:.1f}" width="{max(xb - xa - 1, 0.5):.1f}" '
                f'height="{plot_bottom - y:.1f}" fill="{color}" fill-opacity="{opacity}">'
                f"<title>{_esc(name)} [{_esc(format_number(a))}, {_esc(format_number(b))}): "
                f"{_esc(format_number(count))}</title></rect>"
            )
    if legend:
        y = plot_bottom + AXIS_HEIGHT + 10
        x = left
        for index, name in enumerate(clean):
            color = SERIES_COLORS[index % len(SERIES_COLORS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="14" height="10" fill="{color}" '
                f'fill-opacity="{opacity}"/><text x="{x + 20:.1f}" y="{y:.1f}" '
                f'fill="{INK}">{_esc(_short(name, 24))}</text>'
            )
            x += 34 + 7 * len(_short(name, 24))
    parts.append("</svg>")
    return "".join(parts)
