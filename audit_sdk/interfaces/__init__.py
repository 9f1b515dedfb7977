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
from audit_sdk.interfaces.context import (
    AuditContext,
    BootstrapSettings,
    MitigationInfo,
    ModelRun,
    SubjectOutputs,
    UserGroups,
)
from audit_sdk.interfaces.dataset_loader import DatasetLoader
from audit_sdk.interfaces.detector import Detector
from audit_sdk.interfaces.feature import UserFeature
from audit_sdk.interfaces.mitigator import MitigationResult, MitigationSkipped, Mitigator
from audit_sdk.interfaces.reporter import Reporter
from audit_sdk.interfaces.requirements import (
    AdapterCapability,
    MetricSpec,
    Needs,
    Requirement,
)
from audit_sdk.interfaces.sampler import ProfileSampler

__all__ = [
    "AdapterCapability",
    "AuditContext",
    "BootstrapSettings",
    "Capability",
    "DatasetLoader",
    "Detector",
    "GenerationParams",
    "GeneratorAdapter",
    "MetricSpec",
    "MitigationInfo",
    "MitigationResult",
    "MitigationSkipped",
    "Mitigator",
    "ModelRun",
    "Needs",
    "NoParams",
    "PluginParams",
    "ProfileSampler",
    "Reporter",
    "Requirement",
    "SubjectOutputs",
    "TokenScores",
    "Tokenization",
    "UserFeature",
    "UserGroups",
]
