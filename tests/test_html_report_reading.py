"""report.html reads in a minute: problems first, the rest folded, every interval labelled,
axes on the metric's range."""

from __future__ import annotations

import re

from audit_sdk.reports.html_reporter import interval_label, render_html
from audit_sdk.reports.svg_charts import bar_chart_svg

from audit_sdk.report_model import GroupEstimate

from .report_factories import finding, group, make_report


def _report():  # type: ignore[no-untyped-def]
    rows = [
        GroupEstimate(
            group="metal",
            n=400,
            estimate=-0.4,
            ci_low=-0.6,
            ci_high=-0.2,
            significant=True,
            extra={"fcr_ci_low": -0.7, "fcr_ci_high": -0.1},
        ),
        GroupEstimate(
            group="jazz",
            n=400,
            estimate=0.2,
            ci_low=0.01,
            ci_high=0.39,
            significant=False,
            extra={"fcr_ci_low": -0.05, "fcr_ci_high": 0.45},
        ),
    ]
    findings = [
        finding("alpha", "ok_metric", estimate=0.5, ci=(0.4, 0.6), status="pass",
                ci_method="bootstrap-BCa over users"),
        finding("causal_effects", "ate:rating", estimate=-0.4, ci=(-0.7, -0.1), status="fail",
                confidence=0.994, chart="forest", groups=rows,
                ci_method="cross-fitted AIPW; 99.4% FCR-adjusted interval (Benjamini-Yekutieli)",
                details={"row_confidence": 0.95, "significance": "Significant (BH, q=0.05)"},
                explanation="metal lowers ratings"),
        finding("alpha", "other", estimate=0.3, ci=(0.1, 0.5), status="warn",
                ci_method="simultaneous max-t bootstrap bands"),
        finding("profile_fidelity", "rating", estimate=3.4, ci=(3.3, 3.5), status="pass",
                chart="bars", groups=[group("m1", 3.4), group("m2", 3.9)],
                details={"value_range": [1, 7]}),
    ]  # fmt: skip
    return make_report(findings)


def test_needs_attention_comes_first_worst_first() -> None:
    page = render_html(_report())
    attention = page.index('id="attention"')
    assert attention < page.index('id="findings"') < page.index('class="card detector"')
    section = page[attention : page.index('id="findings"')]
    assert "2 of 4 findings" in section
    assert section.index("ate:rating") < section.index("other")  # fail before warn
    assert "ok_metric" not in section


def test_findings_are_grouped_by_detector_and_folded_unless_they_need_attention() -> None:
    page = render_html(_report())
    detectors = re.findall(r'<details class="card detector" id="[^"]+"( open)?>', page)
    assert len(detectors) == 3  # alpha, causal_effects, profile_fidelity
    assert re.search(r'<details class="finding f-pass" id="[^"]+">', page)  # folded
    assert re.search(r'<details class="finding f-fail" id="[^"]+" open>', page)
    assert re.search(r"<details>\s*<summary>All 4 findings as one table</summary>", page)


def test_every_interval_is_labelled_with_level_and_kind() -> None:
    page = render_html(_report())
    assert "99.4% FCR-adjusted CI" in page
    assert "95% bootstrap BCa CI" in page
    assert "95% simultaneous CI" in page
    assert "95% marginal CI" in page  # the forest rows, beside the adjusted column
    assert "Significant (BH, q=0.05)" in page
    # one line on each adjusted kind
    assert "Simultaneous: every row" in page and "FCR-adjusted (Benjamini-Yekutieli 2005)" in page
    # jazz: marginal CI excludes 0 but the FCR-adjusted one, which decides significance, does not
    jazz = page[page.index('<td class="group">jazz</td>') :][:400]
    assert "[0.0100, 0.390]" in jazz and "[-0.0500, 0.450]" in jazz and "<td>no</td>" in jazz


def test_interval_label() -> None:
    assert interval_label(0.95, "bootstrap-BCa over users") == "95% bootstrap BCa"
    assert interval_label(0.99375, "x; FCR-adjusted interval") == "99.4% FCR-adjusted"
    assert interval_label(0.99, "Bonferroni") == "99% simultaneous"
    assert interval_label(0.9, None) == "90%"


def test_axis_follows_the_declared_range() -> None:
    rows = [group("a", 3.4), group("b", 3.9)]
    svg = bar_chart_svg(rows, title="t", value_label="rating", value_range=(1.0, 7.0))
    ticks = re.findall(r'text-anchor="middle" fill="#[0-9a-f]+">([^<]+)</text>', svg)
    assert ticks == ["1", "3", "5", "7"]
    free = bar_chart_svg(rows, title="t", value_label="rating")
    assert re.findall(r'text-anchor="middle" fill="#[0-9a-f]+">([^<]+)</text>', free)[0] == "0"
    page = render_html(_report())
    chart = page[page.index("rating per group") :]
    chart = chart[: chart.index("</svg>")]
    assert re.findall(r'text-anchor="middle" fill="#[0-9a-f]+">([^<]+)</text>', chart) == [
        "1",
        "3",
        "5",
        "7",
    ]
