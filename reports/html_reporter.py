"""``report.html``: one self-contained page (inline CSS, inline SVG charts, no scripts).

Read in a minute: findings that need attention (fail, error, warn) come first, then every
finding grouped by detector, folded (``<details>``) unless it needs attention. Every interval
says its level and kind where it is shown ("95% bootstrap BCa", "99.4% FCR-adjusted",
"99.2% simultaneous"), with a one-line explanation of simultaneous and FCR-adjusted intervals.
Chart axes follow the metric's declared range when a finding gives one
(``details["value_range"] = [low, high]``, e.g. [1, 7] for a rating).

The page is rendered with a jinja2 environment that autoescapes everything; the only markup
passed through unescaped is the SVG drawn by :mod:`.svg_charts`, which escapes its own text.
Nothing is fetched when the file is opened: no fonts, images, stylesheets or scripts from
anywhere, so the report can be archived, attached to a ticket or opened offline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markupsafe import Markup

from audit_sdk.interfaces import Reporter
from audit_sdk.report_model import Finding, GroupEstimate, Report

from .attribution_section import attribution_sections
from .mitigation_section import mitigation_sections
from .svg_charts import (
    bar_chart_svg,
    forest_plot_svg,
    format_interval,
    format_number,
    histogram_svg,
    is_number,
)

__all__ = [
    "HtmlReporter",
    "histogram_series",
    "interval_label",
    "reference_value",
    "render_html",
    "value_range",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATUS_ORDER = ("fail", "error", "warn", "pass", "skipped")
WORST_FIRST = ("error", "fail", "warn", "pass", "skipped")
ATTENTION = ("fail", "error", "warn")
# words in ci_method -> the interval's kind, first match wins
_KINDS = (
    ("fcr", "FCR-adjusted"),
    ("simultaneous", "simultaneous"),
    ("bonferroni", "simultaneous"),
    ("bca", "bootstrap BCa"),
    ("bootstrap", "bootstrap"),
    ("wilson", "Wilson"),
    ("welch", "Welch t"),
    ("influence", "normal"),
    ("normal", "normal"),
)
KIND_EXPLANATIONS = {
    "simultaneous": "Simultaneous: every row's interval covers its true value at once with this "
    "probability, so the row picked as worst after looking at all of them is still covered.",
    "FCR-adjusted": "FCR-adjusted (Benjamini-Yekutieli 2005): widened to level 1 - Rq/m after "
    "selecting R significant rows of m, so on average at most q of the selected rows' "
    "intervals miss; 'significant' means exactly that this interval excludes the null.",
}
OPEN_GROUP_TABLE_MAX_ROWS = 12
DETAILS_MAX_CHARS = 20_000


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    return env


@dataclass
class _GroupView:
    group: str
    n: int
    estimate: str
    ci: str
    warning: str
    significant: str
    adjusted_ci: str = ""


@dataclass
class _FindingView:
    index: int
    anchor: str
    finding: Finding
    estimate: str
    ci: str
    n: str
    threshold: str
    confidence: str
    groups: list[_GroupView]
    groups_open: bool
    show_significant: bool
    show_warning: bool
    interval: str = ""
    row_interval: str = ""
    adjusted_interval: str = ""
    significance_label: str = "Significant"
    attention: bool = False
    chart: Markup | None = None
    chart_note: str | None = None
    details_text: str | None = None
    details_table: tuple[list[str], list[list[str]]] | None = None


@dataclass
class _DetectorView:
    name: str
    anchor: str
    findings: list[_FindingView] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def attention(self) -> bool:
        return any(self.counts.get(s) for s in ATTENTION)


def interval_kind(method: str | None) -> str:
    """The kind of an interval from its ``ci_method`` text ("" when unknown)."""
    text = (method or "").lower()
    return next((kind for word, kind in _KINDS if word in text), "")


def interval_label(level: float, method: str | None, *, kind: str | None = None) -> str:
    """``"95% bootstrap BCa"``, ``"99.4% FCR-adjusted"``: level and kind, as shown."""
    shown = f"{level * 100:.3g}%"
    kind = interval_kind(method) if kind is None else kind
    return f"{shown} {kind}".strip()


def value_range(finding: Finding) -> tuple[float, float] | None:
    """The metric's declared range, ``details["value_range"]`` ([low, high]), if valid."""
    declared = finding.details.get("value_range")
    if (
        isinstance(declared, list | tuple)
        and len(declared) == 2
        and all(is_number(v) and not isinstance(v, bool) for v in declared)
        and float(declared[0]) < float(declared[1])
    ):
        return float(declared[0]), float(declared[1])
    return None


