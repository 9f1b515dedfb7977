"""The built-in reporters, registered through the ``reporters`` entry point like any plugin."""

from __future__ import annotations

from audit_sdk.hookspecs import RegisterReporter, hookimpl

from .html_reporter import HtmlReporter
from .json_reporter import JsonReporter
from .junit_reporter import JunitReporter
from .markdown_reporter import MarkdownReporter

__all__ = ["BUILTIN_REPORTERS", "audit_sdk_register_reporters"]

BUILTIN_REPORTERS = (JsonReporter, HtmlReporter, JunitReporter, MarkdownReporter)


@hookimpl
def audit_sdk_register_reporters(register: RegisterReporter) -> None:
    for reporter_class in BUILTIN_REPORTERS:
        register(reporter_class)
