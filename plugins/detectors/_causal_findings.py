"""How the causal effects detector turns its estimates into a finding: the references it
cites, the metric name, the verdict on the worst trusted level and the explanation beside it
(used by :mod:`audit_sdk.plugins.detectors.causal_effects`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from audit_sdk.report_model import Finding
from audit_sdk.stats.aipw import AIPWResult
from audit_sdk.thresholds import evaluate_threshold

from ._causal_treatments import CausalDesign
from ._causal_trust import outcome_range, result_row, untrusted_levels

if TYPE_CHECKING:
    from audit_sdk.interfaces import AuditContext, Detector

    from .causal_effects import CausalEffectsParams

REFERENCE = (
    "Doubly-robust AIPW ATE (Robins, Rotnitzky & Zhao 1994, JASA 89:846), cross-fitted "
    "(Chernozhukov et al. 2018, Econometrics J. 21:C1, Section 5.1, eq. 5.3; SE from the "
    "influence function); Benjamini-Hochberg 1995 FDR across levels; FCR-adjusted intervals at "
    "level 1 - Rq/m (Benjamini & Yekutieli 2005, JASA 100:71); design after Sguerra et al. 2025, "
    "RecSys '25 (arXiv 2507.16708)."
)


REFERENCE_PLR = (
    "Partially linear double ML, cross-fitted partialling-out estimator (Chernozhukov et al. "
    "2018, Econometrics J. 21:C1, Section 4.1, score eq. 4.4; Robinson 1988); Benjamini-"
    "Hochberg 1995 FDR across levels; FCR-adjusted intervals (Benjamini & Yekutieli 2005)."
)


def _metric(outcome: str) -> str:
    return f"ate:{outcome}"


def effects_finding(
    detector: Detector,
    context: AuditContext,
    params: CausalEffectsParams,
    design: CausalDesign,
    results: list[AIPWResult],
    method: str,
    generator: str | None,
) -> Finding:
    """The finding of one (family, outcome, generator) estimate: its status, headline,
    per-level rows, warnings and details (``detector`` supplies the name and threshold)."""
    base_metric = f"ate:{design.outcome}"
    metric = _metric(design.outcome)
    noun = {"genre": "genres", "country": "artist countries"}[design.family]
    continuous = params.binarization == "continuous"
    untrusted = untrusted_levels(
        results, design, continuous=continuous, declared_range=params.outcome_range
    )
    rows = [result_row(r, untrusted.get(r.treatment)) for r in results]
    estimated = [r for r in results if r.estimated]
    trusted = [r for r in estimated if r.treatment not in untrusted]
    warnings: list[str] = []
    for r in results:
        if r.skipped:
            warnings.append(f"{r.treatment}: skipped, {r.skipped}")
        warnings.extend(f"{r.treatment}: {w}" for w in r.warnings)
    warnings.extend(
        f"{name}: untrusted, {reason}"
        for name, reason in untrusted.items()
        if not reason.startswith(("positivity", "overlap"))
    )
    binarization = params.binarization + {
        "top_k": f" (k={params.k})",
        "threshold": f" (share > {params.threshold})",
    }.get(params.binarization, "")
    details: dict[str, Any] = {
        "estimator": method,
        "unit": design.unit,
        "share_source": design.share_source,
        "binarization": binarization,
        "effect_unit": "per unit of share (0 to 1)" if continuous else "treated - control",
        "covariates": design.covariate_names,
        "folds": params.folds,
        "outcome_model": f"{params.outcome_model} ({params.outcome_form})",
        "fdr_q": params.alpha,
        "significance": f"Significant (BH, q={params.alpha:g})",
        "outcome_range": list(outcome_range(design, params.outcome_range)),
        "n_untrusted": len(untrusted),
        "untrusted": dict(untrusted),
        "notes": design.notes,
    }
    if not continuous:
        details["clip"] = list(params.clip)
        details["propensity_model"] = f"LogisticRegression(C={params.propensity_C:g})"
    if generator is not None:
        details["generator"] = generator
    prefix = ""
    if generator is not None:
        prefix = (
            f"{generator}: " if generator.startswith("window ") else (f"generator {generator}: ")
        )
    threshold = detector.threshold_for(base_metric)
    common: dict[str, Any] = {
        "detector": detector.name,
        "metric": metric,
        "group_by": design.family,
        "subject": context.subject.name,
        "n": len(design.y),
        "groups": rows,
        "threshold": threshold,
        "warnings": warnings,
        "chart": "forest",
        "reference": REFERENCE_PLR if continuous else REFERENCE,
        "details": details,
    }
    if not estimated:
        return Finding(
            status="skipped",
            explanation=f"{prefix}none of {len(results)} {noun} could be estimated for "
            f"{design.outcome} (see warnings)",
            **common,
        )
    worst_overlap = max(estimated, key=lambda r: r.overlap.share_clipped if r.overlap else 0)
    if worst_overlap.overlap is not None:
        details["histogram"] = worst_overlap.overlap.histogram()
        details["histogram_treatment"] = worst_overlap.treatment
    details["n_tested"] = len(estimated)
    details["row_confidence"] = context.bootstrap.confidence  # marginal CIs of the rows
    if not trusted:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(untrusted.items())[:3])
        return Finding(
            status="warn",
            explanation=f"{prefix}no trustworthy estimate: all {len(estimated)} {noun} "
            f"estimated for {design.outcome} fail the overlap or range check ({reasons})",
            **common,
        )
    significant = [r for r in trusted if r.significant]
    harmful = [r for r in significant if r.ate is not None and r.ate < 0]
    worst = min(harmful or trusted, key=lambda r: r.ate if r.ate is not None else math.inf)
    level = worst.fcr_level
    shown = f"{worst.treatment} {worst.ate:+.3g} [{worst.fcr_ci_low:.3g}, {worst.fcr_ci_high:.3g}]"
    level_text = f"{level:.1%}" if level is not None else "?"
    if harmful:
        explanation = (
            f"{prefix}{len(significant)} of {len(trusted)} {noun} change {design.outcome} "
            f"significantly after FDR control (q={params.alpha:g}); most harmful: {shown} "
            f"({level_text} FCR-adjusted interval)"
        )
        ci_method = f"{method}; {level_text} FCR-adjusted interval (Benjamini-Yekutieli)"
    else:
        if significant:
            head = (
                f"{prefix}{len(significant)} of {len(trusted)} {noun} change "
                f"{design.outcome} significantly after FDR control (q={params.alpha:g}), "
                "none for the worse"
            )
        else:
            head = (
                f"{prefix}none of {len(trusted)} {noun} changes {design.outcome} "
                f"significantly after FDR control (q={params.alpha:g})"
            )
        status_note = "significant" if worst.significant else "not significant"
        explanation = (
            f"{head}; most negative: {shown} ({status_note}; {level_text} simultaneous interval)"
        )
        ci_method = f"{method}; {level_text} simultaneous (Bonferroni) interval"
    if continuous:
        explanation += ", per unit of share"
    status = evaluate_threshold(threshold, worst.ate, worst.fcr_ci_low, worst.fcr_ci_high)
    if untrusted:
        names = ", ".join(list(untrusted)[:5]) + (", ..." if len(untrusted) > 5 else "")
        explanation += (
            f"; {len(untrusted)} untrusted (poor overlap or implausible size: {names}), "
            "not used for the verdict"
        )
        if status == "pass":
            status = "warn"
    skipped = len(results) - len(estimated)
    if skipped:
        explanation += f"; {skipped} skipped"
    details["n_significant"] = len(significant)
    return Finding(
        estimate=worst.ate,
        ci_low=worst.fcr_ci_low,
        ci_high=worst.fcr_ci_high,
        confidence=level if level is not None else 0.95,
        ci_method=ci_method,
        status=status,
        explanation=explanation,
        **common,
    )
