"""The causal bias detector: doubly-robust effect of genre and country exposure on quality.

"Rap listeners get worse profiles" can mean the model handles rap badly, or that rap listeners
differ in other ways (age, activity, taste breadth) that also drive quality. Following
Sguerra et al. 2025 ("Biases in LLM-Generated Musical Taste Profiles for Recommendation",
RecSys '25, arXiv 2507.16708), this detector estimates, for every genre and artist country,
the doubly-robust average treatment effect of being a heavy listener of it on a per-user (or
per-profile) quality metric, adjusting for user covariates; corrects for testing many levels
at once (Benjamini-Hochberg) and reports false-coverage-rate adjusted intervals for the
significant ones (Benjamini & Yekutieli 2005). The naive difference in means sits beside every
estimate so a reader sees what the adjustment changed (cluster-robust when a user contributes
several units).

A number is only as good as its overlap: a level whose propensities were clipped for more
than ``max_clipped_share`` of the units (or, for ``binarization: continuous``, whose share the
covariates predict almost exactly), or whose estimate is larger than the outcome's range
allows, is *untrusted*: it is shown with the reason but never decides a pass, and the finding
is at least ``warn``.

One finding per (family, outcome), drawn as a forest plot: one row per level. When the profiles
hold several generators (a ``model`` column with several values) a profiles outcome is
estimated per generator, never pooled: one finding each, its headline naming the generator,
and ``ate:<outcome>:difference`` compares them level by level on the same users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import Detector, MetricSpec, PluginParams
from audit_sdk.report_model import Finding
from audit_sdk.stats.aipw import AIPWResult, estimate_ates
from audit_sdk.stats.partially_linear import estimate_partially_linear
from audit_sdk.thresholds import Threshold

from ._causal_comparison import GeneratorEstimate, generator_comparison
from ._causal_findings import REFERENCE, _metric, effects_finding
from ._causal_treatments import (
    COVARIATES,
    Binarization,
    CausalDesign,
    DesignError,
    Family,
    build_design,
)
from ._causal_trust import untrusted_levels

if TYPE_CHECKING:
    from audit_sdk.hookspecs import RegisterDetector
    from audit_sdk.interfaces import AuditContext

__all__ = ["CausalEffectsDetector", "CausalEffectsParams"]

_FAMILIES: tuple[Family, ...] = ("genre", "country")


class CausalEffectsParams(PluginParams):
    """Parameters of the ``causal_effects`` detector."""

    families: list[Family] = Field(
        default_factory=lambda: list(_FAMILIES), description="treatment families"
    )
    outcomes: list[str] | None = Field(
        None,
        description="user_table or profiles columns; default: ndcg@k and, if profiles carry "
        "one, rating",
    )
    binarization: Binarization = Field(
        "median",
        description="'median': share above the level's median among its listeners (the "
        "exposed); 'median_all': above the median over all units; 'threshold': above "
        "params.threshold; 'top_k': the level is among the user's k largest shares; "
        "'continuous': the share itself (partially linear double ML, effect per unit share)",
    )
    k: int = Field(3, ge=1, description="k for binarization 'top_k'")
    threshold: float | None = Field(
        None, ge=0, le=1, description="share cut-off for binarization 'threshold'"
    )
    covariates: list[str] = Field(
        default_factory=lambda: [str(c) for c in COVARIATES],
        description=f"built-in covariates ({', '.join(COVARIATES)}) and/or columns of the users "
        "or user table; shell patterns such as 'longterm_share:*' take every matching column",
    )
    outcome_range: tuple[float, float] | None = Field(
        None,
        description="the outcome's possible range (e.g. [1, 7] for a rating); an estimate "
        "larger than its width is implausible. Default: the observed min and max",
    )
    max_r2: float = Field(
        0.95,
        gt=0,
        le=1,
        description="continuous treatments: overlap fails when the covariates explain more "
        "than this share of the treatment's variance",
    )
    per_generator: bool = Field(
        True,
        description="profiles holding several generators (column 'model'): one estimate per "
        "generator (never pooled)",
    )
    per_window: bool = Field(
        False,
        description="one estimate per profile window too (label generator|window), compared "
        "like generators; default: the window is a covariate of profile units",
    )
    unit: Literal["user", "profile"] = Field(
        "user",
        description="for a profiles outcome: average per user, or one unit per profile row "
        "(window as covariate, folds and SEs clustered by user)",
    )
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds")
    clip: tuple[float, float] = Field((0.01, 0.99), description="propensity clipping range")
    outcome_model: Literal["ridge", "gradient_boosting"] = "ridge"
    outcome_form: Literal["separate", "joint"] = Field(
        "separate", description="'separate': mu0, mu1 per arm; 'joint': one model on [W, T]"
    )
    ridge_alpha: float = Field(1.0, gt=0)
    propensity_C: float = Field(1.0, gt=0, description="inverse L2 strength of the propensity")
    min_units_per_arm: int | None = Field(
        None,
        ge=2,
        description="skip a level with fewer treated or control units "
        "(default: the audit's min_group_size)",
    )
    max_clipped_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="overlap fails (the level is untrusted, the finding at least 'warn') when "
        "more units than this share have a clipped propensity",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="FDR level q (Benjamini-Hochberg)")
    bootstrap: int = Field(0, ge=0, description="percentile bootstrap resamples (0: off)")
    max_treatments: int = Field(20, ge=1, description="levels tested, most common first")
    max_share_covariates: int = Field(10, ge=0, description="other levels' shares as covariates")
    estimator: Literal["aipw", "econml"] = Field(
        "aipw", description="'aipw': the fast path; 'econml': econml's DRLearner (reference)"
    )
    n_jobs: int = Field(1, description="treatments fitted in parallel threads")

    @field_validator("clip")
    @classmethod
    def _valid_clip(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] < value[1] < 1.0:
            raise ValueError("clip must satisfy 0 < low < high < 1")
        return value

    @field_validator("outcome_range")
    @classmethod
    def _valid_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError("outcome_range must be [low, high] with low < high")
        return value

    @model_validator(mode="after")
    def _threshold_given(self) -> CausalEffectsParams:
        if self.binarization == "threshold" and self.threshold is None:
            raise ValueError("binarization 'threshold' needs params.threshold (e.g. 0.2)")
        if self.binarization == "continuous" and self.estimator == "econml":
            raise ValueError("estimator 'econml' (DRLearner) estimates binary treatments only")
        return self


class CausalEffectsDetector(Detector):
    name: ClassVar[str] = "causal_effects"
    description: ClassVar[str] = (
        "Doubly-robust (AIPW) effect of genre and country exposure on per-user quality, "
        "with FDR control across levels."
    )
    Params = CausalEffectsParams
    # Gate on evidence of harm: ci_high is the favourable end of the worst level's interval.
    # Units are the outcome's; -0.05 suits metrics on [0, 1] such as ndcg@10.
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("ate:*", "closer_to_zero", description="average effect of a genre or country"),
    )
    default_thresholds: ClassVar[dict[str, Threshold]] = {
        "ate:*": Threshold(statistic="ci_high", warn_below=0.0, fail_below=-0.05)
    }

    def detect(self, context: AuditContext) -> list[Finding]:
        params = self.params
        assert isinstance(params, CausalEffectsParams)
        outcomes = params.outcomes or _default_outcomes(context)
        if not outcomes:
            return [
                self._skipped(
                    context,
                    "outcome",
                    None,
                    "no outcome to explain: the user table has no metric column and the "
                    "profiles have no 'rating'; set params.outcomes",
                )
            ]
        findings = []
        for family in params.families:
            for outcome in outcomes:
                estimates: list[GeneratorEstimate] = []
                for generator, profiles in _generators(context, params, outcome):
                    finding = self._one(
                        context, params, family, outcome, generator, profiles, estimates
                    )
                    findings.append(finding.model_copy(update={"generator": generator}))
                if len(estimates) > 1:
                    findings.append(
                        generator_comparison(
                            context,
                            detector=self.name,
                            family=family,
                            outcome=outcome,
                            estimates=estimates,
                            fdr_q=params.alpha,
                            reference=REFERENCE,
                        )
                    )
        return findings

    # -----------------------------------------------------------------------------------------

    def _one(
        self,
        context: AuditContext,
        params: CausalEffectsParams,
        family: Family,
        outcome: str,
        generator: str | None,
        profiles: pd.DataFrame | None,
        estimates: list[GeneratorEstimate],
    ) -> Finding:
        """One (family, outcome, generator) finding; a generator's estimate with its influence
        values is appended to ``estimates`` for the comparison."""
        metric = _metric(outcome)
        try:
            design = build_design(
                context,
                family=family,
                outcome=outcome,
                binarization=params.binarization,
                k=params.k,
                threshold=params.threshold,
                covariates=params.covariates,
                unit=params.unit,
                max_treatments=params.max_treatments,
                max_share_covariates=params.max_share_covariates,
                profiles=profiles,
            )
        except DesignError as exc:
            return self._skipped(context, metric, family, str(exc), outcome=outcome)
        min_units = params.min_units_per_arm or context.min_group_size
        salt = f"{self.name}:{family}:{outcome}" + (f":{generator}" if generator else "")
        seed = int(context.rng(salt).integers(2**31 - 1))
        influence: list[np.ndarray] = []
        if params.binarization == "continuous":
            results = estimate_partially_linear(
                design.y,
                design.treatments.to_numpy(dtype=float),
                design.covariates,
                treatment_names=list(design.treatments.columns),
                folds=params.folds,
                groups=design.groups,
                seed=seed,
                model=_regressor(params, seed),
                ridge_alpha=params.ridge_alpha,
                min_units=min_units,
                max_r2=params.max_r2,
                confidence=context.bootstrap.confidence,
                fdr_q=params.alpha,
                influence_out=influence,
            )
            method = "cross-fitted partially linear DML"
            _keep(estimates, generator, results, influence, design, params)
            return effects_finding(self, context, params, design, results, method, generator)
        options: dict[str, Any] = {
            "treatment_names": list(design.treatments.columns),
            "folds": params.folds,
            "seed": seed,
            "clip": params.clip,
            "propensity_C": params.propensity_C,
            "outcome_model": params.outcome_model,
            "ridge_alpha": params.ridge_alpha,
            "min_units_per_arm": min_units,
            "max_clipped_share": params.max_clipped_share,
            "bootstrap": params.bootstrap,
            "confidence": context.bootstrap.confidence,
            "fdr_q": params.alpha,
        }
        if params.estimator == "econml":
            if design.groups is not None:
                return self._skipped(
                    context,
                    metric,
                    family,
                    "estimator 'econml' needs one row per user; use unit 'user'",
                    outcome=outcome,
                )
            from audit_sdk.stats.drlearner_reference import estimate_ates_econml

            results = estimate_ates_econml(
                design.y, design.treatments.to_numpy(), design.covariates, **options
            )
            method = "econml DRLearner"
        else:
            results = estimate_ates(
                design.y,
                design.treatments.to_numpy(),
                design.covariates,
                groups=design.groups,
                outcome_form=params.outcome_form,
                n_jobs=params.n_jobs,
                influence_out=influence,
                **options,
            )
            method = "cross-fitted AIPW"
            _keep(estimates, generator, results, influence, design, params)
        return effects_finding(self, context, params, design, results, method, generator)

    def _skipped(
        self,
        context: AuditContext,
        metric: str,
        family: str | None,
        reason: str,
        *,
        outcome: str | None = None,
    ) -> Finding:
        base = f"ate:{outcome}" if outcome is not None else metric
        return Finding(
            detector=self.name,
            metric=metric,
            group_by=family,
            subject=context.subject.name,
            threshold=self.threshold_for(base),
            status="skipped",
            explanation=f"skipped: {reason}",
            chart="forest",
            reference=REFERENCE,
        )


def _keep(
    estimates: list[GeneratorEstimate],
    generator: str | None,
    results: list[AIPWResult],
    influence: list[np.ndarray],
    design: CausalDesign,
    params: CausalEffectsParams,
) -> None:
    if generator is None or not influence:
        return
    estimates.append(
        GeneratorEstimate(
            generator=generator,
            results=results,
            influence=influence[0],
            users=design.units["user_id"].astype(str).to_numpy(),
            untrusted=frozenset(
                untrusted_levels(
                    results,
                    design,
                    continuous=params.binarization == "continuous",
                    declared_range=params.outcome_range,
                )
            ),
        )
    )


def _generators(
    context: AuditContext, params: CausalEffectsParams, outcome: str
) -> list[tuple[str | None, pd.DataFrame | None]]:
    """(label, its profiles) to estimate separately: one per generator (and, with
    ``per_window``, per window: ``gpt-x, window 30d``); one ``(None, all)`` when the outcome is
    not a profiles column or there is nothing to split."""
    profiles = context.subject.profiles
    if profiles is None or outcome in context.user_table.columns or outcome not in profiles.columns:
        return [(None, profiles)]
    keys: list[str] = []
    if params.per_generator and "model" in profiles.columns:
        keys.append("model")
    if params.per_window and "window" in profiles.columns:
        keys.append("window")
    keys = [k for k in keys if profiles[k].dropna().astype(str).nunique() > 1]
    if not keys:
        return [(None, profiles)]
    parts = [
        profiles[k].astype(str) if k == "model" else "window " + profiles[k].astype(str)
        for k in keys
    ]
    labels = parts[0] if len(parts) == 1 else parts[0] + ", " + parts[1]
    return [
        (label, profiles.loc[labels == label].reset_index(drop=True))
        for label in sorted(labels.unique())
    ]


def _regressor(params: CausalEffectsParams, seed: int) -> Any:
    if params.outcome_model == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(random_state=seed)
    return None  # Ridge(alpha=params.ridge_alpha)


def _default_outcomes(context: AuditContext) -> list[str]:
    outcomes = []
    preferred = f"ndcg@{context.k}"
    if preferred in context.user_table.columns:
        outcomes.append(preferred)
    else:
        ndcg = [c for c in context.metric_columns if str(c).startswith("ndcg")]
        outcomes.extend(ndcg[:1] or context.metric_columns[:1])
    profiles = context.subject.profiles
    if profiles is not None and "rating" in profiles.columns:
        outcomes.append("rating")
    return outcomes


@hookimpl
def audit_sdk_register_detectors(register: RegisterDetector) -> None:
    register(CausalEffectsDetector)
