"""The built-in reporters (JSON, HTML, JUnit, Markdown), their charts and write_reports."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from audit_sdk.reports import builtin_reporters
from audit_sdk.reports.html_reporter import HtmlReporter, reference_value
from audit_sdk.reports.json_reporter import JsonReporter
from audit_sdk.reports.junit_reporter import JunitReporter
from audit_sdk.reports.markdown_reporter import MAX_CHARS, MarkdownReporter, escape_markdown
from audit_sdk.reports.svg_charts import (
    bar_chart_svg,
    forest_plot_svg,
    format_interval,
    format_number,
    histogram_svg,
)
from markupsafe import escape

from audit_sdk.interfaces import Reporter
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.report_model import Finding, GroupEstimate, Report, read_report
from audit_sdk.report_writing import write_reports
from audit_sdk.thresholds import Threshold

from .report_factories import finding, group, large_report, make_report, sample_report

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


def hostile_report() -> Report:
    """User data that tries to inject markup everywhere a reporter prints data."""
    findings = [
        finding(
            "group_fairness",
            "ndcg@10:min_max_ratio",
            estimate=0.7,
            ci=(0.6, 0.8),
            n=100,
            group_by="artist",
            groups=[group(XSS, 0.2, 0.03, n=50), group("Guns N' Roses & <b>Friends</b>", 0.3)],
            threshold=Threshold(fail_below=0.8),
            explanation=f"worst group is {XSS} | pipes | and\nnewlines",
            warnings=[f"warning about {XSS}"],
            chart="bars",
            details={"top_artists": [XSS]},
        ),
        finding(
            "popularity_bias",
            "arp",
            estimate=0.1,
            ci=(0.0, 0.2),
            groups=[group(XSS, 0.1, 0.1, significant=True)],
            explanation="forest",
            chart="forest",
        ),
    ]
    report = make_report(findings, title=f"Audit {XSS}", notes=[f"note {XSS}"])
    prov = report.provenance
    config = {**prov.config, "title": XSS, "subject": {"name": XSS, "adapter": "tinyrec"}}
    return report.model_copy(
        update={"provenance": prov.model_copy(update={"config": config, "dataset": XSS})}
    )


# -- JSON ---------------------------------------------------------------------------------------


def test_json_round_trips_and_validates_against_the_report_schema(
    report: Report, tmp_path: Path
) -> None:
    text = JsonReporter().render(report)
    data = json.loads(text)
    validator = jsonschema.Draft202012Validator(Report.model_json_schema())
    validator.validate(data)
    assert Report.model_validate_json(text) == report
    path = tmp_path / "report.json"
    path.write_text(text, encoding="utf-8")
    assert read_report(path) == report
    # The schema check can fail: a status outside the enum is rejected.
    data["findings"][0]["status"] = "mostly-fine"
    assert not validator.is_valid(data)


def test_json_writes_nan_as_null_so_the_file_stays_valid_json() -> None:
    report = make_report([finding("d", "m", estimate=float("nan"), ci=(float("nan"), 1.0))])
    text = JsonReporter().render(report)
    data = json.loads(text)  # strict JSON: no NaN literal
    assert data["findings"][0]["estimate"] is None
    jsonschema.Draft202012Validator(Report.model_json_schema()).validate(data)


# -- HTML ---------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects tags and attributes and checks that elements are balanced."""

    VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data


def parse_page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    assert page.problems == []
    assert page.stack == []
    return page


def test_html_is_one_self_contained_file(report: Report) -> None:
    text = HtmlReporter().render(report)
    page = parse_page(text)
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags
    assert "link" not in tags
    assert "img" not in tags
    assert "iframe" not in tags
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
            if name == "href" and value:
                assert value.startswith("#"), (tag, value)  # only in-page anchors
    assert "url(" not in page.style
    assert "@import" not in page.style
    assert "<script" not in text.lower()
    assert "http://" not in text
    assert "https://" not in text


