"""The reference estimator: econml's ``DRLearner``, one fit per treatment.

Same inputs and result type as :func:`audit_sdk.stats.aipw.estimate_ates`, so an audit can run
either (detector parameter ``estimator: econml``) and the tests can compare them.

What econml 0.17 does (``econml/dr/_drlearner.py``, ``_ModelNuisance``), and how the fast path
matches it:

* the propensity model is fitted on ``[X, W]`` (here ``W`` only, ``X=None``) against the
  treatment label; its ``predict_proba`` columns are clipped to
  ``[min_propensity, 1 - min_propensity]`` (so clipping is symmetric: ``clip=(c, 1 - c)``);
* ``model_regression`` is ONE regressor fitted on ``[X, W, T one-hot]`` (for a binary treatment:
  ``[W, T]``) and predicted with the treatment column set to 0 and to 1: the fast path's
  ``outcome_form="joint"``;
* the pseudo-outcomes are the AIPW terms ``mu_t + 1[T=t] (Y - mu_t) / e_t``; with ``X=None`` the
  final ``StatsModelsLinearRegression`` regresses their difference on a constant, so the ATE is
  the mean of the AIPW score and its (HC1) standard error is ``sd(psi) / sqrt(n)``;
* with ``cv=K`` (an int) econml splits with ``StratifiedKFold(K, shuffle=True,
  random_state=random_state)`` on the treatment, which is exactly the fast path's default.

``inference="bootstrap"`` in econml refits every nuisance model on every resample; that is what
the benchmark (``benchmarks/bench_causal_ate.py``) compares against.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats as sps
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from audit_sdk.errors import MissingCapabilityError
from audit_sdk.stats.aipw import (
    AIPWResult,
    _Covariates,
    _FoldPlan,
    _resolve_outcome_model,
    _skip_reason,
    _validate,
    _validate_clip,
    _with_naive,
    apply_multiple_testing,
    overlap_diagnostic,
)

__all__ = ["estimate_ates_econml"]


def estimate_ates_econml(
    Y: Any,
    T: Any,
    W: Any,
    *,
    treatment_names: Sequence[str] | None = None,
    folds: int | Sequence[tuple[Any, Any]] = 5,
    seed: int = 0,
    clip: tuple[float, float] = (0.01, 0.99),
    propensity_C: float = 1.0,
    propensity_model: Any = None,
    outcome_model: Any = "ridge",
    ridge_alpha: float = 1.0,
    standardize: bool = True,
    min_units_per_arm: int = 20,
    max_clipped_share: float = 0.05,
    bootstrap: int = 0,
    bootstrap_jobs: int = -1,
    confidence: float = 0.95,
    fdr_q: float = 0.05,
    histogram_bins: int = 20,
) -> list[AIPWResult]:
    """econml ``DRLearner(X=None)`` per treatment; arguments as in ``estimate_ates``.

    ``bootstrap > 0`` uses econml's ``BootstrapInference`` (refitting everything per resample,
    ``bootstrap_jobs`` workers); otherwise econml's analytic (statsmodels) inference. There is
    no ``groups`` option: every row must be its own unit.
    """
    try:
        from econml.dr import DRLearner
        from econml.inference import BootstrapInference
    except ImportError as exc:  # pragma: no cover - econml is in the dev environment
        raise MissingCapabilityError(
            "estimator 'econml' needs econml: pip install 'audit-sdk[causal]'."
        ) from exc
    inputs = _validate(Y, T, treatment_names, None)
    n, m = inputs.t.shape
    low, high = _validate_clip(clip)
    if abs(low - (1 - high)) > 1e-12:
        raise ValueError(f"econml clips symmetrically; use clip=(c, 1 - c), got {clip}.")
    covariates = _Covariates(W, n=n, m=m, standardize=standardize)
    propensity = (
        LogisticRegression(C=propensity_C, max_iter=1000)
        if propensity_model is None
        else propensity_model
    )
    outcome, _ = _resolve_outcome_model(outcome_model, ridge_alpha, seed)
    plan = _FoldPlan(folds, None, n=n, seed=seed)
    min_units = max(int(min_units_per_arm), plan.n_folds, 2)
    constant = float(np.ptp(inputs.y)) == 0.0
    z = sps.norm.ppf(0.5 + confidence / 2)

    results: list[AIPWResult] = []
    for j, name in enumerate(inputs.names):
        t = inputs.t[:, j]
        n1 = int(t.sum())
        result = AIPWResult(treatment=name, n=n, n_treated=n1, n_control=n - n1)
        reason = _skip_reason(
            n1, n - n1, min_units=min_units, constant_outcome=constant, y=inputs.y
        )
        reason = reason or plan.check(t)
        if reason is not None:
            results.append(replace(result, skipped=reason))
            continue
        result = _with_naive(result, inputs.y, t, confidence)
        fold_id = plan.fold_ids(t)
        cv = [
            (np.flatnonzero(fold_id != k), np.flatnonzero(fold_id == k))
            for k in range(plan.n_folds)
        ]
        x = covariates.matrix(j)
        inference: Any = (
            BootstrapInference(n_bootstrap_samples=bootstrap, n_jobs=bootstrap_jobs)
            if bootstrap > 0
            else "auto"
        )
        learner = DRLearner(
            model_propensity=clone(propensity),
            model_regression=clone(outcome),
            cv=cv,
            min_propensity=low,
            random_state=seed,
        )
        with warnings.catch_warnings():
            # econml's bootstrap workers warn about joblib memmapping; not the user's concern.
            warnings.simplefilter("ignore", UserWarning)
            learner.fit(inputs.y, t, X=None, W=x, inference=inference)
            ate = float(np.ravel(learner.ate())[0])
            summary = learner.ate_inference()
            se = float(np.ravel(summary.stderr_mean)[0])
            lo, hi = (float(np.ravel(v)[0]) for v in learner.ate_interval(alpha=1 - confidence))
        e_raw = np.empty(n)
        for k, model in enumerate(learner.models_propensity[0]):
            test = fold_id == k
            e_raw[test] = model.predict_proba(x[test])[:, list(model.classes_).index(1)]
        overlap = overlap_diagnostic(e_raw, t, clip=(low, high), bins=histogram_bins)
        notes = []
        if overlap.share_clipped > max_clipped_share:
            notes.append(
                f"positivity: {overlap.share_clipped:.1%} of units have an estimated propensity "
                f"outside [{low:g}, {high:g}] and were clipped (limit {max_clipped_share:.0%})."
            )
        if not se > 0:
            results.append(replace(result, skipped="the doubly-robust score has zero variance"))
            continue
        method = (
            f"econml DRLearner, bootstrap (B={bootstrap}, refitted)"
            if bootstrap > 0
            else "econml DRLearner, statsmodels normal"
        )
        if bootstrap == 0:
            lo, hi = ate - z * se, ate + z * se
        results.append(
            replace(
                result,
                ate=ate,
                se=se,
                ci_low=lo,
                ci_high=hi,
                ci_method=method,
                p_value=float(2 * sps.norm.sf(abs(ate / se))),
                overlap=overlap,
                warnings=tuple(notes),
                overlap_failed=notes[0] if notes else None,
            )
        )
    return apply_multiple_testing(results, fdr_q=fdr_q)
