"""Per-group estimates with CIs, and the worst-to-best disparity between groups.

Point estimates come from fairlearn's ``MetricFrame`` (Bird et al., "Fairlearn", 2020);
intervals from :mod:`audit_sdk.stats.bootstrap` (stratified, vectorized; fairlearn's own
bootstrap is the reference in the tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from audit_sdk.report_model import GroupEstimate
from audit_sdk.stats.bootstrap import Disparity, disparity_ci, mean_ci

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
    by_group: pd.Series  # fairlearn MetricFrame.by_group over all groups


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
    frame = pd.DataFrame({"v": values.astype(float), "g": groups.astype("string")}).dropna()
    frame = frame[np.isfinite(frame["v"].to_numpy())]
    by_group = MetricFrame(
        metrics=mean_of_true,
        y_true=frame["v"].to_numpy(),
        y_pred=frame["v"].to_numpy(),
        sensitive_features=frame["g"].to_numpy(),
    ).by_group
    rows: list[GroupEstimate] = []
    eligible: list[str] = []
    too_small: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    for name, part in sorted(
        frame.groupby("g", sort=False), key=lambda kv: natural_key(str(kv[0]))
    ):
        arr = part["v"].to_numpy()
        interval = mean_ci(arr, confidence=confidence, n_resamples=n_resamples, rng=rng)
        warning = None
        if len(arr) < min_group_size:
            warning = (
                f"only {len(arr)} users (< {min_group_size}): too few to judge; "
                "left out of the disparity"
            )
            too_small.append(str(name))
        else:
            eligible.append(str(name))
            arrays[str(name)] = arr
        rows.append(
            GroupEstimate(
                group=str(name),
                n=len(arr),
                estimate=float(by_group[name]),
                ci_low=interval.low,
                ci_high=interval.high,
                warning=warning,
            )
        )
    disparity = None
    if len(eligible) >= 2:
        disparity = disparity_ci(arrays, confidence=confidence, n_resamples=n_resamples, rng=rng)
        for row in rows:
            if row.group == disparity.worst:
                row.extra["role"] = "worst"
            elif row.group == disparity.best:
                row.extra["role"] = "best"
    return GroupComparison(rows, disparity, eligible, too_small, by_group)
