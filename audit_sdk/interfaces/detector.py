"""The detector interface: measure one kind of bias and return findings."""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal

from audit_sdk.interfaces._params import NoParams, PluginParams
from audit_sdk.thresholds import Threshold

if TYPE_CHECKING:
    from audit_sdk.interfaces.context import AuditContext
    from audit_sdk.report_model import Finding

__all__ = ["Detector", "Requirement"]

# What a detector can ask of an audit. "recommendations" and "profiles" are subject outputs;
# "adapter:<capability>" asks the subject's adapter for a capability (e.g. "adapter:score").
Requirement = Literal[
    "recommendations",
    "profiles",
    "ratings",
    "adapter:generate",
    "adapter:score",
    "adapter:tokenize",
    "adapter:embed",
]


class Detector(ABC):
    """Measures one kind of bias.

    ``detect`` returns findings; each carries an estimate, a CI, ``n`` and a status computed
    from its threshold (``self.threshold_for(metric)``). A detector that raises becomes an
    ``error`` finding and the audit goes on.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Requirement]] = frozenset()
    Params: ClassVar[type[PluginParams]] = NoParams
    default_thresholds: ClassVar[dict[str, Threshold]] = {}

    def __init__(
        self,
        params: PluginParams | None = None,
        thresholds: dict[str, Threshold] | None = None,
    ) -> None:
        self.params = params if params is not None else self.Params()
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
