"""Bootstrap confidence intervals for means, and for group disparities.

Resamples are Poisson(1) weights over users, drawn in memory-bounded blocks
(:mod:`audit_sdk.stats.resampling_weights`): one set of draws gives every group's mean at once,
in time linear in users x resamples and memory independent of the number of resamples.

Means get BCa intervals (Efron, JASA 1987, Eqs. 2.3 and 6.6): with z0 = Phi^-1(#{m* < m} / B)
the bias correction and, for the mean, the closed-form jackknife acceleration

    a = sum_i (x_i - m)^3 / (6 (sum_i (x_i - m)^2)^(3/2)),

the interval is the bootstrap quantiles at Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q))) for
q = alpha/2 and 1 - alpha/2 (scipy's ``stats.bootstrap(method="BCa")`` computes the same from
an n x n jackknife; it is the reference in the tests). Where BCa is undefined (every resample
on one side of the estimate) the interval falls back to the percentile method.

Group disparities (worst-to-best ratio, best-minus-worst difference) get intervals from
*simultaneous* confidence bands for all group means: a max-|t| bootstrap, each group's mean
resampled from its own users' weights (Romano & Wolf 2005, Sec. 3; Davison & Hinkley 1997,
Sec. 4.2.5)
gives a critical value c such that every group mean lies in m_g +- c se_g at once with the
stated confidence. Then, since min mu <= U_h and max mu >= L_h for every group h,

    ratio = min mu / max mu  lies in  [min_h L_h / max_h U_h,  min_h U_h / max_h L_h]
    diff  = max mu - min mu  lies in  [max(0, max_h L_h - min_h U_h),  max_h U_h - min_h L_h]

with at least that confidence. Picking the worst and best of several noisy groups exaggerates
a gap (a winner's curse); these bounds account for the picking, so ten equal groups do not
look unequal, which percentile intervals of the plug-in ratio (fairlearn's ``ratio_ci``) do
about a quarter of the time. Point estimates are the plug-in values, the same as fairlearn's
``MetricFrame.ratio()``/``difference()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from audit_sdk.stats.resampling_weights import group_mean_replicates, poisson_weight_blocks

__all__ = [
    "Disparity",
    "Interval",
    "bca_mean_interval",
    "disparity_ci",
    "disparity_from_replicates",
    "mean_ci",
    "mean_cis",
    "statistic_ci",
]


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int
    method: str


def mean_ci(
    values: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    rng: np.random.Generator,
) -> Interval:
    """Mean of ``values`` with a bootstrap CI (BCa; percentile where BCa is undefined)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2 or np.ptp(x) == 0:
        return bca_mean_interval(x, np.empty(0), confidence=confidence)
    replicates = group_mean_replicates(
        x, np.zeros(len(x), dtype=np.intp), 1, n_resamples=n_resamples, rng=rng
    )
    return bca_mean_interval(x, replicates[:, 0], confidence=confidence)


def mean_cis(
    columns: Mapping[str, np.ndarray],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    rng: np.random.Generator,
) -> dict[str, Interval]:
    """:func:`mean_ci` for several columns of equal length (one value per unit, NaN for none),
    from one stream of resampling weights over the units: every column sees the same
    resamples, so the weights are drawn once instead of once per column."""
    names = list(columns)
    x = np.column_stack([np.asarray(columns[c], dtype=float) for c in names])
    finite = np.isfinite(x)
    kept = [x[finite[:, j], j] for j in range(len(names))]
    means = np.array([v.mean() if len(v) else 0.0 for v in kept])
    dtype = np.float32 if len(x) < 2**23 else np.float64
    design = np.zeros((len(x), 2 * len(names)), dtype=dtype)
    design[:, 0::2] = np.where(finite, x - means, 0.0)
    design[:, 1::2] = finite
    sums = np.vstack(
        [w @ design for w in poisson_weight_blocks(len(x), n_resamples, rng, dtype=dtype)]
    ).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = means + sums[:, 0::2] / sums[:, 1::2]
    return {
        name: bca_mean_interval(kept[j], replicates[:, j], confidence=confidence)
        for j, name in enumerate(names)
    }


