"""Stages 3 to 5 for one subject: outputs, profiles and scores, re-run only where something
changed. The first pass runs them all; a mitigation re-enters here with what it changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

from audit_sdk.config import AuditConfig
from audit_sdk.interfaces import GeneratorAdapter, ModelRun, ProfileSampler, SubjectOutputs
from audit_sdk.pipeline.data_stage import AuditData
from audit_sdk.pipeline.outputs_stage import obtain_outputs
from audit_sdk.pipeline.profiles_stage import write_profiles
from audit_sdk.pipeline.scoring_stage import score_run
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.services import GenerationService

__all__ = ["SubjectSetup", "run_subject"]


@dataclass(frozen=True)
class SubjectSetup:
    """Everything that decides a subject's outputs."""

    label: str
    adapter: GeneratorAdapter
    config: AuditConfig
    sampler: ProfileSampler
    profile_generators: Mapping[str, GeneratorAdapter]
    fingerprint: str | None = None
    """overrides the adapter's own (a mitigated subject's)"""


def run_subject(
    setup: SubjectSetup,
    data: AuditData,
    *,
    generation: GenerationService,
    progress: ProgressDisplay,
    notes: list[str],
    previous: SubjectOutputs | None = None,
    previous_samples: pd.DataFrame | None = None,
    rerun_outputs: bool = True,
    rerun_profiles: bool = True,
) -> tuple[ModelRun, pd.DataFrame | None]:
    """The subject's scored outputs and the profile samples (None without profiles).

    With ``rerun_outputs`` (or ``rerun_profiles``) False, the lists (or the profiles) of
    ``previous`` are kept as they are; everything else is recomputed from ``setup``.
    """
    config = setup.config
    if rerun_outputs or previous is None:
        with progress.step(f"Subject {setup.label}: fitting and recommending"):
            outputs = obtain_outputs(
                setup.label,
                setup.adapter,
                data.train,
                data.users,
                config,
                generation,
                notes=notes,
                fingerprint=setup.fingerprint,
            )
    else:
        outputs = replace(
            previous, name=setup.label, fingerprint=setup.fingerprint or previous.fingerprint
        )
    profiles = previous.profiles if previous is not None else None
    samples = previous_samples
    if rerun_profiles or previous is None:
        profiles, samples = _profiles(setup, data, generation, progress, notes)
    outputs = replace(outputs, profiles=profiles)
    with progress.step(f"Scoring {setup.label}"):
        run = score_run(outputs, data.test.interactions.frame, data.users, k=config.subject.k)
    return run, samples


def _profiles(
    setup: SubjectSetup,
    data: AuditData,
    generation: GenerationService,
    progress: ProgressDisplay,
    notes: list[str],
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    config = setup.config
    users = data.users
    if setup.adapter.supports("replay"):
        # A team's logged profiles: audit them as they are; no model is run.
        logged = setup.adapter.logged_profiles()
        logged = logged[logged["user_id"].isin(users)].reset_index(drop=True)
        if not config.profiles.enabled:
            return logged, None
        out = write_profiles(
            config,
            data.train,
            users,
            {},
            sampler=setup.sampler,
            generation=generation,
            progress=progress,
            notes=notes,
            logged=logged,
        )
        return out.profiles, out.samples
    if not setup.profile_generators:
        return None, None
    for label, adapter in setup.profile_generators.items():
        if adapter is not setup.adapter:
            from audit_sdk.pipeline.outputs_stage import fit_adapter

            with progress.step(f"Profile generator {label}: fitting"):
                fit_adapter(adapter, label, data.train, timeout_s=config.subject.timeout_s)
    out = write_profiles(
        config,
        data.train,
        users,
        setup.profile_generators,
        sampler=setup.sampler,
        generation=generation,
        progress=progress,
        notes=notes,
    )
    return out.profiles, out.samples
