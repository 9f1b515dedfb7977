"""Whether to believe a causal estimate, and the rows the causal detector reports.

A level is *untrusted* when its overlap failed (clipped propensities above the limit, or for a
continuous share, covariates that predict it almost exactly) or when its estimate is larger than
the outcome's range allows: |ATE| > max - min for a binary treatment, |theta| times the share's
observed spread > max - min for a continuous one. An untrusted level is shown with its reason
but never decides the finding's status.
"""

from __future__ import annotations

import numpy as np

from audit_sdk.report_model import GroupEstimate
from audit_sdk.stats.aipw import AIPWResult

from ._causal_treatments import CausalDesign

__all__ = ["outcome_range", "result_row", "untrusted_levels"]


def outcome_range(
    design: CausalDesign, declared: tuple[float, float] | None
) -> tuple[float, float]:
    """The outcome's possible range: the declared one, else the observed min and max."""
    if declared is not None:
        return declared
    return float(np.min(design.y)), float(np.max(design.y))


def untrusted_levels(
    results: list[AIPWResult],
    design: CausalDesign,
    *,
    continuous: bool,
    declared_range: tuple[float, float] | None,
) -> dict[str, str]:
    """Estimated levels whose number should not be believed, with the reason: failed overlap,
    or an effect larger than the outcome's range allows (binary: |ATE| > max - min;
    continuous: |theta| times the share's observed spread > max - min)."""
    low, high = outcome_range(design, declared_range)
    width = high - low
    out: dict[str, str] = {}
    for r in results:
        if not r.estimated or r.ate is None:
            continue
        if r.overlap_failed is not None:
            out[r.treatment] = r.overlap_failed
            continue
        if continuous:
            spread = float(np.ptp(design.treatments[r.treatment].to_numpy(dtype=float)))
            implied = abs(r.ate) * spread
            what = f"|effect| x share spread {spread:.3g} = {implied:.3g}"
        else:
            implied = abs(r.ate)
            what = f"|ATE| {implied:.3g}"
        if implied > width:
            out[r.treatment] = (
                f"implausible size: {what} exceeds the outcome's range {low:g} to {high:g} "
                f"(width {width:.3g}); the model extrapolates"
            )
    return out


def result_row(result: AIPWResult, untrusted: str | None = None) -> GroupEstimate:
    """One forest-plot row: the estimate, its intervals, the naive difference, overlap."""
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
        "trusted": result.estimated and untrusted is None,
    }
    warning = None
    if result.skipped:
        warning = f"skipped: {result.skipped}"
    elif untrusted is not None:
        warning = f"untrusted: {untrusted}"
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
