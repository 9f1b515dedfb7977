"""The causal bias detector: doubly-robust effect of genre and country exposure on quality.

"Rap listeners get worse profiles" can mean the model handles rap badly, or that rap listeners
differ in other ways (age, activity, taste breadth) that also drive quality. Following
Sguerra et al. 2025 ("Biases in LLM-Generated Musical Taste Profiles for Recommendation",
RecSys '25, arXiv 2507.16708), this detector estimates, for every genre and artist country,
the doubly-robust average treatment effect of being a heavy listener of it on a per-user (or
per-profile) quality metric, adjusting for user covariates; corrects for testing many levels
at once (Benjamini-Hochberg) and reports false-coverage-rate adjusted intervals for the
significant ones (Benjamini & Yekutieli 2005). The naive difference in means sits beside every
estimate so a reader sees what the adjustment changed.

One finding per (family, outcome), drawn as a forest plot: one row per level.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import Detector, PluginParams
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.aipw import AIPWResult, estimate_ates
from audit_sdk.thresholds import Threshold, evaluate_threshold

from ._causal_treatments import (
    COVARIATES,
    Binarization,
    CausalDesign,
    CovariateName,
    DesignError,
    Family,
    build_design,
)

if TYPE_CHECKING:
    from audit_sdk.hookspecs import RegisterDetector
    from audit_sdk.interfaces import AuditContext

__all__ = ["CausalEffectsDetector", "CausalEffectsParams"]

REFERENCE = (
    "Doubly-robust AIPW ATE (Robins, Rotnitzky & Zhao 1994, JASA 89:846), cross-fitted "
    "(Chernozhukov et al. 2018, Econometrics J. 21:C1, Section 5.1, eq. 5.3; SE from the "
    "influence function); Benjamini-Hochberg 1995 FDR across levels; FCR-adjusted intervals at "
    "level 1 - Rq/m (Benjamini & Yekutieli 2005, JASA 100:71); design after Sguerra et al. 2025, "
    "RecSys '25 (arXiv 2507.16708)."
)


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
        description="'median': share above the level's median among its listeners; "
        "'top_k': the level is among the user's k largest shares",
    )
    k: int = Field(3, ge=1, description="k for binarization 'top_k'")
    covariates: list[CovariateName] = Field(default_factory=lambda: list(COVARIATES))
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
    max_clipped_share: float = Field(0.05, ge=0, le=1, description="positivity warning level")
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


class CausalEffectsDetector(Detector):
    name: ClassVar[str] = "causal_effects"
    description: ClassVar[str] = (
        "Doubly-robust (AIPW) effect of genre and country exposure on per-user quality, "
        "with FDR control across levels."
    )
    Params = CausalEffectsParams
    # Gate on evidence of harm: ci_high is the favourable end of the worst level's interval.
    # Units are the outcome's; -0.05 suits metrics on [0, 1] such as ndcg@10.
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
                findings.append(self._one(context, params, family, outcome))
        return findings

    # -----------------------------------------------------------------------------------------

    def _one(
        self, context: AuditContext, params: CausalEffectsParams, family: Family, outcome: str
    ) -> Finding:
        try:
            design = build_design(
                context,
                family=family,
                outcome=outcome,
                binarization=params.binarization,
                k=params.k,
                covariates=params.covariates,
                unit=params.unit,
                max_treatments=params.max_treatments,
                max_share_covariates=params.max_share_covariates,
            )
        except DesignError as exc:
            return self._skipped(context, f"ate:{outcome}", family, str(exc))
        min_units = params.min_units_per_arm or context.min_group_size
        seed = int(context.rng(f"{self.name}:{family}:{outcome}").integers(2**31 - 1))
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
                    f"ate:{outcome}",
                    family,
                    "estimator 'econml' needs one row per user; use unit 'user'",
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
                **options,
            )
            method = "cross-fitted AIPW"
        return self._finding(context, params, design, results, method)

    def _finding(
        self,
        context: AuditContext,
        params: CausalEffectsParams,
        design: CausalDesign,
        results: list[AIPWResult],
        method: str,
    ) -> Finding:
        metric = f"ate:{design.outcome}"
        noun = {"genre": "genres", "country": "artist countries"}[design.family]
        rows = [_row(r) for r in results]
        estimated = [r for r in results if r.estimated]
        warnings: list[str] = []
        for r in results:
            if r.skipped:
                warnings.append(f"{r.treatment}: skipped, {r.skipped}")
            warnings.extend(f"{r.treatment}: {w}" for w in r.warnings)
        details = {
            "estimator": method,
            "unit": design.unit,
            "share_source": design.share_source,
            "binarization": params.binarization
            + (f" (k={params.k})" if params.binarization == "top_k" else ""),
            "covariates": design.covariate_names,
            "folds": params.folds,
            "clip": list(params.clip),
            "outcome_model": f"{params.outcome_model} ({params.outcome_form})",
            "propensity_model": f"LogisticRegression(C={params.propensity_C:g})",
            "fdr_q": params.alpha,
            "notes": design.notes,
        }
        threshold = self.threshold_for(metric)
        if not estimated:
            return Finding(
                detector=self.name,
                metric=metric,
                group_by=design.family,
                subject=context.subject.name,
                n=len(design.y),
                groups=rows,
                threshold=threshold,
                status="skipped",
                explanation=f"none of {len(results)} {noun} could be estimated for "
                f"{design.outcome} (see warnings)",
                warnings=warnings,
                chart="forest",
                reference=REFERENCE,
                details=details,
            )
        worst_overlap = max(estimated, key=lambda r: r.overlap.share_clipped if r.overlap else 0)
        if worst_overlap.overlap is not None:
            details["histogram"] = worst_overlap.overlap.histogram()
            details["histogram_treatment"] = worst_overlap.treatment
        significant = [r for r in estimated if r.significant]
        harmful = [r for r in significant if r.ate is not None and r.ate < 0]
        worst = min(harmful or estimated, key=lambda r: r.ate if r.ate is not None else math.inf)
        level = worst.fcr_level
        shown = (
            f"{worst.treatment} {worst.ate:+.3g} [{worst.fcr_ci_low:.3g}, {worst.fcr_ci_high:.3g}]"
        )
        if harmful:
            explanation = (
                f"{len(significant)} of {len(estimated)} {noun} change {design.outcome} "
                f"significantly after FDR control (q={params.alpha:g}); most harmful: {shown} "
                "(FCR-adjusted)"
            )
            ci_method = (
                f"{method}; FCR-adjusted interval (Benjamini-Yekutieli) at level {level:.4f}"
            )
        else:
            if significant:
                head = (
                    f"{len(significant)} of {len(estimated)} {noun} change {design.outcome} "
                    f"significantly after FDR control (q={params.alpha:g}), none for the worse"
                )
            else:
                head = (
                    f"none of {len(estimated)} {noun} changes {design.outcome} significantly "
                    f"after FDR control (q={params.alpha:g})"
                )
            status_note = "significant" if worst.significant else "not significant"
            explanation = f"{head}; most negative: {shown} ({status_note}, adjusted interval)"
            ci_method = (
                f"{method}; interval at the FCR level {level:.4f} "
                "(Bonferroni when nothing is selected)"
            )
        skipped = len(results) - len(estimated)
        if skipped:
            explanation += f"; {skipped} skipped"
        details["n_tested"] = len(estimated)
        details["n_significant"] = len(significant)
        details["row_confidence"] = context.bootstrap.confidence  # marginal CIs of the rows
        return Finding(
            detector=self.name,
            metric=metric,
            estimate=worst.ate,
            ci_low=worst.fcr_ci_low,
            ci_high=worst.fcr_ci_high,
            confidence=level if level is not None else 0.95,
            ci_method=ci_method,
            n=len(design.y),
            groups=rows,
            group_by=design.family,
            subject=context.subject.name,
            threshold=threshold,
            status=evaluate_threshold(threshold, worst.ate, worst.fcr_ci_low, worst.fcr_ci_high),
            explanation=explanation,
            warnings=warnings,
            chart="forest",
            reference=REFERENCE,
            details=details,
        )

    def _skipped(
        self, context: AuditContext, metric: str, family: str | None, reason: str
    ) -> Finding:
        return Finding(
            detector=self.name,
            metric=metric,
            group_by=family,
            subject=context.subject.name,
            threshold=self.threshold_for(metric),
            status="skipped",
            explanation=f"skipped: {reason}",
            chart="forest",
            reference=REFERENCE,
        )


def _row(result: AIPWResult) -> GroupEstimate:
    overlap = result.overlap
    extra: dict[str, float | int | str | bool | None] = {
        "n_treated": result.n_treated,
        "n_control": result.n_control,
        "naive_diff": result.naive_diff,
        "naive_ci_low": result.naive_ci_low,
        "naive_ci_high": result.naive_ci_high,
        "se": result.se,
        "p": result.p_value,
        "q": result.q_value,
        "fcr_ci_low": result.fcr_ci_low,
        "fcr_ci_high": result.fcr_ci_high,
        "share_clipped": overlap.share_clipped if overlap else None,
    }
    warning = None
    if result.skipped:
        warning = f"skipped: {result.skipped}"
    elif result.warnings:
        warning = "; ".join(result.warnings)
    return GroupEstimate(
        group=result.treatment,
        n=result.n_treated + result.n_control,
        estimate=result.ate,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        warning=warning,
        significant=result.significant,
        extra=extra,
    )


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
