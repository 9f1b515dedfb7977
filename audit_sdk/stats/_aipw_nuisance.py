"""Cross-fitted nuisance models for AIPW: the propensity ``e(W)`` and the outcome models
``mu_t(W)``, each unit predicted by models fitted on the other folds (Chernozhukov et al. 2018,
"Double/debiased machine learning", Econometrics Journal 21:C1-C68, Section 3, DML2).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import linalg
from sklearn.base import clone
from threadpoolctl import threadpool_limits

OutcomeForm = Literal["separate", "joint"]


def _cross_fit_propensity(
    x: np.ndarray, t: np.ndarray, fold_id: np.ndarray, n_folds: int, model: Any
) -> np.ndarray:
    e = np.empty(len(t))
    for k in range(n_folds):
        test = fold_id == k
        train = ~test
        fitted = clone(model).fit(x[train], t[train])
        column = list(fitted.classes_).index(1)
        e[test] = fitted.predict_proba(x[test])[:, column]
    return e


def _cross_fit_outcome(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    fold_id: np.ndarray,
    n_folds: int,
    model: Any,
    form: OutcomeForm,
) -> tuple[np.ndarray, np.ndarray]:
    """Any scikit-learn regressor, refitted per fold (and per arm for ``separate``)."""
    mu0 = np.empty(len(y))
    mu1 = np.empty(len(y))
    for k in range(n_folds):
        test = fold_id == k
        train = ~test
        if form == "separate":
            for arm, target in ((0, mu0), (1, mu1)):
                rows = train & (t == arm)
                target[test] = clone(model).fit(x[rows], y[rows]).predict(x[test])
        else:
            fitted = clone(model).fit(np.column_stack([x[train], t[train]]), y[train])
            xt = x[test]
            mu0[test] = fitted.predict(np.column_stack([xt, np.zeros(len(xt))]))
            mu1[test] = fitted.predict(np.column_stack([xt, np.ones(len(xt))]))
    return mu0, mu1


def _cross_fit_ridge(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    fold_id: np.ndarray,
    n_folds: int,
    alpha: float,
    form: OutcomeForm,
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge outcome models in closed form from per-(fold, arm) sufficient statistics.

    Sorting the units by (fold, arm) once gives contiguous blocks; each block contributes its
    Gram matrix ``X'X``, ``X'y``, column sums and count. A training set is "all blocks minus the
    test fold's", so K folds cost one pass over the data plus K small (p x p) solves. The
    solution is scikit-learn's ``Ridge(alpha, fit_intercept=True)``: centre X and y on the
    training means, solve ``(Xc'Xc + alpha I) b = Xc'yc``, intercept ``ybar - xbar b``.
    """
    n, p = x.shape
    label = fold_id * 2 + t
    order = np.argsort(label, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(label, minlength=2 * n_folds))])
    xs = x[order]
    ys = y[order]
    gram = np.empty((2 * n_folds, p, p))
    xsum = np.empty((2 * n_folds, p))
    xy = np.empty((2 * n_folds, p))
    ysum = np.empty(2 * n_folds)
    count = np.diff(bounds).astype(float)
    for g in range(2 * n_folds):
        block = xs[bounds[g] : bounds[g + 1]]
        yb = ys[bounds[g] : bounds[g + 1]]
        gram[g] = block.T @ block
        xsum[g] = block.sum(axis=0)
        xy[g] = block.T @ yb
        ysum[g] = yb.sum()
    # per arm totals; index [fold, arm]
    gram_f = gram.reshape(n_folds, 2, p, p)
    xsum_f = xsum.reshape(n_folds, 2, p)
    xy_f = xy.reshape(n_folds, 2, p)
    ysum_f = ysum.reshape(n_folds, 2)
    count_f = count.reshape(n_folds, 2)
    mu0 = np.empty(n)
    mu1 = np.empty(n)
    for k in range(n_folds):
        test = fold_id == k
        xt = x[test]
        keep = np.arange(n_folds) != k
        g_arm = gram_f[keep].sum(axis=0)
        s_arm = xsum_f[keep].sum(axis=0)
        xy_arm = xy_f[keep].sum(axis=0)
        ys_arm = ysum_f[keep].sum(axis=0)
        c_arm = count_f[keep].sum(axis=0)
        if form == "separate":
            coef = np.empty((p, 2))
            icpt = np.empty(2)
            for arm in (0, 1):
                coef[:, arm], icpt[arm] = _ridge_solve(
                    g_arm[arm], s_arm[arm], xy_arm[arm], ys_arm[arm], c_arm[arm], alpha
                )
            pred = xt @ coef + icpt
            mu0[test], mu1[test] = pred[:, 0], pred[:, 1]
        else:
            # Design [X, T]: the T column's Gram entries come from the treated arm's sums.
            gram_joint = np.empty((p + 1, p + 1))
            gram_joint[:p, :p] = g_arm[0] + g_arm[1]
            gram_joint[:p, p] = gram_joint[p, :p] = s_arm[1]
            gram_joint[p, p] = c_arm[1]
            sums = np.append(s_arm[0] + s_arm[1], c_arm[1])
            xyv = np.append(xy_arm[0] + xy_arm[1], ys_arm[1])
            b, c0 = _ridge_solve(gram_joint, sums, xyv, ys_arm.sum(), c_arm.sum(), alpha)
            base = xt @ b[:p] + c0
            mu0[test], mu1[test] = base, base + b[p]
    return mu0, mu1


def _ridge_solve(
    gram: np.ndarray, xsum: np.ndarray, xy: np.ndarray, ysum: float, count: float, alpha: float
) -> tuple[np.ndarray, float]:
    xbar = xsum / count
    ybar = ysum / count
    a = gram - count * np.outer(xbar, xbar)
    a.flat[:: a.shape[0] + 1] += alpha
    rhs = xy - count * xbar * ybar
    if a.shape[0] == 0:
        return np.zeros(0), float(ybar)
    coef = linalg.solve(a, rhs, assume_a="pos")
    return coef, float(ybar - xbar @ coef)


def fit_treatment_nuisance(
    _resource: Any, payload: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One treatment's cross-fitted ``(e, mu0, mu1)``: a shard of the audit's executor (a
    module-level function, so it pickles by reference to a worker). Its folds come in the
    payload (drawn from the estimator's seed), so the result does not depend on the worker."""
    x, y, t, fold_id, n_folds, propensity, ridge, outcome, form = payload
    with threadpool_limits(limits=1):
        e_raw = _cross_fit_propensity(x, t, fold_id, n_folds, propensity)
        if ridge is not None:
            mu0, mu1 = _cross_fit_ridge(x, y, t, fold_id, n_folds, ridge, form)
        else:
            mu0, mu1 = _cross_fit_outcome(x, y, t, fold_id, n_folds, outcome, form)
    return e_raw, mu0, mu1
