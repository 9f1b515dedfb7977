"""``junit.xml``: one test case per finding, one test suite per detector.

CI systems (GitLab, Jenkins, GitHub test reporters, Azure) show these as test results:

* ``fail``    -> ``<failure message="explanation">`` with the numbers in the body;
* ``error``   -> ``<error>``;
* ``skipped`` -> ``<skipped>``;
* ``warn``    -> passes, with the warning in ``<system-out>``; the suite's ``warnings``
  property counts them;
* ``pass``    -> passes.

The document follows the common JUnit schema (Jenkins' ``junit-10.xsd``): ``testsuites`` >
``testsuite`` (``properties``, ``testcase``...) > ``testcase``. It is built with
:mod:`xml.etree.ElementTree`, which escapes text and attributes; characters that XML 1.0
forbids (control characters) are replaced by U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

from audit_sdk.interfaces import Reporter
from audit_sdk.report_model import Finding, Report

from .svg_charts import format_interval, format_number, is_number

__all__ = ["JunitReporter", "case_name", "render_junit"]

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MESSAGE_MAX_CHARS = 500


def _clean(text: object) -> str:
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def case_name(finding: Finding, *, with_subject: bool = False) -> str:
    """``metric [group_by] (window)``, plus the subject when a key repeats across subjects."""
    name = finding.label
    if finding.group_by:
        name += f" [{finding.group_by}]"
    if finding.window:
        name += f" ({finding.window})"
    if with_subject and finding.subject:
        name += f" {{{finding.subject}}}"
    return name


def _elapsed(finding: Finding) -> float:
    """The detector's run time: ``finding.duration_s`` where the report has it, else the
    ``duration_s`` the runner records in ``details``."""
    value = getattr(finding, "duration_s", None)
    if value is None:
        value = finding.details.get("duration_s")
    if isinstance(value, int | float) and is_number(value):
        return max(float(value), 0.0)
    return 0.0


def _body(finding: Finding) -> str:
    lines = [
        f"{finding.key}: {finding.status}",
        f"estimate {format_number(finding.estimate)} "
        f"{format_interval(finding.ci_low, finding.ci_high)} "
        f"({finding.confidence * 100:g}% CI{', ' + finding.ci_method if finding.ci_method else ''})"
        f", n = {format_number(finding.n)}",
        f"threshold: {finding.threshold.describe() if finding.threshold else 'none'}",
        f"explanation: {finding.explanation}",
    ]
    lines.extend(f"warning: {w}" for w in finding.warnings)
    for row in finding.groups:
        flag = f"  ({row.warning})" if row.warning else ""
        lines.append(
            f"  {row.group}: {format_number(row.estimate)} "
            f"{format_interval(row.ci_low, row.ci_high)}, n = {row.n}{flag}"
        )
    if finding.reference:
        lines.append(f"reference: {finding.reference}")
    return "\n".join(lines)


def _message(finding: Finding) -> str:
    text = " ".join(finding.explanation.split())
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1] + "…"
    return _clean(text)


def render_junit(report: Report) -> str:
    """The whole ``junit.xml`` document for ``report``."""
    key_counts = Counter(f.key for f in report.findings)
    by_detector: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_detector.setdefault(finding.detector, []).append(finding)

    prov = report.provenance
    duration = max((prov.finished_at - prov.started_at).total_seconds(), 0.0)
    statuses = Counter(f.status for f in report.findings)
    root = ET.Element(
        "testsuites",
        {
            "name": _clean(report.title),
            "tests": str(len(report.findings)),
            "failures": str(statuses["fail"]),
            "errors": str(statuses["error"]),
            "time": f"{duration:.3f}",
        },
    )
    timestamp = prov.started_at.replace(microsecond=0).isoformat()
    for detector, findings in by_detector.items():
        counts = Counter(f.status for f in findings)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _clean(detector),
                "tests": str(len(findings)),
                "failures": str(counts["fail"]),
                "errors": str(counts["error"]),
                "skipped": str(counts["skipped"]),
                "time": f"{sum(_elapsed(f) for f in findings):.3f}",
                "timestamp": timestamp,
            },
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("warnings", str(counts["warn"])),
            ("subject", prov.subject.name if prov.subject else ""),
            ("dataset", prov.dataset),
            ("data_fingerprint", prov.data_fingerprint),
            ("config_sha256", prov.config_sha256),
            ("seed", str(prov.seed)),
        ):
            ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
        for finding in findings:
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": _clean(detector),
                    "name": _clean(case_name(finding, with_subject=key_counts[finding.key] > 1)),
                    "time": f"{_elapsed(finding):.3f}",
                },
            )
            body = _clean(_body(finding))
            if finding.status == "fail":
                failure = ET.SubElement(
                    case, "failure", {"message": _message(finding), "type": "fail"}
                )
                failure.text = body
            elif finding.status == "error":
                error = ET.SubElement(
                    case, "error", {"message": _message(finding), "type": "error"}
                )
                error.text = body
            elif finding.status == "skipped":
                ET.SubElement(case, "skipped", {"message": _message(finding)})
            out = ET.SubElement(case, "system-out")
            out.text = ("WARNING: " + body) if finding.status == "warn" else body
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


class JunitReporter(Reporter):
    """JUnit XML for CI test-result views: a test case per finding."""

    name = "junit"
    filename = "junit.xml"
    description = "JUnit XML: one test case per finding, one suite per detector."

    def render(self, report: Report) -> str:
        return render_junit(report)
