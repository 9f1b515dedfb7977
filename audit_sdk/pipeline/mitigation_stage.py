"""Stage 8, mitigation: each mitigator says what it changes, the pipeline re-enters at the
first stage that depends on it, and the detectors run again on the mitigated subject.

* outputs -> scoring;  * a new model -> outputs (and profiles, when the subject wrote them);
* a profile writer or a sampler -> profiles;  * settings -> the stages of their sections.

The mitigated subject is named ``<subject>+<mitigator>`` (or what the mitigator says) and gets
a fingerprint of its own, derived from the unmitigated one and from what changed, so the
generation cache and the report never mistake it for the original.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from pydantic import ValidationError

from audit_sdk.config import AuditConfig, format_validation_error
from audit_sdk.errors import ConfigError
from audit_sdk.execution import Executor, Task
from audit_sdk.interfaces import (
    AuditContext,
    GeneratorAdapter,
    MitigationInfo,
    MitigationResult,
    MitigationSkipped,
    Mitigator,
    ProfileSampler,
)
from audit_sdk.interfaces.mitigator import OVERRIDABLE
from audit_sdk.pipeline.data_stage import AuditData
from audit_sdk.pipeline.detection_stage import (
    error_finding,
    missing_requirement,
    run_detectors,
    skipped_finding,
)
from audit_sdk.pipeline.plan import PlannedCall
from audit_sdk.pipeline.subject_run import SubjectSetup, run_subject
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.report_model import Finding, MitigationRecord
from audit_sdk.report_preparation import json_safe
from audit_sdk.services import ModelHandle

__all__ = ["MitigatedSubject", "apply_settings", "run_mitigators"]


@dataclass(frozen=True)
class MitigatedSubject:
    """A mitigation's context (what the detectors after it saw) and its findings."""

    context: AuditContext
    findings: list[Finding]


def apply_settings(
    config: AuditConfig, settings: Mapping[str, Mapping[str, Any]], *, mitigator: str
) -> AuditConfig:
    """``config`` with a mitigator's overrides, validated like the config file."""
    updates: dict[str, Any] = {}
    for section, values in settings.items():
        allowed = OVERRIDABLE.get(section)
        if allowed is None:
            raise ConfigError(
                f"mitigator {mitigator!r} overrides section {section!r}; mitigators may change "
                f"only {', '.join(sorted(OVERRIDABLE))} (the data, split and groups stay fixed "
                "so before and after are measured on the same users)"
            )
        bad = sorted(set(values) - allowed)
        if bad:
            raise ConfigError(
                f"mitigator {mitigator!r} overrides {section}.{bad[0]}, which mitigators may not "
                f"change (allowed in {section}: {', '.join(sorted(allowed))})"
            )
        current = getattr(config, section)
        try:
            updates[section] = type(current).model_validate(
                {**current.model_dump(), **dict(values)}
            )
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(
                    exc, source=f"mitigator {mitigator!r} settings", model=type(current)
                )
            ) from None
    return config.model_copy(update=updates)


def _fingerprint(context: AuditContext, mitigator: Mitigator, result: MitigationResult) -> str:
    parts: dict[str, Any] = {
        "before": context.subject.fingerprint,
        "mitigator": mitigator.name,
        "params": mitigator.params.model_dump(mode="json"),
    }
    if result.outputs is not None and result.outputs.recommendations is not None:
        recs = result.outputs.recommendations
        parts["outputs"] = hashlib.sha256(
            pd.util.hash_pandas_object(recs, index=False).to_numpy().tobytes()
        ).hexdigest()
    if result.adapter is not None:
        parts["adapter"] = result.adapter.fingerprint()
    if result.profile_writer is not None:
        parts["profile_writer"] = result.profile_writer.fingerprint()
    if result.sampler is not None:
        parts["sampler"] = result.sampler.describe()
    if result.settings:
        parts["settings"] = {k: dict(v) for k, v in result.settings.items()}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"mitigated:{mitigator.name}:{digest[:32]}"


