"""The mitigator interface: change the subject to reduce a measured bias."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from audit_sdk.interfaces._params import NoParams, PluginParams

if TYPE_CHECKING:
    from audit_sdk.interfaces.context import AuditContext, SubjectOutputs
    from audit_sdk.interfaces.detector import Requirement

__all__ = ["MitigationResult", "Mitigator"]


@dataclass
class MitigationResult:
    """The mitigated subject's outputs; the runner re-runs the detectors on them and reports
    before/after side by side."""

    outputs: SubjectOutputs
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


class Mitigator(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Requirement]] = frozenset()
    Params: ClassVar[type[PluginParams]] = NoParams

    def __init__(self, params: PluginParams | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def mitigate(self, context: AuditContext) -> MitigationResult:
        """Return the subject's outputs after mitigation."""
