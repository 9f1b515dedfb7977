"""The mitigator interface: change the subject to reduce a measured bias.

A mitigator returns a :class:`MitigationResult` that says what it changed, and the host
re-enters the pipeline from there:

* ``outputs``: post-processed outputs (re-ranked lists): the subject is re-scored;
* ``adapter``: a new model (a fine-tuned recommender): its outputs are obtained again (and its
  profiles, when the subject wrote them), then scored;
* ``profile_writer``: a new profile writer (an aligned generator) that replaces the subject's
  in the profile stage;
* ``sampler``: a new sampling policy for the profile stage (e.g. more items for generalists);
* ``settings``: overrides of the pipeline's settings by config section (``sampling``,
  ``profiles``, ``subject``: prompts, temperatures, sample sizes), validated like the config.

The mitigated subject gets its own name and fingerprint, every per-user column is recomputed
from its outputs, and the detectors run on it; the report shows before and after side by side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from audit_sdk.interfaces._params import NoParams, ParamsT, PluginParams
from audit_sdk.interfaces.requirements import Requirement
from audit_sdk.report_model import ResultCurves, ResultTable

if TYPE_CHECKING:
    from audit_sdk.interfaces.adapter import GeneratorAdapter
    from audit_sdk.interfaces.context import AuditContext, SubjectOutputs
    from audit_sdk.interfaces.sampler import ProfileSampler

__all__ = ["MitigationResult", "MitigationSkipped", "Mitigator"]

# Config sections (and keys) a mitigator may override; the data, split and groups stay fixed
# so before and after are measured on the same users and held-out items.
OVERRIDABLE: dict[str, frozenset[str]] = {
    "sampling": frozenset({"windows", "reference_date", "top_artists", "tracks_per_artist"}),
    "profiles": frozenset({"template", "temperature", "top_p", "max_new_tokens"}),
    "subject": frozenset({"temperature", "max_new_tokens"}),
}


class MitigationSkipped(Exception):
    """Raised by :meth:`Mitigator.mitigate` when the mitigation does not apply to this audit
    (e.g. no preference pair above the margin); the message is the reason. The audit records
    a ``skipped`` finding for the mitigator and goes on."""


@dataclass(frozen=True)
class MitigationResult:
    """What a mitigator changed (at least one of the five), and what it says about it."""

    summary: str
    outputs: SubjectOutputs | None = None
    adapter: GeneratorAdapter | None = None
    profile_writer: GeneratorAdapter | None = None
    sampler: ProfileSampler | None = None
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    name: str | None = None
    """the mitigated subject's label (default ``<subject>+<mitigator>``)"""
    details: dict[str, Any] = field(default_factory=dict)
    tables: list[ResultTable] = field(default_factory=list)
    """tables the report shows in the mitigation's section (e.g. every arm compared)"""
    curves: list[ResultCurves] = field(default_factory=list)
    """curves the report draws there (e.g. group weights per training step)"""

    def changes(self) -> list[str]:
        """Which of outputs, adapter, profile_writer, sampler, settings are set."""
        return [
            kind
            for kind, value in (
                ("outputs", self.outputs),
                ("adapter", self.adapter),
                ("profile_writer", self.profile_writer),
                ("sampler", self.sampler),
                ("settings", self.settings or None),
            )
            if value is not None
        ]


class Mitigator(ABC, Generic[ParamsT]):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Requirement]] = frozenset()
    """Checked like a detector's: an audit that cannot provide one gets a ``skipped`` finding."""
    Params: ClassVar[type[PluginParams]] = NoParams

    params: ParamsT

    def __init__(self, params: ParamsT | None = None) -> None:
        self.params = params if params is not None else self.Params()  # type: ignore[assignment]

    @abstractmethod
    def mitigate(self, context: AuditContext) -> MitigationResult:
        """Return what changes; the host re-runs the stages that depend on it."""
