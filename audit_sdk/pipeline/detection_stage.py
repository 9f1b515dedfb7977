"""Stage 7, detection: check each detector's requirements, run it through the executor, and
turn its result (or its failure) into findings stamped with timing and declared metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit_sdk.execution import Executor, Task
from audit_sdk.interfaces import AdapterCapability, AuditContext, Detector, Mitigator, Needs
from audit_sdk.interfaces.requirements import as_requirement, metric_spec_for
from audit_sdk.pipeline.plan import PlannedCall
from audit_sdk.plugin_calls import CallRecord
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.report_model import Finding

__all__ = ["error_finding", "missing_requirement", "run_detectors", "skipped_finding"]


def missing_requirement(plugin: Detector | Mitigator, context: AuditContext) -> str | None:
    """Why ``plugin`` cannot run on this audit, or None when it can."""
    for declared in sorted(plugin.requires, key=str):
        requirement = as_requirement(declared, plugin=plugin.name)
        if requirement is Needs.RECOMMENDATIONS and context.subject.recommendations is None:
            return (
                f"needs recommendation lists, and adapter {context.subject.adapter!r} "
                "produced none (it lacks the 'recommend' capability)"
            )
        if requirement is Needs.PROFILES and context.subject.profiles is None:
            return "needs generated profiles, and this audit generated none"
        if requirement is Needs.RATINGS and not _has_ratings(context):
            return "needs ratings (a 'rating' column in interactions or logged outputs)"
        if isinstance(requirement, AdapterCapability):
            adapter = context.adapter
            if adapter is None or not adapter.supports(requirement.capability):
                return (
                    f"needs the adapter capability {requirement.capability!r}, which adapter "
                    f"{context.subject.adapter!r} does not declare"
                )
    return None


def _has_ratings(context: AuditContext) -> bool:
    profiles = context.subject.profiles
    if profiles is not None and "rating" in profiles.columns:
        return bool(profiles["rating"].notna().any())
    return context.dataset.interactions.has_ratings


def skipped_finding(plugin: str, subject: str, reason: str) -> Finding:
    return Finding(
        detector=plugin, metric="(all)", subject=subject, status="skipped", explanation=reason
    )


def error_finding(record: CallRecord[Any], plugin: str, subject: str) -> Finding:
    return Finding(
        detector=plugin,
        metric="(all)",
        subject=subject,
        status="error",
        explanation=f"{plugin!r} failed during {record.phase}: {record.describe_error()}",
        duration_s=round(record.duration_s, 3),
        details={"traceback": record.traceback},
    )


def _findings_from(record: CallRecord[Any], detector: Detector, subject: str) -> list[Finding]:
    if not record.ok:
        return [error_finding(record, detector.name, subject)]
    result = record.result
    if not isinstance(result, list) or not all(isinstance(f, Finding) for f in result):
        return [
            Finding(
                detector=detector.name,
                metric="(all)",
                subject=subject,
                status="error",
                explanation=(
                    f"detector {detector.name!r} returned {type(result).__name__}, not a list "
                    "of Finding objects"
                ),
                duration_s=round(record.duration_s, 3),
            )
        ]
    stamped = []
    for finding in result:
        update: dict[str, Any] = {}
        if finding.duration_s is None:
            update["duration_s"] = round(record.duration_s, 3)
        spec = metric_spec_for(detector.metrics, finding.metric)
        if spec is not None:
            if finding.direction is None:
                update["direction"] = spec.direction
            if finding.value_range is None and spec.value_range is not None:
                update["value_range"] = spec.value_range
        stamped.append(finding.model_copy(update=update) if update else finding)
    return stamped


def run_detectors(
    detectors: Sequence[PlannedCall],
    context: AuditContext,
    executor: Executor,
    progress: ProgressDisplay,
    *,
    label: str = "Detectors",
) -> list[Finding]:
    findings: list[Finding] = []
    with progress.step(label, total=len(detectors)) as step:
        for call in detectors:
            detector = call.plugin
            assert isinstance(detector, Detector)
            reason = missing_requirement(detector, context)
            if reason is not None:
                findings.append(skipped_finding(detector.name, context.subject.name, reason))
            else:
                record = executor.run_one(
                    Task(
                        lambda d=detector: d.detect(context),  # type: ignore[misc]
                        phase="detect",
                        plugin=detector.name,
                        timeout_s=call.timeout_s,
                    )
                )
                findings.extend(_findings_from(record, detector, context.subject.name))
            step.advance()
    return findings
