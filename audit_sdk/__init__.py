"""audit-sdk: audit LLM-based recommender systems for bias, with confidence intervals.

Plugin authors import everything they need from here::

    from audit_sdk import Detector, Finding, MetricSpec, Needs, hookimpl
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from audit_sdk.hookspecs import hookimpl

if TYPE_CHECKING:
    from audit_sdk.interfaces import (
        AdapterCapability,
        AuditContext,
        Capability,
        DatasetLoader,
        Detector,
        GenerationParams,
        GeneratorAdapter,
        MetricSpec,
        MitigationResult,
        MitigationSkipped,
        Mitigator,
        ModelRun,
        Needs,
        NoParams,
        PluginParams,
        ProfileSampler,
        Reporter,
        SubjectOutputs,
        Tokenization,
        TokenScores,
        UserFeature,
    )
    from audit_sdk.interfaces._params import PathParam
    from audit_sdk.plugin_commands import PluginCommand
    from audit_sdk.report_model import Finding, GroupEstimate, Report, ResultCurves, ResultTable
    from audit_sdk.thresholds import Threshold

try:
    __version__ = version("audit-sdk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# public name -> the module that defines it (imported on first use, so `import audit_sdk`
# stays light)
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(
        (
            "AdapterCapability",
            "AuditContext",
            "Capability",
            "DatasetLoader",
            "Detector",
            "GenerationParams",
            "GeneratorAdapter",
            "MetricSpec",
            "MitigationResult",
            "MitigationSkipped",
            "Mitigator",
            "ModelRun",
            "Needs",
            "NoParams",
            "PluginParams",
            "ProfileSampler",
            "Reporter",
            "SubjectOutputs",
            "TokenScores",
            "Tokenization",
            "UserFeature",
        ),
        "audit_sdk.interfaces",
    ),
    "PathParam": "audit_sdk.interfaces._params",
    "PluginCommand": "audit_sdk.plugin_commands",
    "Finding": "audit_sdk.report_model",
    "GroupEstimate": "audit_sdk.report_model",
    "Report": "audit_sdk.report_model",
    "ResultCurves": "audit_sdk.report_model",
    "ResultTable": "audit_sdk.report_model",
    "Threshold": "audit_sdk.thresholds",
}

__all__ = [
    "AdapterCapability",
    "AuditContext",
    "Capability",
    "DatasetLoader",
    "Detector",
    "Finding",
    "GenerationParams",
    "GeneratorAdapter",
    "GroupEstimate",
    "MetricSpec",
    "MitigationResult",
    "MitigationSkipped",
    "Mitigator",
    "ModelRun",
    "Needs",
    "NoParams",
    "PathParam",
    "PluginCommand",
    "PluginParams",
    "ProfileSampler",
    "Report",
    "Reporter",
    "ResultCurves",
    "ResultTable",
    "SubjectOutputs",
    "Threshold",
    "TokenScores",
    "Tokenization",
    "UserFeature",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'audit_sdk' has no attribute {name!r}")
