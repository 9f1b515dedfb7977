"""Per-group estimates with CIs, and the worst-to-best disparity between groups.

Point estimates are group means (one ``bincount`` pass; fairlearn's ``MetricFrame``, Bird et
al., "Fairlearn", 2020, is the reference in the tests and gives the same numbers). Intervals
come from :mod:`audit_sdk.stats.bootstrap`: one set of Poisson-weight resamples gives every
group's BCa interval and the simultaneous bands of the disparity, in time linear in users x
resamples and memory bounded by the memory budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_sdk.report_model import GroupEstimate
from audit_sdk.stats.bootstrap import Disparity, bca_mean_interval, disparity_from_replicates
from audit_sdk.stats.resampling_weights import group_mean_replicates

__all__ = ["GroupComparison", "compare_groups", "mean_of_true"]


def natural_key(label: str) -> tuple[float, str]:
    """Order group labels by the first number in them ("<25" < "25-34" < "55+", "Q2" < "Q10"),
    then alphabetically."""
    match = re.search(r"\d+(\.\d+)?", label)
    if match is None:
        return (np.inf, label)
    value = float(match.group())
    if label[: match.start()].rstrip().endswith("<"):
        value -= 0.5
    return (value, label)


def mean_of_true(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """A MetricFrame metric: the mean of a per-user quantity passed as ``y_true``."""
    return float(np.mean(y_true))


@dataclass(frozen=True)
class GroupComparison:
    rows: list[GroupEstimate]
    disparity: Disparity | None  # None when fewer than two groups are large enough
    eligible: list[str]
    too_small: list[str]
    by_group: pd.Series  # group mean over all groups (as fairlearn's MetricFrame.by_group)


def compare_groups(
    values: pd.Series,
    groups: pd.Series,
    *,
    min_group_size: int,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> GroupComparison:
    """Group means of ``values`` (one per user) by ``groups``, with CIs and a disparity over
    the groups that have at least ``min_group_size`` users."""
    if not groups.index.equals(values.index):
        groups = groups.reindex(values.index)
    v = np.asarray(values, dtype=float)
    labels = groups.astype("string").to_numpy(dtype=object, na_value=None)
    keep = np.isfinite(v) & pd.notna(labels)
    v = v[keep]
    codes, uniques = pd.factorize(labels[keep])
    names = sorted((str(u) for u in uniques), key=natural_key)
    # Relabel codes so that group g is names[g] (natural order).
    position = {name: g for g, name in enumerate(names)}
    codes = np.array([position[str(u)] for u in uniques], dtype=np.intp)[codes]
    counts = np.bincount(codes, minlength=len(names))
    means = np.bincount(codes, weights=v, minlength=len(names)) / np.maximum(counts, 1)
    by_group = pd.Series(means, index=pd.Index(names, name="sensitive_feature_0"))
    replicates = group_mean_replicates(v, codes, len(names), n_resamples=n_resamples, rng=rng)
    order = np.argsort(codes, kind="stable")
    arrays = np.split(v[order], np.cumsum(counts)[:-1])
    rows: list[GroupEstimate] = []
    eligible: list[int] = []
    too_small: list[str] = []
    for g, name in enumerate(names):
        interval = bca_mean_interval(arrays[g], replicates[:, g], confidence=confidence)
        warning = None
        if counts[g] < min_group_size:
            warning = (
                f"only {counts[g]} users (< {min_group_size}): too few to judge; "
                "left out of the disparity"
            )
            too_small.append(name)
        else:
            eligible.append(g)
        rows.append(
            GroupEstimate(
                group=name,
                n=int(counts[g]),
                estimate=float(means[g]),
                ci_low=interval.low,
                ci_high=interval.high,
                warning=warning,
            )
        )
    disparity = None
    if len(eligible) >= 2:
        disparity = disparity_from_replicates(
            [names[g] for g in eligible],
            [arrays[g] for g in eligible],
            replicates[:, eligible],
            confidence=confidence,
        )
        for row in rows:
            if row.group == disparity.worst:
                row.extra["role"] = "worst"
            elif row.group == disparity.best:
                row.extra["role"] = "best"
    return GroupComparison(rows, disparity, [names[g] for g in eligible], too_small, by_group)