def test_html_shows_every_finding_with_its_status_and_charts_as_inline_svg(
    report: Report,
) -> None:
    text = HtmlReporter().render(report)
    for index, f in enumerate(report.findings):
        assert f'id="finding-{index}"' in text
        assert str(escape(f.metric)) in text
        assert str(escape(f.explanation)) in text
        for warning in f.warnings:
            assert str(escape(warning)) in text
        if f.threshold is not None:
            assert str(escape(f.threshold.describe())) in text
        for row in f.groups:
            assert str(escape(row.group)) in text
    charted = [f for f in report.findings if f.chart]
    assert text.count("<svg") == len(charted) == 5
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    for svg in svgs:
        ET.fromstring(svg)  # each chart is well-formed XML
    # The summary: a badge per status with its count, the worst status, provenance facts.
    for status, count in report.summary.items():
        assert re.search(rf'class="badge s-{status}[^"]*">{count} {status}<', text)
    assert ">ERROR<" in text  # worst status of the sample report
    prov = report.provenance
    assert prov.subject is not None
    for fact in (
        prov.subject.name,
        prov.subject.fingerprint,
        prov.data_fingerprint,
        prov.config_sha256,
    ):
        assert str(escape(fact)) in text
    assert "acme-audit-plugins" in text
    assert "2.3.1" in text
    assert "min_play_seconds: 30.0" in text  # the config, as YAML
    for note in report.notes:
        assert str(escape(note)) in text


def test_html_escapes_user_data_in_text_tables_charts_and_config() -> None:
    text = HtmlReporter().render(hostile_report())
    assert "<script>alert" not in text
    assert "<b>Friends</b>" not in text
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        assert XSS_ESCAPED in svg  # group names inside SVG text are escaped too
        ET.fromstring(svg)
    page = parse_page(text)
    # Count escaped occurrences per place: title, group table, charts, explanation, warnings,
    # details, config, dataset and notes all carry the payload as text.
    assert text.count(XSS_ESCAPED) >= 12
    assert "script" not in [tag for tag, _ in page.tags]
    assert "Guns N&#39; Roses &amp; &lt;b&gt;Friends&lt;/b&gt;" in text


def test_html_handles_empty_reports_nan_missing_cis_and_bad_chart_data() -> None:
    empty = HtmlReporter().render(make_report([]))
    parse_page(empty)
    assert "This report has no findings." in empty
    assert ">PASS<" in empty

    nan = float("nan")
    odd = make_report(
        [
            finding(
                "d",
                "bars_nan",
                estimate=nan,
                ci=(nan, nan),
                groups=[
                    GroupEstimate(group="a", n=3, estimate=nan, ci_low=nan, ci_high=nan),
                    GroupEstimate(group="b", n=0, estimate=None),
                    GroupEstimate(group="c", n=9, estimate=0.4, ci_low=None, ci_high=0.5),
                ],
                status="skipped",
                chart="bars",
            ),
            finding("d", "bars_empty", estimate=0.3, chart="bars"),
            finding("d", "forest_empty", estimate=0.3, chart="forest"),
            finding(
                "d",
                "hist_bad",
                estimate=None,
                status="error",
                chart="histogram",
                details={"histogram": {"edges": [0, 1, 2], "counts": [1]}},
            ),
            finding("d", "hist_missing", estimate=None, status="error", chart="histogram"),
            finding("d", "inf", estimate=math.inf, ci=(-math.inf, math.inf), status="skipped"),
        ]
    )
    text = HtmlReporter().render(odd)
    parse_page(text)
    assert text.count("<svg") == 1
    assert text.count("No per-group rows to chart.") == 2
    assert "Chart not drawn: series &#39;count&#39; has 1 counts for 2 bins" in text
    assert "Chart not drawn: details[&#34;histogram&#34;] is missing" in text
    assert ">n/a<" in text
    assert "∞" in text


