"""One small interface per plugin kind."""

from __future__ import annotations

from audit_sdk.interfaces._params import NoParams, PluginParams
from audit_sdk.interfaces.adapter import (
    Capability,
    GenerationParams,
    GeneratorAdapter,
    Tokenization,
    TokenScores,
)
from audit_sdk.interfaces.context import AuditContext, BootstrapSettings, SubjectOutputs
from audit_sdk.interfaces.dataset_loader import DatasetLoader
from audit_sdk.interfaces.detector import Detector, Requirement
from audit_sdk.interfaces.mitigator import MitigationResult, Mitigator
from audit_sdk.interfaces.reporter import Reporter

__all__ = [
    "AuditContext",
    "BootstrapSettings",
    "Capability",
    "DatasetLoader",
    "Detector",
    "GenerationParams",
    "GeneratorAdapter",
    "MitigationResult",
    "Mitigator",
    "NoParams",
    "PluginParams",
    "Reporter",
    "Requirement",
    "SubjectOutputs",
    "TokenScores",
    "Tokenization",
]