def histogram_series(details: Mapping[str, Any]) -> tuple[list[float], dict[str, list[float]]]:
    """Bin edges and named count series from ``finding.details["histogram"]``.

    Accepts ``{"edges": [...], "counts": [...]}`` and, for propensity overlap,
    ``"counts_treated"`` / ``"counts_control"`` (drawn overlaid); an optional ``"label"``
    names the x axis. Raises :class:`ValueError`
    naming what is wrong.
    """
    hist = details.get("histogram")
    if not isinstance(hist, Mapping):
        raise ValueError('details["histogram"] is missing or is not a mapping')
    edges = hist.get("edges")
    if not isinstance(edges, list | tuple) or not all(is_number(e) for e in edges):
        raise ValueError('details["histogram"]["edges"] must be a list of finite numbers')
    series: dict[str, list[float]] = {}
    for key, label in (("counts_treated", "treated"), ("counts_control", "control")):
        if key in hist:
            series[label] = list(hist[key])
    if not series and "counts" in hist:
        series["count"] = list(hist["counts"])
    if not series:
        raise ValueError('details["histogram"] needs "counts" or "counts_treated"/"counts_control"')
    return [float(e) for e in edges], series


def _chart_for(finding: Finding) -> tuple[Markup | None, str | None]:
    if finding.chart is None:
        return None, None
    label = finding.label
    try:
        if finding.chart == "histogram":
            edges, series = histogram_series(finding.details)
            x_label = finding.details["histogram"].get("label")
            svg = histogram_svg(
                edges,
                series,
                title=f"{finding.label}: distribution",
                value_label=x_label if isinstance(x_label, str) else label,
            )
        elif not finding.groups:
            return None, "No per-group rows to chart."
        elif finding.chart == "bars":
            by = f" by {finding.group_by}" if finding.group_by else " per group"
            svg = bar_chart_svg(
                finding.groups,
                overall=reference_value(finding),
                title=f"{finding.label}{by} ({_row_label(finding)} CI)",
                value_label="group estimate",
                value_range=value_range(finding),
            )
        else:
            null = finding.details.get("null_value", 0.0)
            svg = forest_plot_svg(
                finding.groups,
                null_value=float(null) if is_number(null) else 0.0,
                title=f"{finding.label}: estimate and {_row_label(finding)} CI per row",
                value_label=label,
                value_range=value_range(finding),
            )
    except (ValueError, TypeError) as exc:
        return None, f"Chart not drawn: {exc}."
    return Markup(svg), None  # svg_charts escapes all text it draws


def reference_value(finding: Finding) -> float | None:
    """Where a bar chart draws its "overall" line, in the units of the per-group rows.

    Only a detector knows whether its rows have a population value on their scale, so the line
    is drawn only where it says so, with ``finding.details["overall"]``. Guessing from the
    finding's estimate would draw a paired difference or a ratio as if it were a mean.
    """
    overall = finding.details.get("overall")
    if isinstance(overall, int | float) and not isinstance(overall, bool) and is_number(overall):
        return float(overall)
    return None


def _confidence(finding: Finding) -> str:
    return f"{finding.confidence * 100:g}%"


def _row_confidence(finding: Finding) -> float | None:
    """Per-row intervals may be marginal while the finding's own is adjusted (a detector says
    so with ``details["row_confidence"]``)."""
    level = finding.details.get("row_confidence")
    if isinstance(level, int | float) and not isinstance(level, bool) and 0 < level < 1:
        return float(level)
    return None


def _row_label(finding: Finding) -> str:
    """Level and kind of the per-row intervals: marginal where the detector says the rows
    differ from the finding's adjusted interval, else the finding's own."""
    level = _row_confidence(finding)
    if level is not None:
        return interval_label(level, None, kind="marginal")
    return interval_label(finding.confidence, finding.ci_method)


