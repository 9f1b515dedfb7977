"""The gate policy file: its models (rules, baseline settings, statuses) and reading it.

The annotated example is in :mod:`audit_sdk.gate`, which re-exports these names.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit_sdk.config import load_yaml_document, read_document_text, validate_document
from audit_sdk.errors import PolicyError
from audit_sdk.report_model import Finding
from audit_sdk.thresholds import Statistic, Status

Severity = Literal["fail", "warn"]


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GateRule(_PolicyModel):
    """A limit on one statistic of the findings (or per-group rows) that match the patterns."""

    name: str | None = Field(default=None, description="label shown in the gate's output")
    detector: str = Field(default="*", description="fnmatch pattern on Finding.detector")
    metric: str = Field(
        default="*",
        description="fnmatch pattern on Finding.metric, or on its label (metric[generator])",
    )
    group_by: str = Field(
        default="*", description="pattern on Finding.group_by (None matches '*' only)"
    )
    window: str = Field(
        default="*", description="pattern on Finding.window (None matches '*' only)"
    )
    group: str | None = Field(
        default=None,
        description="check the rows of finding.groups whose group matches this pattern",
    )
    statistic: Statistic = "estimate"
    fail_below: float | None = Field(default=None, allow_inf_nan=False)
    fail_above: float | None = Field(default=None, allow_inf_nan=False)
    missing: Literal["fail", "pass"] = Field(
        default="fail", description="when nothing matches or the statistic is missing"
    )
    severity: Severity = Field(default="fail", description="warn: print but do not fail the gate")

    @model_validator(mode="after")
    def _limits(self) -> GateRule:
        if self.fail_below is None and self.fail_above is None:
            raise ValueError("a rule needs fail_below, fail_above or both")
        if (
            self.fail_below is not None
            and self.fail_above is not None
            and self.fail_below > self.fail_above
        ):
            raise ValueError(
                f"fail_below ({self.fail_below:g}) is greater than fail_above "
                f"({self.fail_above:g}), so every value would violate"
            )
        return self

    def matches(self, finding: Finding) -> bool:
        return (
            fnmatchcase(finding.detector, self.detector)
            and (
                # a label's brackets are literal: "ate:rating[gpt-x]" names one generator
                self.metric == finding.label
                or fnmatchcase(finding.metric, self.metric)
                or fnmatchcase(finding.label, self.metric)
            )
            and _optional_match(finding.group_by, self.group_by)
            and _optional_match(finding.window, self.window)
        )

    def target(self) -> str:
        text = f"{self.detector}/{self.metric}"
        if self.group_by != "*":
            text += f" by {self.group_by}"
        if self.window != "*":
            text += f" window {self.window}"
        if self.group is not None:
            text += f" group {self.group}"
        return text

    def describe(self) -> str:
        conditions = []
        if self.fail_below is not None:
            conditions.append(f"{self.statistic} >= {self.fail_below:g}")
        if self.fail_above is not None:
            conditions.append(f"{self.statistic} <= {self.fail_above:g}")
        text = f"{self.target()}: {' and '.join(conditions)}"
        return f"{self.name}: {text}" if self.name else text


class BaselinePolicy(_PolicyModel):
    """How ``--baseline`` compares the report with an older one."""

    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    direction: Literal["auto", "lower_is_worse", "higher_is_worse"] = "auto"
    disappeared: Severity = "warn"


def _default_statuses() -> list[Status]:
    return ["fail", "error"]


def _default_baseline() -> BaselinePolicy:
    return BaselinePolicy()


class GatePolicy(_PolicyModel):
    """A gate policy file. See the module documentation for an annotated example."""

    fail_on_status: list[Status] = Field(default_factory=_default_statuses)
    rules: list[GateRule] = Field(default_factory=list)
    baseline: BaselinePolicy = Field(default_factory=_default_baseline)


def _optional_match(value: str | None, pattern: str) -> bool:
    if value is None:
        return pattern == "*"
    return fnmatchcase(value, pattern)


# -- reading ------------------------------------------------------------------------------------


def parse_policy(data: Any, *, source: str = "<policy>") -> GatePolicy:
    """Validate already-parsed policy data (a mapping); errors are :class:`PolicyError`."""
    return validate_document(
        GatePolicy,
        data,
        source=source,
        error=PolicyError,
        expected="fail_on_status, rules and baseline",
    )


def load_policy(path: str | Path) -> GatePolicy:
    """Read and validate a YAML (or JSON) gate policy file (size and YAML aliases bounded)."""
    path = Path(path)
    text = read_document_text(path, error=PolicyError, what="policy")
    data = load_yaml_document(text, source=str(path), error=PolicyError)
    return parse_policy(data, source=str(path))
