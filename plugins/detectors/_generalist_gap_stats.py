"""The generalist gap's estimators: an OLS slope of quality on GS with covariates and the
top-minus-bottom GS-quantile gap, each with a percentile cluster bootstrap over users.

Rows (profiles, or one per user) belong to users; a resample draws users, never rows, so a
user's windows and generators stay together (the cluster bootstrap, Cameron, Gelbach & Miller,
"Bootstrap-based improvements for inference with clustered errors", REStat 2008, Sec. 3.1;
Field & Welsh, JRSS-B 2007, Sec. 2). Users get Poisson(1) weights
(:func:`audit_sdk.stats.resampling_weights.poisson_weight_blocks`), and every estimate is a
function of per-user sufficient statistics, so one resample costs a matrix product over users:

* OLS (Wooldridge, *Econometric Analysis of Cross Section and Panel Data*, 2010, Eq. 4.8):
  ``beta = (X'WX)^-1 X'Wy`` with ``X'WX = sum_u w_u S_u``, ``S_u = sum_{r in u} x_r x_r'``;
* bin means: ``sum_u w_u s_ub / sum_u w_u n_ub`` from each user's sum and count per bin.

Intervals are percentile intervals of the replicates (Efron & Tibshirani 1993, Sec. 13.3)
through :func:`audit_sdk.stats.bootstrap.statistic_ci`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_sdk.stats.bootstrap import Interval, statistic_ci
from audit_sdk.stats.resampling_weights import poisson_weight_blocks

__all__ = ["GapEstimates", "estimate_gap"]

METHOD = "percentile cluster bootstrap (Poisson weights over users)"


@dataclass(frozen=True)
class GapEstimates:
    slope: Interval
    """OLS coefficient of quality on GS (per unit of GS), adjusted for the covariates"""
    gap: Interval
    """mean quality in the top GS bin (specialists) minus the bottom bin (generalists)"""
    bins: list[Interval]
    """mean quality per GS bin, lowest GS (generalists) first"""
    bin_users: list[int]
    n_rows: int
    n_users: int


def _solve(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """Coefficients of each (p x p, p) system in a batch; NaN where singular."""
    out = np.full(xty.shape, np.nan)
    ok = np.linalg.cond(xtx) < 1e12
    if ok.any():
        out[ok] = np.linalg.solve(xtx[ok], xty[ok][..., None])[..., 0]
    return out


def estimate_gap(
    quality: np.ndarray,
    gs: np.ndarray,
    covariates: np.ndarray,
    users: np.ndarray,
    bins: np.ndarray,
    n_bins: int,
    *,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> GapEstimates:
    """Slope and gap with cluster-bootstrap CIs.

    :param quality, gs: one value per row (finite).
    :param covariates: rows x k (standardised or not; an intercept is added).
    :param users: user code of each row, ``0 .. n_users - 1``.
    :param bins: GS bin of each row, ``0 .. n_bins - 1`` (0 = lowest GS).
    """
    n_users = int(users.max()) + 1
    x = np.column_stack([np.ones(len(gs)), gs, covariates])
    p = x.shape[1]
    s = np.zeros((n_users, p * p))
    np.add.at(s, users, (x[:, :, None] * x[:, None, :]).reshape(len(x), p * p))
    t = np.zeros((n_users, p))
    np.add.at(t, users, x * quality[:, None])
    bin_sum = np.zeros((n_users, n_bins))
    bin_count = np.zeros((n_users, n_bins))
    np.add.at(bin_sum, (users, bins), quality)
    np.add.at(bin_count, (users, bins), 1.0)

    def statistics(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slopes and bin means for weight rows ``w`` (b x users)."""
        xtx = (w @ s).reshape(-1, p, p)
        beta = _solve(xtx, w @ t)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (w @ bin_sum) / (w @ bin_count)
        return beta[:, 1], means

    slope0, means0 = statistics(np.ones((1, n_users)))
    slopes, means = [], []
    for block in poisson_weight_blocks(n_users, n_resamples, rng, dtype=np.float64):
        b_slope, b_means = statistics(block)
        slopes.append(b_slope)
        means.append(b_means)
    rep_slope, rep_means = np.concatenate(slopes), np.vstack(means)
    rep_gap = rep_means[:, -1] - rep_means[:, 0]
    bin_users = [int((bin_count[:, b] > 0).sum()) for b in range(n_bins)]

    def ci(replicates: np.ndarray, estimate: float, n: int) -> Interval:
        return statistic_ci(replicates, estimate, confidence=confidence, n=n, method=METHOD)

    return GapEstimates(
        slope=ci(rep_slope, float(slope0[0]), n_users),
        gap=ci(rep_gap, float(means0[0, -1] - means0[0, 0]), bin_users[0] + bin_users[-1]),
        bins=[ci(rep_means[:, b], float(means0[0, b]), bin_users[b]) for b in range(n_bins)],
        bin_users=bin_users,
        n_rows=len(quality),
        n_users=n_users,
    )
