"""Thresholds: how an estimate and its confidence interval become a status.

A threshold compares one *statistic* of a finding (the point ``estimate``, the CI's lower
bound ``ci_low`` or its upper bound ``ci_high``) against limits. Choosing the statistic is how a
team says what evidence it wants:

* gate on **evidence of harm**: fail only when even the favourable end of the CI is past the
  limit (for a ratio where low is bad: ``statistic: ci_high, fail_below: 0.8``);
* gate on **evidence of safety**: fail unless the unfavourable end is inside the limit
  (``statistic: ci_low, fail_below: 0.8``).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Statistic",
    "Status",
    "Threshold",
    "evaluate_threshold",
    "pick_statistic",
    "unmatched_threshold_keys",
]

Status = Literal["pass", "warn", "fail", "error", "skipped"]
Statistic = Literal["estimate", "ci_low", "ci_high"]


class Threshold(BaseModel):
    """Limits on one statistic of a finding. Any limit may be left out."""

    model_config = ConfigDict(extra="forbid")

    statistic: Statistic = "estimate"
    # NaN would make every comparison false (every threshold passes); infinity means no limit.
    warn_above: float | None = Field(default=None, allow_inf_nan=False)
    fail_above: float | None = Field(default=None, allow_inf_nan=False)
    warn_below: float | None = Field(default=None, allow_inf_nan=False)
    fail_below: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _at_least_one_limit(self) -> Threshold:
        limits = (self.warn_above, self.fail_above, self.warn_below, self.fail_below)
        if all(v is None for v in limits):
            raise ValueError(
                "a threshold needs at least one of warn_above, fail_above, warn_below, fail_below"
            )
        return self

    def describe(self) -> str:
        parts = []
        for label, value in (
            ("fail if", self.fail_above),
            ("warn if", self.warn_above),
        ):
            if value is not None:
                parts.append(f"{label} {self.statistic} > {value:g}")
        for label, value in (
            ("fail if", self.fail_below),
            ("warn if", self.warn_below),
        ):
            if value is not None:
                parts.append(f"{label} {self.statistic} < {value:g}")
        return "; ".join(parts)


def pick_statistic(
    statistic: Statistic, estimate: float | None, ci_low: float | None, ci_high: float | None
) -> float | None:
    return {"estimate": estimate, "ci_low": ci_low, "ci_high": ci_high}[statistic]


def evaluate_threshold(
    threshold: Threshold | None,
    estimate: float | None,
    ci_low: float | None,
    ci_high: float | None,
) -> Status:
    """Status of a finding under ``threshold``: ``fail`` beats ``warn`` beats ``pass``.

    With no threshold the finding is informational and passes. A missing statistic (for
    example, no CI could be computed) gives ``skipped``: an audit should never pass silently
    on a number it could not compute.
    """
    if threshold is None:
        return "pass"
    value = pick_statistic(threshold.statistic, estimate, ci_low, ci_high)
    if value is None or value != value:  # None or NaN
        return "skipped"
    if (threshold.fail_above is not None and value > threshold.fail_above) or (
        threshold.fail_below is not None and value < threshold.fail_below
    ):
        return "fail"
    if (threshold.warn_above is not None and value > threshold.warn_above) or (
        threshold.warn_below is not None and value < threshold.warn_below
    ):
        return "warn"
    return "pass"


def unmatched_threshold_keys(keys: Iterable[str], metrics: Iterable[str]) -> list[str]:
    """The threshold keys (exact metric names or shell-style patterns, as
    :meth:`Detector.threshold_for` reads them) that match none of ``metrics``: a misspelt key
    would otherwise be ignored in silence."""
    names = set(metrics)
    return [key for key in keys if key not in names and not any(fnmatchcase(m, key) for m in names)]