def bca_mean_interval(
    values: np.ndarray, replicates: np.ndarray, *, confidence: float = 0.95
) -> Interval:
    """BCa interval for the mean of ``values`` (finite) from bootstrap ``replicates`` of it
    (Efron 1987; see the module docstring)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, "none")
    est = float(x.mean())
    if n == 1 or np.ptp(x) == 0:
        return Interval(est, est, est, n, "degenerate")
    reps = replicates[np.isfinite(replicates)]
    alpha = (1 - confidence) / 2
    z0 = special.ndtri(np.mean(reps < est))
    d = x - est
    accel = float((d**3).sum() / (6.0 * (d**2).sum() ** 1.5))
    if np.isfinite(z0):
        z = z0 + special.ndtri(np.array([alpha, 1 - alpha]))
        levels = special.ndtr(z0 + z / (1 - accel * z))
        low, high = (float(v) for v in np.quantile(reps, levels))
        return Interval(est, low, high, n, "bootstrap-BCa")
    low, high = (float(v) for v in np.quantile(reps, [alpha, 1 - alpha]))
    return Interval(est, low, high, n, "bootstrap-percentile")


def statistic_ci(
    resampled: np.ndarray,
    estimate: float,
    *,
    confidence: float,
    n: int,
    method: str,
    kind: Literal["percentile", "basic"] = "percentile",
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Interval:
    """CI from a vector of bootstrap replicates: percentile, or basic (reverse percentile),
    clipped to ``bounds``."""
    alpha = (1 - confidence) / 2
    finite = resampled[np.isfinite(resampled)]
    if len(finite) == 0 or not np.isfinite(estimate):
        return Interval(estimate, float("nan"), float("nan"), n, method)
    q_low, q_high = np.quantile(finite, [alpha, 1 - alpha])
    if kind == "basic":
        q_low, q_high = 2 * estimate - q_high, 2 * estimate - q_low
    low, high = np.clip([q_low, q_high], *bounds)
    return Interval(estimate, float(low), float(high), n, method)


@dataclass(frozen=True)
class Disparity:
    ratio: Interval  # worst mean / best mean
    difference: Interval  # best mean - worst mean
    worst: str
    best: str
    critical_value: float  # c of the simultaneous bands


def disparity_ci(
    groups: Mapping[str, np.ndarray],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    rng: np.random.Generator,
) -> Disparity:
    """Worst-to-best ratio and best-minus-worst difference of group means, with intervals
    from simultaneous max-|t| bootstrap bands (see the module docstring)."""
    names = list(groups)
    if len(names) < 2:
        raise ValueError("a disparity needs at least two groups")
    arrays = [np.asarray(groups[g], dtype=float) for g in names]
    values = np.concatenate(arrays)
    codes = np.repeat(np.arange(len(arrays)), [len(a) for a in arrays])
    replicates = group_mean_replicates(values, codes, len(arrays), n_resamples=n_resamples, rng=rng)
    return disparity_from_replicates(names, arrays, replicates, confidence=confidence)


def disparity_from_replicates(
    names: list[str],
    arrays: list[np.ndarray],
    replicates: np.ndarray,
    *,
    confidence: float = 0.95,
) -> Disparity:
    """:func:`disparity_ci` from bootstrap ``replicates`` of the group means, one column per
    group of ``names``/``arrays``."""
    means = np.array([a.mean() for a in arrays])
    ses = np.array([a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0 for a in arrays])
    spread = ses > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(replicates[:, spread] - means[spread]) / ses[spread]
    t_max = np.max(t, axis=1, initial=0.0, where=np.isfinite(t))
    c = float(np.quantile(t_max, confidence))
    upper, lower = means + c * ses, means - c * ses
    worst, best = int(np.argmin(means)), int(np.argmax(means))
    n = int(sum(len(a) for a in arrays))
    method = "simultaneous max-t bootstrap bands (stratified)"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(means[worst] / means[best]) if means[best] > 0 else float("nan")
        ratio_low = float(lower.min() / upper.max()) if upper.max() > 0 else float("nan")
        ratio_high = float(upper.min() / lower.max()) if lower.max() > 0 else 1.0
    if np.isfinite(ratio):
        ratio_low, ratio_high = (
            float(np.clip(ratio_low, 0.0, ratio)),
            float(np.clip(ratio_high, ratio, 1.0)),
        )
    diff = float(means[best] - means[worst])
    return Disparity(
        ratio=Interval(ratio, ratio_low, ratio_high, n, method),
        difference=Interval(
            diff,
            float(max(0.0, lower.max() - upper.min())),
            float(upper.max() - lower.min()),
            n,
            method,
        ),
        worst=names[worst],
        best=names[best],
        critical_value=c,
    )
