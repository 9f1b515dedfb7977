"""Findings that several detectors build the same way.

* :func:`group_disparity_finding`: a per-user quantity compared across the groups of one
  attribute (per-group means with CIs, ``n``, small-group warnings) and summarised by the
  worst-to-best ratio (for quantities where higher is better) or the highest-minus-lowest gap,
  with simultaneous bounds (:mod:`audit_sdk.stats.bootstrap`).
* :func:`model_rows`: one row per model (the subject and the baselines) with a bootstrap CI.
* :func:`interval_finding`: a finding whose estimate is one interval, its status from the
  threshold, its rows (models, windows...) drawn as bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit_sdk.group_statistics import GroupComparison, compare_groups
from audit_sdk.interfaces import AuditContext
from audit_sdk.report_model import Finding, GroupEstimate
from audit_sdk.stats.bootstrap import Interval, mean_ci, mean_cis
from audit_sdk.thresholds import Threshold, evaluate_threshold

__all__ = ["group_disparity_finding", "interval_finding", "model_rows"]


def group_disparity_finding(
    context: AuditContext,
    *,
    detector: str,
    metric: str,
    values: pd.Series,
    attribute: str,
    summary: Literal["ratio", "gap"],
    threshold: Threshold | None,
    reference: str | None = None,
    label: str | None = None,
    comparison: GroupComparison | None = None,
) -> Finding:
    """Compare ``values`` (one per user, indexed by user) across ``attribute``'s groups
    (``comparison``: already computed, e.g. by :func:`compare_groups_many`).

    ``summary="ratio"`` reports lowest/highest group mean (``<metric>:min_max_ratio``, for
    quantities where higher is better); ``"gap"`` reports highest - lowest
    (``<metric>:group_gap``). ``label`` names the model in the explanation.
    """
    name = f"{metric}:min_max_ratio" if summary == "ratio" else f"{metric}:group_gap"
    comparison = comparison or compare_groups(
        values,
        context.user_table[attribute].reindex(values.index),
        min_group_size=context.min_group_size,
        confidence=context.bootstrap.confidence,
        n_resamples=context.bootstrap.n_resamples,
        rng=context.rng(f"{detector}:{metric}:{attribute}"),
    )
    warnings = [f"group {r.group!r}: {r.warning}" for r in comparison.rows if r.warning]
    common: dict[str, Any] = {
        "detector": detector,
        "metric": name,
        "group_by": attribute,
        "subject": context.subject.name,
        "groups": comparison.rows,
        "threshold": threshold,
        "warnings": warnings,
        "chart": "bars",
        "reference": reference,
    }
    disparity = comparison.disparity
    if disparity is None:
        return Finding(
            **common,
            n=int(sum(r.n for r in comparison.rows)),
            status="skipped",
            explanation=(
                f"fewer than two groups of {attribute} have at least {context.min_group_size} "
                "users; no disparity can be judged"
            ),
        )
    low, high = disparity.worst, disparity.best
    low_mean, high_mean = comparison.by_group[low], comparison.by_group[high]
    ratio, diff = disparity.ratio, disparity.difference
    shown: Interval = ratio if summary == "ratio" else diff
    who = f"{label}: " if label else ""
    if summary == "ratio":
        text = (
            f"{who}{attribute}={low} gets {metric} {low_mean:.3g} vs {high_mean:.3g} for "
            f"{high}: ratio {ratio.estimate:.2f} [{ratio.low:.2f}, {ratio.high:.2f}], "
            f"difference {diff.estimate:.3g} [{diff.low:.3g}, {diff.high:.3g}]"
        )
    elif diff.estimate == 0:
        text = f"{who}{metric} is {low_mean:.3g} in every group of {attribute}"
    else:
        text = (
            f"{who}{metric} ranges from {low_mean:.3g} ({attribute}={low}) to "
            f"{high_mean:.3g} ({high}); gap {diff.estimate:.3g} [{diff.low:.3g}, {diff.high:.3g}]"
        )
    return Finding(
        **common,
        estimate=shown.estimate,
        ci_low=shown.low,
        ci_high=shown.high,
        confidence=context.bootstrap.confidence,
        ci_method=shown.method,
        n=shown.n,
        status=evaluate_threshold(threshold, shown.estimate, shown.low, shown.high),
        explanation=text,
        details={
            "lowest_group": low,
            "highest_group": high,
            "ratio": {"estimate": ratio.estimate, "ci_low": ratio.low, "ci_high": ratio.high},
            "difference": {"estimate": diff.estimate, "ci_low": diff.low, "ci_high": diff.high},
            "groups_too_small": comparison.too_small,
            "overall": float(np.nanmean(values.to_numpy(dtype=float))),
        },
    )


def model_rows(
    context: AuditContext,
    values: Mapping[str, pd.Series | np.ndarray],
    *,
    salt: str,
) -> tuple[list[GroupEstimate], dict[str, Interval]]:
    """One row per model (label -> per-user values), the subject marked as such."""
    rows = []
    arrays = {label: np.asarray(series, dtype=float) for label, series in values.items()}
    confidence, n_resamples = context.bootstrap.confidence, context.bootstrap.n_resamples
    if len({len(a) for a in arrays.values()}) == 1:
        # Over the same users, one stream of resampling weights serves every model.
        intervals = mean_cis(
            arrays, confidence=confidence, n_resamples=n_resamples, rng=context.rng(salt)
        )
    else:
        intervals = {
            label: mean_ci(
                a,
                confidence=confidence,
                n_resamples=n_resamples,
                rng=context.rng(f"{salt}:{label}"),
            )
            for label, a in arrays.items()
        }
    for label, interval in intervals.items():
        rows.append(
            GroupEstimate(
                group=label,
                n=interval.n,
                estimate=interval.estimate,
                ci_low=interval.low,
                ci_high=interval.high,
                extra={"role": "subject" if label == context.subject.name else "baseline"},
            )
        )
    return rows, intervals


def interval_row(
    group: str, interval: Interval, *, min_n: int, unit: str = "users"
) -> GroupEstimate:
    """One per-group row from an interval: estimate and CI (None where not finite or where
    there are no units), n, and a warning when ``n`` is below ``min_n``."""

    def finite(value: float) -> float | None:
        return float(value) if interval.n and np.isfinite(value) else None

    return GroupEstimate(
        group=group,
        n=interval.n,
        estimate=finite(interval.estimate),
        ci_low=finite(interval.low),
        ci_high=finite(interval.high),
        warning=f"only {interval.n} {unit} (< {min_n})" if interval.n < min_n else None,
    )


def interval_finding(
    context: AuditContext,
    interval: Interval,
    *,
    detector: str,
    metric: str,
    rows: list[GroupEstimate],
    group_by: str,
    threshold: Threshold | None,
    explanation: str,
    reference: str | None = None,
    ci_method: str | None = None,
    details: dict[str, Any] | None = None,
) -> Finding:
    """A finding for one interval (the subject's), beside rows for comparison."""
    return Finding(
        detector=detector,
        metric=metric,
        subject=context.subject.name,
        estimate=interval.estimate,
        ci_low=interval.low,
        ci_high=interval.high,
        confidence=context.bootstrap.confidence,
        ci_method=ci_method or interval.method,
        n=interval.n,
        groups=rows,
        group_by=group_by,
        threshold=threshold,
        status=evaluate_threshold(threshold, interval.estimate, interval.low, interval.high),
        explanation=explanation,
        warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning],
        chart="bars",
        reference=reference,
        details=details or {},
    )
