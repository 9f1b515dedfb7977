"""Partially linear double machine learning: the effect of a continuous share on an outcome.

For a continuous treatment ``D`` (e.g. the user's share of plays on metal, 0 to 1), an outcome
``Y`` and covariates ``W``, the partially linear model is (Robinson 1988, Econometrica 56:931)::

    Y = theta D + g(W) + eps,   D = m(W) + v,   E[eps | D, W] = 0,  E[v | W] = 0

``theta`` is the change in ``Y`` per unit of ``D`` (a share going from 0 to 1) holding ``W``
fixed. The estimator is the cross-fitted "partialling-out" DML2 estimator of Chernozhukov et al.
2018 ("Double/debiased machine learning for treatment and structural parameters",
Econometrics Journal 21:C1-C68), Section 4.1, with the Neyman-orthogonal score of eq. (4.4)::

    psi(theta) = (Y - l(W) - theta (D - m(W))) (D - m(W)),   l(W) = E[Y | W]

Both nuisances ``l`` and ``m`` are cross-fitted (fold k predicted by models fitted on the other
folds), then ``theta`` solves ``mean(psi) = 0``: the residual-on-residual least-squares slope
``sum(v~ y~) / sum(v~^2)``. Its standard error is ``sqrt(mean(psi^2)) / (J sqrt(n))`` with
``J = mean(v~^2)`` (Theorem 3.1 of the paper); with clusters (a user's several profiles) the
score sums are taken per cluster (CR1). The estimate equals ``statsmodels`` OLS of ``y~`` on
``v~`` (HC0) and econml's ``LinearDML`` with the same folds and models
(``tests/test_causal_continuous.py``).

The results use :class:`audit_sdk.stats.aipw.AIPWResult`, so the Benjamini-Hochberg and FCR
machinery and the detector's rows are shared with the binary estimator. ``naive_*`` is the plain
least-squares slope of ``Y`` on ``D`` (cluster-robust). Where ``W`` predicts ``D`` almost
exactly (``R^2`` above ``max_r2``) the share barely varies given the covariates, the continuous
analogue of failed overlap: ``overlap_failed`` is set with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats as sps
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold
from threadpoolctl import threadpool_limits

from audit_sdk.stats.aipw import AIPWResult, _Covariates, apply_multiple_testing
from audit_sdk.stats.cluster_robust import cluster_robust_slope

__all__ = ["cross_fitted_residuals", "estimate_partially_linear"]

_METHOD = "influence-function normal (cross-fitted partially linear DML)"


def cross_fitted_residuals(
    y: np.ndarray, d: np.ndarray, x: np.ndarray, fold_id: np.ndarray, model: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``(y - l^(W), d - m^(W))`` with each fold predicted by models fitted on the others."""
    y_res = np.empty(len(y))
    d_res = np.empty(len(d))
    for k in np.unique(fold_id):
        test = fold_id == k
        train = ~test
        y_res[test] = y[test] - clone(model).fit(x[train], y[train]).predict(x[test])
        d_res[test] = d[test] - clone(model).fit(x[train], d[train]).predict(x[test])
    return y_res, d_res