def _significant(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[value]


def _group_view(row: GroupEstimate) -> _GroupView:
    low, high = row.extra.get("fcr_ci_low"), row.extra.get("fcr_ci_high")
    adjusted = (
        format_interval(float(low), float(high))
        if isinstance(low, int | float) and isinstance(high, int | float)
        else ""
    )
    return _GroupView(
        group=row.group,
        n=row.n,
        estimate=format_number(row.estimate),
        ci=format_interval(row.ci_low, row.ci_high),
        warning=row.warning or "",
        significant=_significant(row.significant),
        adjusted_ci=adjusted,
    )


def _details_text(details: Mapping[str, Any]) -> str | None:
    hidden = {"histogram", "null_value", "overall", "table"}
    shown = {k: v for k, v in details.items() if k not in hidden}
    if not shown:
        return None
    text = json.dumps(shown, indent=2, default=str, ensure_ascii=False)
    if len(text) > DETAILS_MAX_CHARS:
        text = text[:DETAILS_MAX_CHARS] + "\n… (truncated; see report.json)"
    return text


def _details_table(details: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """``details["table"]`` (``{"columns": [...], "rows": [[...], ...]}``, e.g. the
    verification models x tests table) as header and cells, if well formed."""
    table = details.get("table")
    if not isinstance(table, Mapping):
        return None
    columns, rows = table.get("columns"), table.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        return None
    if not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        return None
    return [str(c) for c in columns], [[str(c) for c in r] for r in rows]


def _finding_view(index: int, finding: Finding) -> _FindingView:
    chart, note = _chart_for(finding)
    groups = [_group_view(g) for g in finding.groups]
    adjusted = any(g.adjusted_ci for g in groups)
    significance = finding.details.get("significance")
    return _FindingView(
        index=index,
        anchor=f"finding-{index}",
        finding=finding,
        estimate=format_number(finding.estimate),
        ci=format_interval(finding.ci_low, finding.ci_high),
        n=format_number(finding.n),
        threshold=finding.threshold.describe() if finding.threshold else "none (informational)",
        confidence=_confidence(finding),
        groups=groups,
        groups_open=len(finding.groups) <= OPEN_GROUP_TABLE_MAX_ROWS,
        show_significant=any(g.significant is not None for g in finding.groups),
        show_warning=any(g.warning for g in finding.groups),
        interval=interval_label(finding.confidence, finding.ci_method),
        row_interval=_row_label(finding),
        adjusted_interval=interval_label(finding.confidence, finding.ci_method) if adjusted else "",
        significance_label=str(significance) if isinstance(significance, str) else "Significant",
        attention=finding.status in ATTENTION,
        chart=chart,
        chart_note=note,
        details_text=_details_text(finding.details),
        details_table=_details_table(finding.details),
    )


def _pretty_config(config: Mapping[str, Any]) -> str:
    try:
        return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True, width=96)
    except yaml.YAMLError:
        return json.dumps(config, indent=2, default=str, ensure_ascii=False)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _duration(report: Report) -> str:
    seconds = (report.provenance.finished_at - report.provenance.started_at).total_seconds()
    if not math.isfinite(seconds) or seconds < 0:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def render_html(report: Report) -> str:
    """The whole ``report.html`` page for ``report``."""
    views = [_finding_view(i, f) for i, f in enumerate(report.findings)]
    detectors: dict[str, _DetectorView] = {}
    for view in views:
        name = view.finding.detector
        if name not in detectors:
            detectors[name] = _DetectorView(name=name, anchor=f"detector-{len(detectors)}")
        detector = detectors[name]
        detector.findings.append(view)
        detector.counts[view.finding.status] = detector.counts.get(view.finding.status, 0) + 1
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for finding in report.findings:
        counts[finding.status] = counts.get(finding.status, 0) + 1
    attention = sorted(
        (v for v in views if v.attention), key=lambda v: ATTENTION.index(v.finding.status)
    )
    kinds = {interval_kind(f.ci_method) for f in report.findings if f.ci_low is not None}
    legend = [text for kind, text in KIND_EXPLANATIONS.items() if kind in kinds]
    config = report.model_dump(mode="json", include={"provenance": {"config"}})["provenance"][
        "config"
    ]
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        prov=report.provenance,
        worst=next((s for s in WORST_FIRST if counts.get(s)), "pass"),
        counts=counts,
        status_order=STATUS_ORDER,
        findings=views,
        attention=attention,
        legend=legend,
        detectors=list(detectors.values()),
        started=_when(report.provenance.started_at),
        finished=_when(report.provenance.finished_at),
        duration=_duration(report),
        config_text=_pretty_config(config),
        # the personalization detector's tau table (plugins/detectors/_personalization_summary.py)
        faa_sections=attribution_sections(report),  # the attribution detector's section
        mitigation_sections=mitigation_sections(report),  # before/after per mitigated subject
        tau_tables=[
            {**f.details["tau_table"], "subject": f.subject}
            for f in report.findings
            if isinstance(f.details.get("tau_table"), dict)
        ],
    )


class HtmlReporter(Reporter):
    """A self-contained HTML page: summary, findings table, charts, provenance."""

    name = "html"
    filename = "report.html"
    description = "Self-contained HTML report with inline SVG charts (no scripts, no network)."

    def render(self, report: Report) -> str:
        return render_html(report)