def test_bar_chart_reference_line_only_where_the_detector_gives_one() -> None:
    rows = [group("a", 0.2), group("b", 0.3)]
    mean = finding("d", "m", estimate=0.25, groups=rows, chart="bars", details={"overall": 0.25})
    ratio = finding("d", "m:ratio", estimate=0.27, groups=rows, chart="bars")
    assert reference_value(mean) == 0.25
    assert reference_value(ratio) is None  # inside the rows' range, but not a mean
    html = HtmlReporter().render(make_report([mean, ratio]))
    assert html.count("overall 0.250") == 1


# -- SVG charts ---------------------------------------------------------------------------------


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def test_bar_chart_draws_a_bar_and_whisker_per_row_and_scales_to_the_cis() -> None:
    rows = [
        group("pop", 0.5, 0.1),
        group("rock", 1.2, 3.8),  # CI reaches 5.0: the axis must include it
        group("jazz", None),
        group("folk", 0.8, 0.2, n=4, warning="small"),
    ]
    svg = bar_chart_svg(rows, overall=0.7, title="t", value_label="v")
    root = _svg(svg)
    bars = [r for r in root.iter("rect") if r.get("height") == "14"]
    assert len(bars) == 3  # jazz has no estimate
    assert [b.get("fill-opacity") for b in bars] == ["0.85", "0.85", "0.4"]
    texts = [t.text for t in root.iter("text")]
    ticks = [float(t) for t in texts if t and re.fullmatch(r"-?\d+(\.\d+)?", t)]
    assert min(ticks) <= -2.6
    assert max(ticks) >= 5.0
    assert "n/a" in texts
    assert "overall 0.700" in texts
    whiskers = [path.get("d", "") for path in root.iter("path")]
    assert len(whiskers) == 3  # jazz has no CI either
    xs = [float(x) for d in whiskers for x in re.findall(r"[MH](-?[\d.]+)", d)]
    assert min(xs) >= 0
    assert max(xs) <= 720


def test_forest_plot_marks_significant_rows_filled_and_draws_the_null_line() -> None:
    rows = [
        group("a", 0.3, 0.1, significant=True),
        group("b", -0.1, 0.2, significant=False),
        group("c", 0.05, None, significant=None),
    ]
    root = _svg(forest_plot_svg(rows, null_value=0.0, title="t", value_label="effect"))
    circles = list(root.iter("circle"))
    points, legend = circles[:3], circles[3:]
    assert [c.get("fill") != "#ffffff" for c in points] == [True, False, False]
    assert len(legend) == 3
    texts = [t.text for t in root.iter("text")]
    assert {"significant", "not significant", "not tested", "no effect (0)"} <= set(texts)


def test_histogram_overlays_series_and_rejects_mismatched_shapes() -> None:
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    root = _svg(
        histogram_svg(
            edges, {"treated": [1, 0, 3, 2], "control": [4, 2, 0, 1]}, title="t", value_label="p"
        )
    )
    bins = [r for r in root.iter("rect") if r.find("title") is not None]
    assert len(bins) == 6  # zero-count bins are not drawn
    with pytest.raises(ValueError, match="3 counts for 4 bins"):
        histogram_svg(edges, {"c": [1, 2, 3]}, title="t", value_label="p")
    with pytest.raises(ValueError, match="increase"):
        histogram_svg([0, 1, 1], {"c": [1, 2]}, title="t", value_label="p")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (float("nan"), "n/a"),
        (0, "0"),
        (0.81234, "0.812"),
        (-0.0213, "-0.0213"),
        (12.345, "12.3"),
        (9.9996, "10.0"),
        (1234.5, "1230"),
        (1892, "1892"),
        (0.000012345, "1.23e-05"),
        (math.inf, "∞"),
    ],
)
def test_format_number_uses_three_significant_digits(value: float | None, text: str) -> None:
    assert format_number(value) == text


def test_format_interval() -> None:
    assert format_interval(0.1, 0.25) == "[0.100, 0.250]"
    assert format_interval(None, None) == "n/a"
    assert format_interval(None, 0.3) == "[n/a, 0.300]"


# -- JUnit --------------------------------------------------------------------------------------

