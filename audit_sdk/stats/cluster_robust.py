"""A least-squares slope with a cluster-robust interval: the naive comparison beside an effect.

When the units are profiles and a user contributes several (windows, generators), the units are
not independent and a Welch interval is too narrow. :func:`cluster_robust_slope` regresses
``y`` on ``[1, x]`` and returns the slope with the CR1 sandwich variance

    V = c (X'X)^-1 (sum_g X_g' e_g e_g' X_g) (X'X)^-1,   c = G/(G-1) * (N-1)/(N-K)

(Cameron & Miller 2015, "A practitioner's guide to cluster-robust inference", J. Human
Resources 50:317-372, eq. 11 with the small-sample factor of Section VI.B) and a t interval
with G - 1 degrees of freedom. For a 0/1 ``x`` the slope is the difference in means, treated
minus control. It equals ``statsmodels`` ``OLS(...).fit(cov_type="cluster", use_t=True)``
(``tests/test_causal_continuous.py``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

__all__ = ["cluster_robust_slope", "difference_of_estimates"]


def cluster_robust_slope(
    y: np.ndarray, x: np.ndarray, groups: np.ndarray, *, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Slope of ``y`` on ``x`` (with intercept), its CR1 standard error and t interval.

    :param groups: cluster codes ``0..G-1`` (or any labels), one per unit.
    :returns: ``(slope, se, ci_low, ci_high)``; the interval is the point when the slope has
        no variance or there are fewer than two clusters.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    n = len(y)
    n_groups = int(codes.max()) + 1 if n else 0
    design = np.column_stack([np.ones(n), x])
    bread = np.linalg.pinv(design.T @ design)
    coef = bread @ (design.T @ y)
    resid = y - design @ coef
    scores = np.zeros((n_groups, 2))
    np.add.at(scores, codes, design * resid[:, None])
    meat = scores.T @ scores
    slope = float(coef[1])
    if n_groups < 2 or n <= 2:
        return slope, math.nan, slope, slope
    factor = n_groups / (n_groups - 1) * (n - 1) / (n - 2)
    var = factor * (bread @ meat @ bread)[1, 1]
    se = math.sqrt(max(var, 0.0))
    if se == 0.0:
        return slope, 0.0, slope, slope
    half = float(sps.t.ppf(0.5 + confidence / 2, n_groups - 1)) * se
    return slope, se, slope - half, slope + half


def difference_of_estimates(
    estimate_a: float,
    influence_a: np.ndarray,
    clusters_a: np.ndarray,
    estimate_b: float,
    influence_b: np.ndarray,
    clusters_b: np.ndarray,
    *,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """``a - b`` for two estimates on overlapping units (e.g. two generators' effects on the
    same users), with a cluster-robust normal interval.

    Each estimate is a mean of influence values (``estimate - truth ~ mean(influence)``); the
    difference's influence per cluster ``c`` is ``sum_{i in c} infl_a_i / n_a - sum_{j in c}
    infl_b_j / n_b``, and its variance the CR1-scaled sum of their squares over the union of
    clusters: units of one user in both estimates are correlated, not independent.

    :returns: ``(difference, se, ci_low, ci_high)``.
    """
    infl_a = np.asarray(influence_a, dtype=float)
    infl_b = np.asarray(influence_b, dtype=float)
    labels = np.concatenate(
        [np.asarray(clusters_a, dtype=object), np.asarray(clusters_b, dtype=object)]
    )
    _, codes = np.unique(labels.astype(str), return_inverse=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    weights = np.concatenate([infl_a / len(infl_a), -infl_b / len(infl_b)])
    per_cluster = np.bincount(codes, weights=weights, minlength=n_groups)
    diff = float(estimate_a - estimate_b)
    if n_groups < 2:
        return diff, math.nan, diff, diff
    se = math.sqrt(n_groups / (n_groups - 1) * float((per_cluster**2).sum()))
    half = float(sps.norm.ppf(0.5 + confidence / 2)) * se
    return diff, se, diff - half, diff + half
