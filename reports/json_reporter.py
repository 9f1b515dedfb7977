"""``report.json``: the source of truth, validated by ``Report.model_json_schema()``."""

from __future__ import annotations

from audit_sdk.interfaces import Reporter
from audit_sdk.report_model import Report

__all__ = ["JsonReporter"]


class JsonReporter(Reporter):
    """The report as indented JSON; ``audit-sdk gate`` and every other renderer read it."""

    name = "json"
    filename = "report.json"
    description = "The report as JSON (the source of truth; `audit-sdk schema --report`)."

    def render(self, report: Report) -> str:
        return report.model_dump_json(indent=2) + "\n"