# Jenkins' junit-10.xsd, the schema JUnit consumers share: allowed attributes and children.
JUNIT_SCHEMA: dict[str, tuple[set[str], set[str], set[str]]] = {
    # element: (required attributes, allowed attributes, allowed children)
    "testsuites": (
        set(),
        {"name", "time", "tests", "failures", "disabled", "errors"},
        {"testsuite"},
    ),
    "testsuite": (
        {"name", "tests"},
        {
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
        },
        {"properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, {"name", "value"}, set()),
    "testcase": (
        {"name"},
        {"name", "assertions", "time", "classname", "status"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "failure": (set(), {"message", "type"}, set()),
    "error": (set(), {"message", "type"}, set()),
    "skipped": (set(), {"message"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
NUMERIC = {"tests", "failures", "errors", "skipped", "disabled", "time"}


def check_junit_schema(element: ET.Element) -> None:
    required, allowed, children = JUNIT_SCHEMA[element.tag]
    assert required <= set(element.attrib), (element.tag, element.attrib)
    assert set(element.attrib) <= allowed, (element.tag, element.attrib)
    for name in NUMERIC & set(element.attrib):
        assert float(element.attrib[name]) >= 0
    for child in element:
        assert child.tag in children, (element.tag, child.tag)
        check_junit_schema(child)
    if element.tag == "testsuite":
        order = [c.tag for c in element]
        assert order.count("properties") <= 1
        assert order[:1] == ["properties"] or "properties" not in order


def test_junit_has_a_case_per_finding_and_counts_that_match(report: Report) -> None:
    root = ET.fromstring(JunitReporter().render(report))
    check_junit_schema(root)
    assert root.tag == "testsuites"
    cases = list(root.iter("testcase"))
    assert len(cases) == len(report.findings) == int(root.get("tests", "-1"))
    statuses = Counter(f.status for f in report.findings)
    assert int(root.get("failures", "-1")) == statuses["fail"] == len(list(root.iter("failure")))
    assert int(root.get("errors", "-1")) == statuses["error"] == len(list(root.iter("error")))
    assert len(list(root.iter("skipped"))) == statuses["skipped"]
    detectors = list(dict.fromkeys(f.detector for f in report.findings))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == detectors
    for suite in suites:
        mine = [f for f in report.findings if f.detector == suite.get("name")]
        counts = Counter(f.status for f in mine)
        assert suite.get("tests") == str(len(mine))
        assert suite.get("failures") == str(counts["fail"])
        assert suite.get("errors") == str(counts["error"])
        assert suite.get("skipped") == str(counts["skipped"])
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["warnings"] == str(counts["warn"])
        for case, f in zip(suite.findall("testcase"), mine, strict=True):
            assert case.get("classname") == f.detector
            assert f.metric in (case.get("name") or "")
            if f.group_by:
                assert f"[{f.group_by}]" in (case.get("name") or "")
            out = case.find("system-out")
            assert out is not None
            assert out.text
            assert out.text.startswith("WARNING") == (f.status == "warn")
            outcome = [c.tag for c in case if c.tag != "system-out"]
            expected = {"fail": ["failure"], "error": ["error"], "skipped": ["skipped"]}
            assert outcome == expected.get(f.status, [])
    windowed = [c.get("name") for c in cases if "(30d)" in (c.get("name") or "")]
    assert windowed == ["recall@10:difference [activity] (30d)"]
    assert (
        suites[-2].get("time") == "0.420"
    )  # details["duration_s"] of the error finding (the runner's key)


def test_junit_escapes_markup_and_strips_characters_xml_forbids() -> None:
    hostile = hostile_report()
    bad = finding(
        "d", 'm"<&>', estimate=1.0, status="fail", explanation="bell \x07 and nul \x00 " + XSS
    )
    report = make_report([*hostile.findings, bad])
    text = JunitReporter().render(report)
    root = ET.fromstring(text)  # parses: no raw control characters
    check_junit_schema(root)
    failure = root.findall(".//failure")[-1]
    assert failure.get("message") == f"bell \ufffd and nul \ufffd {XSS}"
    assert "<script>" not in text


def test_junit_for_an_empty_report_is_valid() -> None:
    root = ET.fromstring(JunitReporter().render(make_report([])))
    check_junit_schema(root)
    assert root.get("tests") == "0"
    assert root.findall("testsuite") == []


# -- Markdown -----------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_markdown_summary_puts_problems_first_then_all_findings_collapsed(
    report: Report,
) -> None:
    text = MarkdownReporter().render(report)
    assert text.splitlines()[0].endswith("**ERROR**")
    counts_row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert _cells(counts_row) == [" 1 ", " 1 ", " 3 ", " 2 ", " 1 "]  # fail error warn pass skipped
    attention = text.index("### Needs attention (5)")
    details = text.index("<details>")
    assert attention < details < text.index("</details>")
    head = text[attention:details]
    assert head.count("**FAIL**") == 1
    assert head.count("**ERROR**") == 1
    assert head.count("**WARN**") == 3
    assert head.index("**FAIL**") < head.index("**ERROR**") < head.index("**WARN**")
    assert "| pass |" not in head
    tail = text[details:]
    assert tail.count("\n| ") == len(report.findings) + 1  # header + one row per finding
    assert "0.649 [0.512, 0.803]" in head
    assert "fail if estimate &lt; 0.8; warn if estimate &lt; 0.9" in head


def test_markdown_escapes_pipes_newlines_and_html() -> None:
    text = MarkdownReporter().render(hostile_report())
    assert "<script" not in text
    assert "<b>" not in text
    assert XSS_ESCAPED in text
    assert "Guns N' Roses &amp; &lt;b&gt;Friends&lt;/b&gt;" not in text  # groups not in the md
    rows = [line for line in text.splitlines() if line.startswith("| **FAIL**")]
    assert rows, text
    assert len(_cells(rows[0])) == 8  # the explanation's | did not add columns
    assert r"\| pipes \| and<br>newlines" in rows[0]
    assert escape_markdown("a_b*c`d[e]~f|g\\h") == r"a\_b\*c\`d\[e\]\~f\|g\\h"


def test_markdown_stays_under_the_comment_limit_for_huge_reports() -> None:
    text = MarkdownReporter().render(large_report(400, 2))
    assert len(text) <= MAX_CHARS
    assert "more; see report.html" in text
    assert text.rstrip().endswith("</details>")


def test_markdown_for_a_clean_report() -> None:
    clean = make_report([finding("d", "m", estimate=1.0, threshold=Threshold(fail_below=0.5))])
    text = MarkdownReporter().render(clean)
    assert text.splitlines()[0].endswith("**PASS**")
    assert "No finding needs attention." in text
    assert "Needs attention" not in text


# -- plugin registration and writing ------------------------------------------------------------


def test_builtin_reporters_register_through_the_entry_point() -> None:
    host = PluginHost(PluginSettings(allow=frozenset({"reporters"})))
    host.load_entry_points()
    expected = {
        "json": ("report.json", JsonReporter),
        "html": ("report.html", HtmlReporter),
        "junit": ("junit.xml", JunitReporter),
        "markdown": ("summary.md", MarkdownReporter),
    }
    assert host.registry.names("reporter") == sorted(expected)
    for name, (filename, cls) in expected.items():
        registration = host.get("reporter", name)
        assert registration.cls is cls
        assert registration.cls.filename == filename
        assert registration.distribution == "audit-sdk"
        assert issubclass(cls, Reporter)
    record = next(r for r in host.records() if r.entry_point == "reporters")
    assert record.status == "loaded"
    assert record.components == {"reporter": sorted(expected)}
    assert (
        JsonReporter,
        HtmlReporter,
        JunitReporter,
        MarkdownReporter,
    ) == builtin_reporters.BUILTIN_REPORTERS


class ExplodingReporter(Reporter):
    name = "exploding"
    filename = "report.html"  # collides on purpose in one test; see below

    def render(self, report: Report) -> str:
        raise RuntimeError("template exploded")


class BytesReporter(Reporter):
    name = "bytes"
    filename = "report.bin"

    def render(self, report: Report) -> str:
        return b"not text"  # type: ignore[return-value]


class EscapingReporter(Reporter):
    name = "escaping"
    filename = "../outside.txt"

    def render(self, report: Report) -> str:
        return "should never be written"


def test_write_reports_writes_every_file_atomically(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = write_reports(report, out, builtin_reporters.BUILTIN_REPORTERS)
    assert result.ok
    names = ["report.json", "report.html", "junit.xml", "summary.md"]
    assert [p.name for p in result.written] == names
    # no temporary files left; the manifest ties the set together
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "audit-manifest.json"])
    assert read_report(out / "report.json") == report
    assert (out / "summary.md").read_text(encoding="utf-8") == MarkdownReporter().render(report)


def test_a_raising_reporter_does_not_stop_the_others_and_is_recorded(
    report: Report, tmp_path: Path
) -> None:
    stale = tmp_path / "report.html"
    stale.write_text("<p>from an older audit</p>", encoding="utf-8")
    reporters: list[Reporter | type[Reporter]] = [
        JsonReporter(),
        ExplodingReporter,
        JunitReporter,
        BytesReporter(),
        EscapingReporter(),
        MarkdownReporter,
    ]
    result = write_reports(report, tmp_path, reporters)
    assert [p.name for p in result.written] == ["report.json", "junit.xml", "summary.md"]
    failures = {f.reporter: f for f in result.failures}
    assert set(failures) == {"exploding", "bytes", "escaping"}
    assert failures["exploding"].error == "RuntimeError: template exploded"
    assert failures["exploding"].removed_stale is True
    assert not stale.exists()  # no stale HTML next to this run's JSON
    assert "not str" in failures["bytes"].error
    assert "plain file name" in failures["escaping"].error
    assert not (tmp_path.parent / "outside.txt").exists()
    assert "template exploded" in failures["exploding"].describe()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit-manifest.json",
        "junit.xml",
        "report.json",
        "summary.md",
    ]


def test_two_reporters_with_one_filename_keep_the_first(report: Report, tmp_path: Path) -> None:
    result = write_reports(report, tmp_path, [HtmlReporter, ExplodingReporter])
    assert [p.name for p in result.written] == ["report.html"]
    assert result.failures[0].reporter == "exploding"
    assert "already writes 'report.html'" in result.failures[0].error
    assert "<html" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_write_failure_is_recorded_not_raised(report: Report, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be", encoding="utf-8")
    result = write_reports(report, blocker, [JsonReporter])
    assert result.written == []
    assert result.failures[0].phase == "write"
    assert result.failures[0].reporter == "json"


def test_findings_keep_their_identity_through_every_format(report: Report) -> None:
    """Each finding's key appears in JSON, HTML (metric), JUnit (case) and Markdown."""
    texts = {cls.name: cls().render(report) for cls in builtin_reporters.BUILTIN_REPORTERS}
    data = json.loads(texts["json"])
    assert [Finding.model_validate(f).key for f in data["findings"]] == [
        f.key for f in report.findings
    ]
    junit_names = [c.get("name") for c in ET.fromstring(texts["junit"]).iter("testcase")]
    for f, case_name in zip(report.findings, junit_names, strict=True):
        assert (case_name or "").startswith(f.metric)
        assert escape_markdown(f.metric) in texts["markdown"]


def test_worst_status_comes_from_the_findings_even_without_a_summary() -> None:
    built = make_report([finding("d", "m", estimate=0.1, threshold=Threshold(fail_below=0.5))])
    bare = Report(provenance=built.provenance, findings=built.findings)  # summary left empty
    assert bare.summary == {}
    assert ">FAIL<" in HtmlReporter().render(bare)
    assert MarkdownReporter().render(bare).splitlines()[0].endswith("**FAIL**")
