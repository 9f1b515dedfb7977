"""``summary.md``: a short Markdown summary to post as a pull-request comment.

Layout: a heading with the worst status as a bold marker (``**FAIL**``), the counts per
status, a table of the findings that need attention (fail, error, warn), then every finding
inside a collapsed ``<details>`` block.

GitHub renders raw HTML inside Markdown, so every string that comes from data (group names,
explanations, titles) is neutralized: ``&``, ``<`` and ``>`` become entities, Markdown
punctuation (``\\ ` * _ [ ] ~ |``) is backslash-escaped, and newlines become ``<br>``. So that
a PR comment cannot ping people or link anywhere, ``@`` gets a zero-width space after it (no
@mention), ``://`` and ``www.`` get one too (no bare-URL autolink), and control characters
such as ESC are shown as ``\\x1b``. The
file stays under GitHub's comment limit (65,536 characters): tables are cut short with a
pointer to ``report.html`` when a report is very large.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from audit_sdk.errors import terminal_safe
from audit_sdk.interfaces import Reporter
from audit_sdk.report_model import Finding, Report

from .svg_charts import format_interval, format_number

__all__ = ["MAX_CHARS", "MarkdownReporter", "escape_markdown", "render_markdown"]

MAX_CHARS = 60_000
EXPLANATION_MAX_CHARS = 300
STATUS_ORDER = ("fail", "error", "warn", "pass", "skipped")
ATTENTION = ("fail", "error", "warn")
WORST_FIRST = ("error", "fail", "warn", "pass", "skipped")

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]~|])")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_ZWSP = "&#8203;"  # zero-width space: breaks @mentions and autolinks, invisible when rendered
_WWW = re.compile(r"(\bwww)\.", re.IGNORECASE)


def escape_markdown(text: object, *, max_chars: int | None = None) -> str:
    """Make ``text`` inert inside a Markdown table cell (no HTML, no formatting, no ``|``)."""
    value = str(text)
    if max_chars is not None and len(value) > max_chars:
        value = value[: max_chars - 1] + "…"
    value = terminal_safe(_NEWLINES.sub("\n", value))
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MARKDOWN_PUNCTUATION.sub(r"\\\1", value)
    value = value.replace("@", "@" + _ZWSP).replace("://", ":" + _ZWSP + "//")
    value = _WWW.sub(lambda m: m.group(1) + _ZWSP + ".", value)
    return _NEWLINES.sub("<br>", value)


def _estimate_cell(finding: Finding) -> str:
    ci = format_interval(finding.ci_low, finding.ci_high)
    text = format_number(finding.estimate)
    return f"{text} {ci}" if ci != "n/a" else text


_HEADER = (
    "| Status | Detector | Metric | Group by | Estimate [CI] | n | Threshold | Explanation |\n"
    "|---|---|---|---|---:|---:|---|---|\n"
)


def _row(finding: Finding, main_subject: str | None) -> str:
    metric = finding.label + (f" ({finding.window})" if finding.window else "")
    if finding.subject and finding.subject != main_subject:
        metric += f" [{finding.subject}]"
    cells = [
        f"**{finding.status.upper()}**" if finding.status in ATTENTION else finding.status,
        escape_markdown(finding.detector),
        escape_markdown(metric),
        escape_markdown(finding.group_by or ""),
        _estimate_cell(finding),  # numbers formatted here: nothing to escape
        format_number(finding.n),
        escape_markdown(finding.threshold.describe() if finding.threshold else ""),
        escape_markdown(finding.explanation, max_chars=EXPLANATION_MAX_CHARS),
    ]
    return "| " + " | ".join(cells) + " |\n"


def _table(findings: Iterable[Finding], budget: int, main_subject: str | None) -> tuple[str, int]:
    """A table within ``budget`` characters, and how many rows were left out."""
    findings = list(findings)
    text = _HEADER
    for index, finding in enumerate(findings):
        row = _row(finding, main_subject)
        if len(text) + len(row) > budget:
            return text, len(findings) - index
        text += row
    return text, 0


def render_markdown(report: Report) -> str:
    """The whole ``summary.md`` for ``report``."""
    prov = report.provenance
    main_subject = prov.subject.name if prov.subject else None
    counts = {s: sum(1 for f in report.findings if f.status == s) for s in STATUS_ORDER}
    worst = next((s for s in WORST_FIRST if counts[s]), "pass")
    lines = [f"## {escape_markdown(report.title)}: **{worst.upper()}**", ""]
    lines.append("| " + " | ".join(STATUS_ORDER) + " |")
    lines.append("|" + "---:|" * len(STATUS_ORDER))
    lines.append("| " + " | ".join(str(counts[s]) for s in STATUS_ORDER) + " |")
    lines.append("")
    facts = []
    if prov.subject:
        facts.append(
            f"Subject **{escape_markdown(prov.subject.name)}** "
            f"(adapter {escape_markdown(prov.subject.adapter)}, "
            f"fingerprint {escape_markdown(prov.subject.fingerprint[:16])})"
        )
    facts.append(
        f"dataset {escape_markdown(prov.dataset)} "
        f"(data {escape_markdown(prov.data_fingerprint[:16])})"
    )
    facts.append(f"seed {prov.seed}")
    facts.append(f"config sha256 {escape_markdown(prov.config_sha256[:12])}")
    lines.append(" · ".join(facts))
    lines.append("")
    text = "\n".join(lines) + "\n"

    attention = [f for f in report.findings if f.status in ATTENTION]
    attention.sort(key=lambda f: ATTENTION.index(f.status))
    if attention:
        table, left_out = _table(attention, MAX_CHARS // 2, main_subject)
        text += f"### Needs attention ({len(attention)})\n\n" + table
        if left_out:
            text += f"\n… and {left_out} more; see report.html.\n"
        text += "\n"
    elif report.findings:
        text += "No finding needs attention.\n\n"
    else:
        text += "This report has no findings.\n\n"

    notes = ""
    if report.notes:
        notes = "\n" + "\n".join(f"- {escape_markdown(note)}" for note in report.notes) + "\n"
    if report.findings:
        budget = MAX_CHARS - len(text) - len(notes) - 200
        table, left_out = _table(report.findings, budget, main_subject)
        text += f"<details>\n<summary>All {len(report.findings)} findings</summary>\n\n" + table
        if left_out:
            text += f"\n… and {left_out} more; see report.html or report.json.\n"
        text += "\n</details>\n"
    return text + notes


class MarkdownReporter(Reporter):
    """A Markdown summary for pull-request comments."""

    name = "markdown"
    filename = "summary.md"
    description = "Markdown summary for pull-request comments (summary.md)."

    def render(self, report: Report) -> str:
        return render_markdown(report)
