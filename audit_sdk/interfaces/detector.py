"""The detector interface: measure one kind of bias and return findings."""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic

from audit_sdk.interfaces._params import NoParams, ParamsT, PluginParams
from audit_sdk.interfaces.requirements import MetricSpec, Requirement
from audit_sdk.thresholds import Threshold

if TYPE_CHECKING:
    from audit_sdk.interfaces.context import AuditContext
    from audit_sdk.report_model import Finding

__all__ = ["Detector"]


class Detector(ABC, Generic[ParamsT]):
    """Measures one kind of bias.

    ``detect`` returns findings; each carries an estimate, a CI, ``n`` and a status computed
    from its threshold (``self.threshold_for(metric)``). A detector that raises becomes an
    ``error`` finding and the audit goes on.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Requirement]] = frozenset()
    """What the audit must provide (:class:`~audit_sdk.Needs`, :class:`~audit_sdk.AdapterCapability`);
    the host skips the detector, with the reason, when it cannot."""
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    """The metrics this detector emits, with their direction and range (read by the gate)."""
    Params: ClassVar[type[PluginParams]] = NoParams
    default_thresholds: ClassVar[dict[str, Threshold]] = {}

    params: ParamsT

    def __init__(
        self,
        params: ParamsT | None = None,
        thresholds: dict[str, Threshold] | None = None,
    ) -> None:
        self.params = params if params is not None else self.Params()  # type: ignore[assignment]
        self.thresholds = {**self.default_thresholds, **(thresholds or {})}

    def threshold_for(self, metric: str) -> Threshold | None:
        """The threshold for ``metric``: an exact key, else the first matching shell-style
        pattern (``"*:min_max_ratio"``); configured thresholds win over defaults."""
        if metric in self.thresholds:
            return self.thresholds[metric]
        for key in reversed(list(self.thresholds)):
            if fnmatch.fnmatchcase(metric, key):
                return self.thresholds[key]
        return None

    @abstractmethod
    def detect(self, context: AuditContext) -> list[Finding]:
        """Measure and return findings."""
