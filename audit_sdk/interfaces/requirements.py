"""What a detector or mitigator can ask of an audit, and how a metric reads: typed contracts.

A plugin declares ``requires`` as a set of :class:`Needs` members and
:class:`AdapterCapability` values; the host checks them before the call and records a
``skipped`` finding with the reason when the audit cannot provide one. A detector declares the
metrics it emits as :class:`MetricSpec` values; the host stamps each finding with its
``direction`` and ``value_range`` so the gate and the reports never guess from names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

if TYPE_CHECKING:
    from collections.abc import Iterable

    from audit_sdk.interfaces.adapter import Capability

__all__ = [
    "AdapterCapability",
    "Direction",
    "MetricSpec",
    "Needs",
    "Requirement",
    "as_requirement",
    "metric_spec_for",
]


class Needs(StrEnum):
    """Outputs or data an audit may or may not have."""

    RECOMMENDATIONS = "recommendations"
    """the subject's top-k lists"""
    PROFILES = "profiles"
    """generated (or logged) taste profiles"""
    RATINGS = "ratings"
    """ratings of items or of profiles"""


@dataclass(frozen=True)
class AdapterCapability:
    """The subject's adapter must declare ``capability`` (e.g. ``score`` for attribution)."""

    capability: Capability

    def __str__(self) -> str:
        return f"adapter:{self.capability}"


Requirement: TypeAlias = Needs | AdapterCapability


def as_requirement(value: object, *, plugin: str) -> Requirement:
    """A typed requirement from a declaration (a :class:`Needs`, an :class:`AdapterCapability`,
    or the 0.1 spellings ``"recommendations"`` and ``"adapter:score"``)."""
    from audit_sdk.interfaces.adapter import Capability

    if isinstance(value, (Needs, AdapterCapability)):
        return value
    if isinstance(value, str):
        if value in {n.value for n in Needs}:
            return Needs(value)
        if value.startswith("adapter:"):
            capability = value.removeprefix("adapter:")
            if capability in get_args(Capability):
                return AdapterCapability(capability)  # type: ignore[arg-type]
    known = [n.value for n in Needs] + [f"adapter:{c}" for c in get_args(Capability)]
    raise TypeError(
        f"plugin {plugin!r} declares an unknown requirement {value!r}; use a member of "
        f"audit_sdk.Needs or audit_sdk.AdapterCapability(...) (known: {', '.join(known)})"
    )


Direction = Literal["higher_is_better", "lower_is_better", "closer_to_zero", "none"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric a detector emits: its name (a shell-style pattern over ``Finding.metric``,
    e.g. ``"*:min_max_ratio"``), which direction is good, and the range its values can take."""

    name: str
    direction: Direction
    low: float | None = None
    high: float | None = None
    description: str = ""

    def matches(self, metric: str) -> bool:
        return fnmatchcase(metric, self.name)

    @property
    def value_range(self) -> tuple[float | None, float | None] | None:
        if self.low is None and self.high is None:
            return None
        return (self.low, self.high)


def metric_spec_for(specs: Iterable[MetricSpec], metric: str) -> MetricSpec | None:
    """The first declared spec whose pattern matches ``metric``."""
    for spec in specs:
        if spec.matches(metric):
            return spec
    return None
