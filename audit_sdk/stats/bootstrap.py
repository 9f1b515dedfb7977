"""Bootstrap confidence intervals for means, and for group disparities.

Means use scipy's BCa bootstrap (Efron 1987), falling back to the percentile method where BCa
is undefined (a constant sample).

Group disparities (worst-to-best ratio, best-minus-worst difference) get intervals from
*simultaneous* confidence bands for all group means: a stratified max-|t| bootstrap (users
resampled within each group; Romano & Wolf 2005, Sec. 3; Davison & Hinkley 1997, Sec. 4.2.5)
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

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["Disparity", "Interval", "disparity_ci", "mean_ci", "statistic_ci"]


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
    """Mean of ``values`` with a bootstrap CI (BCa; percentile for degenerate samples)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, "none")
    est = float(x.mean())
    if n == 1 or np.ptp(x) == 0:
        return Interval(est, est, est, n, "degenerate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = stats.bootstrap(
                (x,),
                np.mean,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method="BCa",
                vectorized=True,
                random_state=rng,
            )
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
            method = "bootstrap-BCa"
        except Exception:
            low, high = float("nan"), float("nan")
            method = "bootstrap-BCa"
    if not (np.isfinite(low) and np.isfinite(high)):
        idx = rng.integers(0, n, size=(n_resamples, n))
        means = x[idx].mean(axis=1)
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(means, [alpha, 1 - alpha]))
        method = "bootstrap-percentile"
    return Interval(est, low, high, n, method)


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
    means = np.array([a.mean() for a in arrays])
    ses = np.array([a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0 for a in arrays])
    t_max = np.zeros(n_resamples)
    for j, a in enumerate(arrays):
        if ses[j] == 0:
            continue
        idx = rng.integers(0, len(a), size=(n_resamples, len(a)))
        t_max = np.maximum(t_max, np.abs(a[idx].mean(axis=1) - means[j]) / ses[j])
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
