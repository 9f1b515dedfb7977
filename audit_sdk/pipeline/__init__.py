"""The audit pipeline, one module per stage (see ARCHITECTURE.md):

plan -> data -> outputs -> profiles -> scoring -> context -> detection -> mitigation
(re-entering outputs, profiles or scoring) -> provenance -> reports.
"""

from __future__ import annotations

from audit_sdk.pipeline.data_stage import AuditData, load_audit_data
from audit_sdk.pipeline.detection_stage import missing_requirement, run_detectors
from audit_sdk.pipeline.mitigation_stage import MitigatedSubject, apply_settings, run_mitigators
from audit_sdk.pipeline.plan import AuditPlan, PlannedCall, plan_audit

__all__ = [
    "AuditData",
    "AuditPlan",
    "MitigatedSubject",
    "PlannedCall",
    "apply_settings",
    "load_audit_data",
    "missing_requirement",
    "plan_audit",
    "run_detectors",
    "run_mitigators",
]
