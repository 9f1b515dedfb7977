"""The HTML report's feature-ablation attribution section (the ``attribution`` detector).

From each ``attribution:auxiliary_share`` finding's ``details``
(:func:`audit_sdk.plugins.detectors.attribution.attribution_details`): a bar chart of each
prompt field's attribution with its CI, the curve of attribution by history position
(0 = the most recent item) with its CI band, and the prompts with the most extreme
auxiliary:interaction ratios, each span shaded by its attribution. All text is escaped: the
charts escape their own, the template autoescapes the prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from audit_sdk.report_model import GroupEstimate, Report

from .svg_charts import (
    AXIS_HEIGHT,
    BAR,
    GRID,
    MUTED,
    TOP,
    WIDTH,
    _empty_chart,
    _esc,
    _nice_domain,
    _open_svg,
    _Scale,
    _x_axis,
    bar_chart_svg,
    is_number,
)

__all__ = ["attribution_sections", "recency_curve_svg"]

SHARE_METRIC = "attribution:auxiliary_share"
PLOT_HEIGHT = 160
LEFT = 56


def recency_curve_svg(points: Sequence[Mapping[str, Any]], *, title: str) -> str:
    """Mean attribution (y) by history position (x: 0 = most recent) with a CI band."""
    points = [p for p in points if is_number(p.get("estimate"))]
    if not points:
        return _empty_chart(title, "no history positions to chart")
    xs = [float(p["recency"]) for p in points]
    ys: list[float] = []
    for p in points:
        ys.extend(float(p[k]) for k in ("low", "high", "estimate") if is_number(p.get(k)))
    y_lo, y_hi, y_ticks = _nice_domain([0.0, *ys])
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    x_scale = _Scale(x_lo, x_hi, LEFT, WIDTH - 24)
    top, bottom = TOP + 8, TOP + 8 + PLOT_HEIGHT

    def y(value: float) -> float:
        value = min(max(value, y_lo), y_hi)
        return bottom - (value - y_lo) / (y_hi - y_lo) * PLOT_HEIGHT

    parts = _open_svg(bottom + AXIS_HEIGHT, title)
    ticks = sorted(set(xs)) if len(xs) <= 12 else _nice_domain(xs)[2]
    _x_axis(parts, x_scale, ticks, top=top, bottom=bottom, label="history position from the end")
    for tick in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{WIDTH - 24}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{_esc(f'{tick:.3g}')}</text>"
        )
    band = [p for p in points if is_number(p.get("low")) and is_number(p.get("high"))]
    if len(band) >= 2:
        upper = " ".join(f"{x_scale(p['recency']):.1f},{y(p['high']):.1f}" for p in band)
        lower = " ".join(f"{x_scale(p['recency']):.1f},{y(p['low']):.1f}" for p in reversed(band))
        parts.append(f'<polygon points="{upper} {lower}" fill="{BAR}" fill-opacity="0.18"/>')
    line = " ".join(f"{x_scale(p['recency']):.1f},{y(p['estimate']):.1f}" for p in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="{BAR}" stroke-width="2"/>')
    for p in points:
        tip = f"position {p['recency']}: {p['estimate']:.4g} (n = {p.get('n')})"
        parts.append(
            f'<circle cx="{x_scale(p["recency"]):.1f}" cy="{y(p["estimate"]):.1f}" r="3" '
            f'fill="{BAR}"><title>{_esc(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _field_rows(fields: Mapping[str, Mapping[str, Any]]) -> list[GroupEstimate]:
    return [
        GroupEstimate(
            group=name,
            n=int(v.get("n") or 0),
            estimate=v.get("estimate"),
            ci_low=v.get("low"),
            ci_high=v.get("high"),
        )
        for name, v in fields.items()
    ]


def _shaded_prompt(prompt: Mapping[str, Any]) -> dict[str, Any]:
    spans = list(prompt.get("spans", []))
    peak = max((abs(s.get("attribution", 0.0)) for s in spans if "name" in s), default=0.0)
    shaded = []
    for s in spans:
        weight = abs(s.get("attribution", 0.0)) / peak if peak > 0 and "name" in s else 0.0
        shaded.append({**s, "alpha": f"{0.08 + 0.6 * weight:.2f}" if "name" in s else "0"})
    return {**prompt, "spans": shaded}


def attribution_sections(report: Report) -> list[dict[str, Any]]:
    """One section per auxiliary-share finding that carries the attribution details."""
    sections = []
    for finding in report.findings:
        details = finding.details
        if finding.metric != SHARE_METRIC or not isinstance(details.get("fields"), dict):
            continue
        fields = details["fields"]
        sections.append(
            {
                "subject": finding.subject,
                "estimate": finding.estimate,
                "low": finding.ci_low,
                "high": finding.ci_high,
                "n": finding.n,
                "fields_chart": Markup(
                    bar_chart_svg(
                        _field_rows(fields),
                        title="Attribution per prompt field (mean |drop in log P| per prompt)",
                        value_label="attribution (nats)",
                    )
                ),
                "recency_chart": Markup(
                    recency_curve_svg(
                        details.get("recency", []), title="Attribution by history position"
                    )
                ),
                "prompts": [_shaded_prompt(p) for p in details.get("extreme_prompts", [])],
            }
        )
    return sections
