"""Inference on the AIPW scores: the influence-function standard error (plain or
cluster-robust), the score bootstrap, and the naive Welch / cluster-robust difference in
means reported beside each estimate.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import stats as sps

from audit_sdk.stats._aipw_results import AIPWResult
from audit_sdk.stats.cluster_robust import cluster_robust_slope


def welch_difference(
    y: np.ndarray, t: np.ndarray, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference in means (treated - control) and its Welch-Satterthwaite t interval."""
    y1, y0 = y[t == 1], y[t == 0]
    diff = float(y1.mean() - y0.mean())
    v1 = y1.var(ddof=1) / len(y1)
    v0 = y0.var(ddof=1) / len(y0)
    se = math.sqrt(v1 + v0)
    if se == 0.0:
        return diff, diff, diff
    df = (v1 + v0) ** 2 / (v1**2 / (len(y1) - 1) + v0**2 / (len(y0) - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    return diff, diff - half, diff + half


def _with_naive(
    base: AIPWResult,
    y: np.ndarray,
    t: np.ndarray,
    confidence: float,
    *,
    groups: np.ndarray | None = None,
) -> AIPWResult:
    """The naive difference in means: Welch for independent units, cluster-robust (CR1, t with
    G - 1 df) when units share a cluster, so it is as honest as the estimate beside it."""
    if groups is None:
        diff, lo, hi = welch_difference(y, t, confidence=confidence)
    else:
        diff, _, lo, hi = cluster_robust_slope(y, t, groups, confidence=confidence)
    return replace(base, naive_diff=diff, naive_ci_low=lo, naive_ci_high=hi)


def _standard_errors(psi: np.ndarray, ate: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    n = psi.shape[0]
    if groups is None:
        return psi.std(axis=0, ddof=1) / math.sqrt(n)
    centred = psi - ate
    n_groups = int(groups.max()) + 1
    sums = np.zeros((n_groups, psi.shape[1]))
    np.add.at(sums, groups, centred)
    # CR1 small-sample factor C / (C - 1) (Cameron & Miller 2015, J. Human Resources 50:317).
    factor = n_groups / max(n_groups - 1, 1)
    return np.sqrt(factor * (sums**2).sum(axis=0)) / n


def _bootstrap_draws(
    psi: np.ndarray,
    groups: np.ndarray | None,
    n_resamples: int,
    rng: np.random.Generator,
    *,
    chunk: int = 64,
) -> np.ndarray:
    """Resampled ATEs (B x m): units (or clusters) drawn with replacement, scores fixed.

    One set of draws serves every treatment (so the draws are also a joint bootstrap).
    """
    if groups is None:
        sums, sizes = psi, np.ones(psi.shape[0])
    else:
        n_groups = int(groups.max()) + 1
        sums = np.zeros((n_groups, psi.shape[1]))
        np.add.at(sums, groups, psi)
        sizes = np.bincount(groups, minlength=n_groups).astype(float)
    n_units = sums.shape[0]
    out = np.empty((n_resamples, psi.shape[1]))
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        picks = rng.integers(0, n_units, size=(b, n_units))
        picks += (np.arange(b) * n_units)[:, None]
        weights = np.bincount(picks.ravel(), minlength=b * n_units).reshape(b, n_units)
        weights = weights.astype(float)
        out[start : start + b] = (weights @ sums) / (weights @ sizes)[:, None]
    return out