def _mitigated_context(
    context: AuditContext,
    mitigator: Mitigator,
    result: MitigationResult,
    *,
    data: AuditData,
    setup: SubjectSetup,
    progress: ProgressDisplay,
    notes: list[str],
) -> AuditContext:
    changed = result.changes()
    if not changed:
        raise ValueError(
            "the MitigationResult changes nothing: set outputs, adapter, profile_writer, "
            "sampler or settings"
        )
    config = apply_settings(context.config, result.settings, mitigator=mitigator.name)
    name = result.name or f"{context.subject.name}+{mitigator.name}"
    fingerprint = _fingerprint(context, mitigator, result)
    adapter: GeneratorAdapter = result.adapter or setup.adapter
    generators = {
        label: (adapter if g is setup.adapter else g)
        for label, g in setup.profile_generators.items()
    }
    if result.profile_writer is not None:
        own = [label for label, g in setup.profile_generators.items() if g is setup.adapter]
        for label in own or [name]:
            generators[label] = result.profile_writer
    sampler: ProfileSampler = result.sampler or setup.sampler
    new_setup = SubjectSetup(name, adapter, config, sampler, generators, fingerprint)
    touched = set(result.settings)
    rerun_outputs = result.adapter is not None or "subject" in touched
    rerun_profiles = (
        (result.adapter is not None and setup.adapter in setup.profile_generators.values())
        or result.profile_writer is not None
        or result.sampler is not None
        or bool(touched & {"sampling", "profiles"})
    )
    previous = context.subject
    if result.outputs is not None:
        previous = replace(
            result.outputs,
            name=name,
            fingerprint=fingerprint,
            profiles=result.outputs.profiles
            if result.outputs.profiles is not None
            else context.subject.profiles,
        )
    generation = context.services.generation if context.services else None
    assert generation is not None
    run, samples = run_subject(
        new_setup,
        data,
        generation=generation,
        progress=progress,
        notes=notes,
        previous=previous,
        previous_samples=context.samples,
        rerun_outputs=rerun_outputs,
        rerun_profiles=rerun_profiles,
    )
    services = context.services
    if services is not None and result.adapter is not None:
        services = services.with_subject(
            ModelHandle(name, spec=None, settings=None, live=result.adapter)
        )
    mitigated = replace(
        context,
        config=config,
        subject_run=run,
        samples=samples,
        services=services,
        mitigation=MitigationInfo(
            mitigator=mitigator.name,
            summary=result.summary,
            before=context.subject.name,
            before_fingerprint=context.subject.fingerprint,
            details=dict(result.details),
            before_context=context,
        ),
    )
    mitigated.__dict__["features"] = context.features  # same users and training data
    return mitigated


def run_mitigators(
    mitigators: list[PlannedCall],
    detectors: list[PlannedCall],
    context: AuditContext,
    *,
    data: AuditData,
    setup: SubjectSetup,
    executor: Executor,
    progress: ProgressDisplay,
    notes: list[str],
) -> list[MitigatedSubject]:
    """Each mitigator on the unmitigated context, then the detectors on its result."""
    out: list[MitigatedSubject] = []
    for call in mitigators:
        mitigator = call.plugin
        assert isinstance(mitigator, Mitigator)
        subject = context.subject.name
        reason = missing_requirement(mitigator, context)
        if reason is not None:
            out.append(
                MitigatedSubject(context, [skipped_finding(mitigator.name, subject, reason)])
            )
            continue
        record = executor.run_one(
            Task(
                lambda m=mitigator: m.mitigate(context),  # type: ignore[misc]
                phase="mitigate",
                plugin=mitigator.name,
                timeout_s=call.timeout_s,
            )
        )
        if not record.ok and isinstance(record.error, MitigationSkipped):
            reason = str(record.error)
            out.append(
                MitigatedSubject(context, [skipped_finding(mitigator.name, subject, reason)])
            )
            continue
        if not record.ok or not isinstance(record.result, MitigationResult):
            if record.ok:
                record.error = TypeError(
                    f"mitigate returned {type(record.result).__name__}, not a MitigationResult"
                )
            out.append(MitigatedSubject(context, [error_finding(record, mitigator.name, subject)]))
            continue
        result = record.result
        rerun = executor.run_one(
            Task(
                lambda m=mitigator, r=result: _mitigated_context(  # type: ignore[misc]
                    context, m, r, data=data, setup=setup, progress=progress, notes=notes
                ),
                phase="re-run after mitigation",
                plugin=mitigator.name,
            )
        )
        if not rerun.ok or rerun.result is None:
            out.append(MitigatedSubject(context, [error_finding(rerun, mitigator.name, subject)]))
            continue
        mitigated: AuditContext = rerun.result
        record_info = MitigationRecord(
            mitigator=mitigator.name,
            summary=result.summary,
            before=subject,
            before_fingerprint=context.subject.fingerprint,
            changed=result.changes(),
            details=json_safe(result.details),
            tables=result.tables,
            curves=result.curves,
        )
        findings = [
            f.model_copy(update={"mitigation": record_info})
            for f in run_detectors(
                detectors, mitigated, executor, progress, label=f"Detectors after {mitigator.name}"
            )
        ]
        out.append(MitigatedSubject(mitigated, findings))
    return out
