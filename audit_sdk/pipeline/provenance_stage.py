"""Stage 9, provenance: what was run, on what, by which versions; then the typed report."""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from audit_sdk import __version__
from audit_sdk.config import AuditConfig, config_sha256
from audit_sdk.interfaces import AuditContext, SubjectOutputs
from audit_sdk.report_model import Finding, Provenance, Report, SubjectInfo
from audit_sdk.report_preparation import json_safe

__all__ = ["assemble_report", "generation_error_findings", "subject_info"]


def subject_info(outputs: SubjectOutputs) -> SubjectInfo:
    return SubjectInfo(
        name=outputs.name,
        adapter=outputs.adapter,
        fingerprint=outputs.fingerprint,
        description=json_safe(outputs.description),
    )


def generation_error_findings(context: AuditContext) -> list[Finding]:
    """One ``error`` finding per profile generator that failed on some prompts."""
    profiles = context.subject.profiles
    if profiles is None or "error" not in profiles:
        return []
    findings = []
    for model, part in profiles.groupby("model", sort=False):
        failed = part[part["error"].notna()]
        if failed.empty:
            continue
        findings.append(
            Finding(
                detector="profile_generation",
                metric="generation_errors",
                group_by="model",
                subject=str(model),
                estimate=len(failed) / len(part),
                n=len(part),
                status="error",
                explanation=(
                    f"{model} failed on {len(failed)} of {len(part)} profile prompts; first "
                    f"error: {failed['error'].iloc[0]}"
                ),
                details={"errors": failed["error"].value_counts().head(5).to_dict()},
            )
        )
    return findings


def assemble_report(
    config: AuditConfig,
    context: AuditContext,
    findings: list[Finding],
    *,
    config_path: str | None,
    plugins: list[Any],
    started: datetime,
    mitigated: Sequence[AuditContext] = (),
    notes: Sequence[str] = (),
) -> Report:
    provenance = Provenance(
        config=config.model_dump(mode="json"),
        config_sha256=config_sha256(config),
        config_path=config_path,
        data_fingerprint=context.dataset.fingerprint(),
        dataset=context.dataset.name,
        package_version=__version__,
        python_version=sys.version.split()[0],
        platform=platform.platform(),
        plugins=plugins,
        seed=config.seed,
        started_at=started,
        finished_at=datetime.now(UTC),
        subject=subject_info(context.subject),
        baselines=[subject_info(b) for b in context.baselines.values()],
        mitigated=[subject_info(m.subject) for m in mitigated],
    )
    report = Report.build(provenance=provenance, findings=findings, notes=list(notes))
    return report.model_copy(update={"title": config.title})