def estimate_partially_linear(
    Y: Any,
    D: Any,
    W: Any,
    *,
    treatment_names: Sequence[str] | None = None,
    folds: int = 5,
    groups: Any = None,
    seed: int = 0,
    model: Any = None,
    ridge_alpha: float = 1.0,
    standardize: bool = True,
    min_units: int = 20,
    max_r2: float = 0.95,
    confidence: float = 0.95,
    fdr_q: float = 0.05,
    influence_out: list[np.ndarray] | None = None,
) -> list[AIPWResult]:
    """The partially linear effect of each column of ``D`` on ``Y`` given ``W``.

    :param D: n x m continuous treatments (shares); a vector is one treatment.
    :param W: n x p covariates shared by all treatments, or a sequence of m such arrays.
    :param folds: K of the K-fold cross-fitting (grouped by ``groups`` when given).
    :param groups: cluster label per unit: folds keep clusters together and standard errors
        and the naive interval are cluster-robust.
    :param model: regressor for both nuisances (default ``Ridge(alpha=ridge_alpha)``).
    :param min_units: a treatment with fewer units having a nonzero value is skipped.
    :param max_r2: above this cross-fitted R^2 of ``m`` the treatment's ``overlap_failed``
        says the covariates leave almost no variation in the share.
    :param influence_out: a list that receives the n x m matrix of estimated influence values
        ``psi / J`` (NaN in skipped columns).
    :returns: one result per treatment (``n_treated``: units with a nonzero share).
    """
    y = np.asarray(Y, dtype=float).reshape(-1)
    d_all = np.asarray(D, dtype=float)
    if d_all.ndim == 1:
        d_all = d_all.reshape(-1, 1)
    n, m = d_all.shape
    if len(y) != n:
        raise ValueError(f"the outcome has {len(y)} units, the treatments {n}.")
    if not (np.isfinite(y).all() and np.isfinite(d_all).all()):
        raise ValueError("the outcome and treatments must be finite numbers; drop missing units.")
    names = [str(v) for v in (treatment_names or [f"t{j}" for j in range(m)])]
    if len(names) != m:
        raise ValueError(f"{len(names)} treatment names for {m} treatment columns.")
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}.")
    covariates = _Covariates(W, n=n, m=m, standardize=standardize)
    regressor = Ridge(alpha=ridge_alpha) if model is None else model
    codes: np.ndarray | None = None
    if groups is not None:
        _, codes = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)
        if int(codes.max()) + 1 < folds:
            raise ValueError(f"{int(codes.max()) + 1} clusters cannot fill {folds} folds.")
        splits = GroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(
            np.zeros(n), groups=codes
        )
    else:
        splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(n))
    fold_id = np.empty(n, dtype=np.int64)
    for k, (_, test) in enumerate(splits):
        fold_id[test] = k
    cluster = codes if codes is not None else np.arange(n)
    z = float(sps.norm.ppf(0.5 + confidence / 2))

    results: list[AIPWResult] = []
    influence = np.full((n, m), np.nan)
    with threadpool_limits(limits=1):
        for j, name in enumerate(names):
            d = d_all[:, j]
            n_exposed = int((d != 0).sum())
            base = AIPWResult(treatment=name, n=n, n_treated=n_exposed, n_control=n - n_exposed)
            reason = _skip_reason(y, d, n_exposed, min_units)
            if reason is not None:
                results.append(replace(base, skipped=reason))
                continue
            naive, _, naive_lo, naive_hi = cluster_robust_slope(
                y, d, cluster, confidence=confidence
            )
            base = replace(base, naive_diff=naive, naive_ci_low=naive_lo, naive_ci_high=naive_hi)
            y_res, d_res = cross_fitted_residuals(y, d, covariates.matrix(j), fold_id, regressor)
            j_hat = float(np.mean(d_res**2))
            if not j_hat > 1e-12:
                results.append(
                    replace(base, skipped="the share is fully explained by the covariates")
                )
                continue
            theta = float(np.sum(d_res * y_res) / np.sum(d_res**2))  # eq. (4.4) solved
            psi = (y_res - theta * d_res) * d_res
            se = _standard_error(psi, codes, j_hat)
            influence[:, j] = psi / j_hat
            r2 = 1.0 - j_hat / float(np.var(d))
            warnings: list[str] = []
            failed = None
            if r2 > max_r2:
                failed = (
                    f"overlap: the covariates predict the share almost exactly (cross-fitted "
                    f"R^2 {r2:.3f} > {max_r2:g}); the estimate rests on little variation"
                )
                warnings.append(failed)
            p = float(2 * sps.norm.sf(abs(theta / se))) if se > 0 else 1.0
            results.append(
                replace(
                    base,
                    ate=theta,
                    se=se,
                    ci_low=theta - z * se,
                    ci_high=theta + z * se,
                    ci_method=_METHOD,
                    p_value=p,
                    warnings=tuple(warnings),
                    overlap_failed=failed,
                )
            )
    if influence_out is not None:
        influence_out.append(influence)
    return apply_multiple_testing(results, fdr_q=fdr_q)


def _skip_reason(y: np.ndarray, d: np.ndarray, n_exposed: int, min_units: int) -> str | None:
    if float(np.ptp(d)) == 0.0:
        return f"the share is the same ({d[0]:g}) for every unit"
    if n_exposed < min_units:
        return f"only {n_exposed} units with a nonzero share (need at least {min_units})"
    if float(np.ptp(y)) == 0.0:
        return f"the outcome is constant ({y[0]:g} for every unit); no effect can be estimated"
    return None


def _standard_error(psi: np.ndarray, codes: np.ndarray | None, j_hat: float) -> float:
    n = len(psi)
    if codes is None:
        return math.sqrt(float(np.mean(psi**2)) / n) / j_hat
    n_groups = int(codes.max()) + 1
    sums = np.bincount(codes, weights=psi, minlength=n_groups)
    factor = n_groups / max(n_groups - 1, 1)  # CR1 (Cameron & Miller 2015)
    return math.sqrt(factor * float((sums**2).sum())) / (n * j_hat)
