"""The HTML report's mitigation sections: one per mitigated subject.

Each says which mitigator ran on which subject and what it changed, shows every finding that
was measured on both subjects before beside after, and renders the mitigator's own tables
and curves (:class:`~audit_sdk.report_model.ResultTable`,
:class:`~audit_sdk.report_model.ResultCurves`, e.g. GDRT's arms compared and its group weights
per training step). The before/after rows set two independent intervals side by side; a
difference is called only when the intervals are apart (a conservative reading), and the paired
intervals, where a mitigator measures them, are in its own findings and tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from audit_sdk.report_model import Finding, Report, ResultCurves

from .svg_charts import (
    AXIS_HEIGHT,
    GRID,
    MUTED,
    SERIES_COLORS,
    TOP,
    WIDTH,
    _empty_chart,
    _esc,
    _nice_domain,
    _open_svg,
    _Scale,
    _x_axis,
    is_number,
)

__all__ = ["curves_svg", "mitigation_sections"]

PLOT_HEIGHT = 170
LEFT = 56
LEGEND_HEIGHT = 18


def curves_svg(curves: ResultCurves) -> str:
    """One polyline per series over the shared x, with a legend (colours cycle)."""
    xs = [float(x) for x in curves.x]
    values = [float(v) for ys in curves.series.values() for v in ys if v is not None]
    if len(xs) < 2 or not values:
        return _empty_chart(curves.title, "not enough points to draw")
    y_lo, y_hi, y_ticks = _nice_domain(values)
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    x_scale = _Scale(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1, LEFT, WIDTH - 24)
    top = TOP + 8 + LEGEND_HEIGHT
    bottom = top + PLOT_HEIGHT

    def y(value: float) -> float:
        return bottom - (min(max(value, y_lo), y_hi) - y_lo) / (y_hi - y_lo) * PLOT_HEIGHT

    parts = _open_svg(bottom + AXIS_HEIGHT, curves.title)
    _x_axis(parts, x_scale, _nice_domain(xs)[2], top=top, bottom=bottom, label=curves.x_label)
    for tick in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{WIDTH - 24}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{_esc(f'{tick:.3g}')}</text>"
        )
    for i, (name, ys) in enumerate(curves.series.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        points = [
            f"{x_scale(x):.1f},{y(v):.1f}" for x, v in zip(xs, ys, strict=False) if v is not None
        ]
        if points:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
                f'stroke-width="1.8"><title>{_esc(name)}</title></polyline>'
            )
        legend_x = LEFT + i * 120
        parts.append(
            f'<rect x="{legend_x}" y="{TOP}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{TOP + 9}" fill="{MUTED}">{_esc(name)}</text>'
        )
    parts.append(
        f'<text x="14" y="{(top + bottom) / 2:.1f}" fill="{MUTED}" '
        f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})" text-anchor="middle">'
        f"{_esc(curves.y_label)}</text></svg>"
    )
    return "".join(parts)


def _interval(finding: Finding) -> dict[str, Any]:
    return {"estimate": finding.estimate, "low": finding.ci_low, "high": finding.ci_high}


def _reading(before: Finding, after: Finding) -> str:
    """better / worse when the two intervals are apart (by the metric's direction), else
    'intervals overlap'; 'no interval' without both."""
    bounds = (before.ci_low, before.ci_high, after.ci_low, after.ci_high)
    if not all(is_number(b) for b in bounds):
        return "no interval"
    b_low, b_high, a_low, a_high = (float(b) for b in bounds)  # type: ignore[arg-type]
    if a_low <= b_high and b_low <= a_high:
        return "intervals overlap"
    up = a_low > b_high
    direction = after.direction or before.direction
    if direction == "higher_is_better":
        return "better" if up else "worse"
    if direction == "lower_is_better":
        return "worse" if up else "better"
    if direction == "closer_to_zero" and is_number(before.estimate) and is_number(after.estimate):
        return "better" if abs(after.estimate) < abs(before.estimate) else "worse"  # type: ignore[arg-type]
    return "higher" if up else "lower"


def _key(finding: Finding, subject: str | None) -> tuple[Any, ...]:
    return (finding.detector, finding.label, finding.group_by, finding.window, subject)


def mitigation_sections(report: Report) -> list[dict[str, Any]]:
    """One section per mitigated subject, in the order the report first names them."""
    findings: Sequence[Finding] = report.findings
    by_key = {_key(f, f.subject): f for f in findings if f.mitigation is None}
    sections: dict[str | None, dict[str, Any]] = {}
    for after in findings:
        record = after.mitigation
        if record is None:
            continue
        section = sections.get(after.subject)
        if section is None:
            section = sections[after.subject] = {
                "subject": after.subject,
                "record": record,
                "rows": [],
                "tables": record.tables,
                "charts": [Markup(curves_svg(c)) for c in record.curves],
            }
        before = by_key.get(_key(after, record.before))
        if before is None or not (is_number(before.estimate) or is_number(after.estimate)):
            continue
        change = (
            float(after.estimate) - float(before.estimate)  # type: ignore[arg-type]
            if is_number(before.estimate) and is_number(after.estimate)
            else None
        )
        section["rows"].append(
            {
                "detector": after.detector,
                "metric": after.label,
                "group_by": after.group_by,
                "window": after.window,
                "before": _interval(before),
                "after": _interval(after),
                "change": change,
                "reading": _reading(before, after),
                "status_before": before.status,
                "status_after": after.status,
            }
        )
    return list(sections.values())
