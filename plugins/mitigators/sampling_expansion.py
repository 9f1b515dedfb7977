"""Sampling expansion: re-write generalists' profiles from larger, more diverse samples.

The policy (budget ``n(u) = min(n_max, ceil(n0 (tau / GS(u))^gamma))`` below the GS threshold
``tau``, two-step or diversity-aware selection) is
:mod:`audit_sdk.profile_sampling_policies`; its sources are cited there (Sguerra et al.,
RecSys 2025, arXiv 2507.16708; PersonaX, arXiv 2503.02398; MMR, Carbonell & Goldstein 1998).

The mitigator returns that policy as a new :class:`~audit_sdk.interfaces.ProfileSampler`;
the pipeline re-runs the profile stage through the same generators, generation service and
SQLite cache, so a user at or above the threshold (or without a GS-score) renders the very same
prompt, whose profile comes back from the cache (or the service's de-duplication) instead of
being generated again; only the expanded users' profiles are new. Every detector then runs on
the mitigated subject; the ``sampling_expansion_effect`` detector pairs each user's profiles
before and after (per GS quintile, with CIs over users) and, with ``diagnosis_n``, says whether
generalists are held back by their sample or by the generator's summarising.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import Field, model_validator

from audit_sdk.errors import AuditSDKError, ConfigError
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import AuditContext, MitigationResult, Mitigator, PluginParams
from audit_sdk.interfaces.requirements import Needs, Requirement
from audit_sdk.profile_sampling_policies import ExpandedSampler, ExpansionPolicy, plan_budgets

__all__ = ["SamplingExpansion", "SamplingExpansionParams"]


class SamplingExpansionParams(PluginParams):
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="GS threshold tau in [0, 1]: users below it get larger samples (default: "
        "the median GS-score of the profiled users)",
    )
    n0: int = Field(15, ge=1, description="baseline sample size the budget grows from")
    gamma: float = Field(1.0, gt=0.0, description="how fast the budget grows as GS falls")
    n_max: int = Field(45, ge=1, description="largest sample (n_max >= n0)")
    selector: Literal["two_step", "diverse"] = Field(
        "two_step",
        description="two_step: the study's sampler with more artists; diverse: genre-stratified "
        "allocation with greedy MMR (PersonaX-style)",
    )
    mmr_lambda: float = Field(0.7, ge=0.0, le=1.0, description="diverse: relevance weight")
    diagnosis_n: int | None = Field(
        None,
        ge=1,
        description="the study's diagnosis instead of the policy: every user below the "
        "threshold gets exactly this many pairs (30), same generator and selector",
    )
    windows: list[str] | None = Field(
        None, description="window labels to expand (e.g. ['365d']); default: every window"
    )
    feature: str = Field("gs_score", description="the user feature holding the GS-score")

    @model_validator(mode="after")
    def _budget_grows(self) -> SamplingExpansionParams:
        if self.n_max < self.n0:
            raise ValueError(
                f"n_max ({self.n_max}) is below n0 ({self.n0}): the budget only grows from n0, "
                "so set n_max >= n0"
            )
        return self

    def policy(self) -> ExpansionPolicy:
        return ExpansionPolicy(
            threshold=self.threshold,
            n0=self.n0,
            gamma=self.gamma,
            n_max=self.n_max,
            selector=self.selector,
            mmr_lambda=self.mmr_lambda,
            fixed_n=self.diagnosis_n,
        )


class SamplingExpansion(Mitigator):
    name = "sampling_expansion"
    description = "Larger, more diverse profile samples for generalists (low GS-score)."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.PROFILES})
    Params = SamplingExpansionParams

    def mitigate(self, context: AuditContext) -> MitigationResult:
        params: SamplingExpansionParams = self.params  # type: ignore[assignment]
        policy = params.policy()
        profiles = context.subject.profiles
        assert profiles is not None
        users = sorted(pd.unique(profiles["user_id"].astype(str)))
        gs = self._gs(context, params.feature)
        plan = plan_budgets(gs, users, policy)
        if params.windows is not None and context.samples is not None:
            known = sorted(context.samples["window"].astype(str).unique())
            unknown = sorted(set(params.windows) - set(known))
            if unknown:
                raise ConfigError(
                    f"mitigator sampling_expansion: params.windows names {unknown[0]!r}, which "
                    f"is not a profile window of this audit (windows: {', '.join(known)})"
                )
        sampler = ExpandedSampler(plan.budgets, policy, windows=params.windows)
        mode = "diagnosis" if params.diagnosis_n is not None else "policy"
        details: dict[str, Any] = {
            "mode": mode,
            "selector": policy.selector,
            "n0": policy.n0,
            "gamma": policy.gamma,
            "n_max": policy.n_max,
            "diagnosis_n": params.diagnosis_n,
            "windows": params.windows,
            **plan.describe(),
            "notes": plan.notes(),
        }
        if mode == "diagnosis":
            summary = (
                f"diagnosis: the {len(plan.budgets)} users below GS {plan.tau:.3g} re-profiled "
                f"from {params.diagnosis_n} pairs instead of {policy.n0} (same generator)"
            )
        else:
            summary = (
                f"{len(plan.budgets)} users below GS {plan.tau:.3g} re-profiled from up to "
                f"{policy.n_max} pairs ({policy.selector}); {plan.unchanged} keep their sample"
            )
        if plan.without_gs:
            summary += f"; {len(plan.without_gs)} without a GS-score left as they were"
        # two expansions in one audit (a policy and its diagnosis, two selectors) keep apart
        variant = [f"n={params.diagnosis_n}"] if mode == "diagnosis" else []
        variant += [policy.selector] if policy.selector != "two_step" else []
        name = (
            f"{context.subject.name}+sampling_expansion({', '.join(variant)})" if variant else None
        )
        return MitigationResult(summary=summary, sampler=sampler, details=details, name=name)

    @staticmethod
    def _gs(context: AuditContext, feature: str) -> pd.Series:
        if "gs_score" in context.user_table.columns:
            return context.user_table["gs_score"]
        if feature not in context.features.names():
            raise AuditSDKError(
                f"mitigator sampling_expansion: no GS-score feature {feature!r} (available: "
                f"{', '.join(context.features.names())}); install audit-sdk's built-in features "
                "or set params.feature"
            )
        gs = context.features.get(feature)
        if isinstance(gs, pd.DataFrame):
            raise AuditSDKError(
                f"mitigator sampling_expansion: feature {feature!r} is a table, not one "
                "GS-score per user; set params.feature"
            )
        return gs


@hookimpl
def audit_sdk_register_mitigators(register: Any) -> None:
    register(SamplingExpansion)
