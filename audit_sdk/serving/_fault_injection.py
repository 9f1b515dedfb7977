"""Test-only fault injection for the OpenAI-compatible server: the ``--fault`` specs and the
plan they build (the table of faults is in :mod:`audit_sdk.serving.openai_server`).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit_sdk.errors import ConfigError


@dataclass
class FaultPlan:
    """Injected faults (tests only); see the module docstring."""

    rate_limit: int = 0
    retry_after_s: float = 0.0
    error500: int = 0
    slow_s: float = 0.0
    malformed: bool = False
    missing_fields: bool = False
    non_utf8: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.rate_limit
            or self.error500
            or self.slow_s
            or self.malformed
            or self.missing_fields
            or self.non_utf8
        )


def parse_fault(spec: str, plan: FaultPlan | None = None) -> FaultPlan:
    """Add one ``--fault`` spec (``rate_limit:3``, ``slow:0.5``, ``malformed``...) to ``plan``."""
    plan = plan if plan is not None else FaultPlan()
    name, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    try:
        if name == "rate_limit" and 1 <= len(args) <= 2:
            plan.rate_limit = int(args[0])
            plan.retry_after_s = float(args[1]) if len(args) == 2 else 0.0
        elif name == "error500" and len(args) == 1:
            plan.error500 = int(args[0])
        elif name == "slow" and len(args) == 1:
            plan.slow_s = float(args[0])
        elif name in ("malformed", "missing_fields", "non_utf8") and not args:
            setattr(plan, name, True)
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"unknown fault {spec!r}; use rate_limit:N[:SECONDS], error500:N, slow:SECONDS, "
            f"malformed, missing_fields or non_utf8."
        ) from None
    return plan
