"""What the gate returns: the violations it found, the verdict and its exit code, and the
small formatting helpers its messages share (re-exported by :mod:`audit_sdk.gate`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from audit_sdk._gate_policy import Severity
from audit_sdk.errors import ExitCode


@dataclass(frozen=True)
class Violation:
    """One check that did not hold."""

    finding: str
    rule: str
    statistic: str | None
    value: float | None
    limit: float | None
    reason: str
    severity: Severity = "fail"
    subject: str | None = None
    group: str | None = None

    @property
    def label(self) -> str:
        text = self.finding
        if self.group is not None:
            text += f" [group {self.group}]"
        if self.subject:
            text += f" ({self.subject})"
        return text


@dataclass
class GateResult:
    violations: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    checked: int = 0
    notes: list[str] = field(default_factory=list)
    evaluated: int | None = None  # findings whose status is not skipped (None: not counted)
    allow_empty: bool = False

    @property
    def nothing_checked(self) -> bool:
        """No finding was evaluated: the report has none, or only skipped ones."""
        return self.evaluated == 0

    @property
    def exit_code(self) -> int:
        """1 for a violation; 4 when nothing was checked (unless ``allow_empty``); else 0."""
        if self.violations:
            return int(ExitCode.VIOLATION)
        if self.nothing_checked and not self.allow_empty:
            return int(ExitCode.NOTHING_CHECKED)
        return int(ExitCode.OK)

    @property
    def passed(self) -> bool:
        return self.exit_code == ExitCode.OK

    def add(self, violation: Violation) -> None:
        (self.violations if violation.severity == "fail" else self.warnings).append(violation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "checked": self.checked,
            "evaluated": self.evaluated,
            "violations": [asdict(v) for v in self.violations],
            "warnings": [asdict(v) for v in self.warnings],
            "notes": list(self.notes),
        }


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
