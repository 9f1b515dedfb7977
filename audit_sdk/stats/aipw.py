"""Cross-fitted AIPW: the doubly-robust average treatment effect of many binary treatments.

For one binary treatment ``T`` (e.g. "listens mostly to metal"), an outcome ``Y`` (e.g. the
user's NDCG@10 or profile rating) and covariates ``W`` (age, activity, ...), the augmented
inverse-propensity-weighted score of unit *i* is (Robins, Rotnitzky & Zhao 1994, JASA
89:846-866; written as in Chernozhukov et al. 2018, "Double/debiased machine learning for
treatment and structural parameters", Econometrics Journal 21:C1-C68, Section 5.1, eq. 5.3)::

    psi_i = mu1(W_i) - mu0(W_i) + T_i (Y_i - mu1(W_i)) / e(W_i) - (1 - T_i)(Y_i - mu0(W_i)) / (1 - e(W_i))

with ``e(W) = P(T=1 | W)`` (the propensity) and ``mu_t(W) = E[Y | W, T=t]`` (the outcome
model). The ATE estimate is ``mean(psi)`` and its standard error ``sd(psi) / sqrt(n)``: psi
minus the ATE is the estimator's influence function (Chernozhukov et al. 2018, Section 5.1).
Every nuisance prediction is *cross-fitted* (Chernozhukov et al. 2018, Section 3, the DML2
estimator): the units are split into K folds and the models that predict fold k were fitted on
the other K-1 folds, which removes the own-observation bias of flexible nuisance models.

This module is the project's fast path. It estimates many treatments that share one outcome
in one pass: the covariates are standardized once, ridge outcome models are solved in closed
form from per-fold Gram matrices (no refitting per arm through scikit-learn), the scores of all
treatments are stacked into one matrix, and one set of bootstrap draws serves every treatment.
``audit_sdk.stats.drlearner_reference`` runs econml's ``DRLearner`` as the reference; with
``outcome_form="joint"`` and the same folds, models and clipping the two agree to 1e-6
(``tests/test_causal_aipw.py``).

Across treatments, p-values are corrected with Benjamini-Hochberg (1995) and the selected
treatments get false-coverage-rate adjusted intervals (Benjamini & Yekutieli 2005, "False
discovery rate-adjusted multiple confidence intervals for selected parameters", JASA
100:71-81: marginal intervals at level ``1 - R q / m`` for the R selected of m tested).

The estimator and its score live here; the pieces it calls live beside it and are re-exported:
``_aipw_results`` (the result types), ``_aipw_preparation`` (validation, covariates, folds),
``_aipw_nuisance`` (cross-fitted propensity and outcome models), ``_aipw_inference`` (standard
errors, the score bootstrap, the naive difference) and ``_multiple_testing`` (BH and FCR).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from audit_sdk.execution import Shard, current_executor
from audit_sdk.stats._aipw_inference import (
    _bootstrap_draws,
    _standard_errors,
    _with_naive,
    welch_difference,
)
from audit_sdk.stats._aipw_nuisance import (
    OutcomeForm,
    fit_treatment_nuisance,
)
from audit_sdk.stats._aipw_preparation import (
    _Covariates,
    _FoldPlan,
    _resolve_outcome_model,
    _skip_reason,
    _validate,
    _validate_clip,
)
from audit_sdk.stats._aipw_results import AIPWResult, OverlapDiagnostic
from audit_sdk.stats._multiple_testing import apply_multiple_testing

__all__ = [
    "AIPWResult",
    "OutcomeForm",
    "OverlapDiagnostic",
    "aipw_ate",
    "apply_multiple_testing",
    "estimate_ates",
    "overlap_diagnostic",
    "welch_difference",
]

OutcomeModelName = Literal["ridge", "gradient_boosting"]

_IF_METHOD = "influence-function normal (cross-fitted AIPW)"

# ---------------------------------------------------------------------------------------------
# public API


def estimate_ates(
    Y: Any,
    T: Any,
    W: Any,
    *,
    treatment_names: Sequence[str] | None = None,
    folds: int | Sequence[tuple[Any, Any]] = 5,
    groups: Any = None,
    seed: int = 0,
    clip: tuple[float, float] = (0.01, 0.99),
    propensity_C: float = 1.0,
    propensity_model: Any = None,
    outcome_model: OutcomeModelName | Any = "ridge",
    ridge_alpha: float = 1.0,
    outcome_form: OutcomeForm = "separate",
    standardize: bool = True,
    min_units_per_arm: int = 20,
    max_clipped_share: float = 0.05,
    bootstrap: int = 0,
    confidence: float = 0.95,
    fdr_q: float = 0.05,
    histogram_bins: int = 20,
    n_jobs: int = 1,
    influence_out: list[np.ndarray] | None = None,
) -> list[AIPWResult]:
    """Doubly-robust ATE of each column of ``T`` on ``Y``, adjusting for ``W``, in one pass.

    :param Y: outcome, length n (finite numbers).
    :param T: treatments, n x m of 0/1 (a single 0/1 vector is one treatment).
    :param W: covariates, n x p, shared by all treatments; or a sequence of m such arrays (one
        per treatment, same rows), e.g. when each treatment leaves out its own share.
    :param treatment_names: m labels (default ``t0, t1, ...``).
    :param folds: K for seeded K-fold cross-fitting, stratified by each treatment (the same
        folds econml's ``DRLearner(cv=K, random_state=seed)`` draws), or explicit
        ``(train, test)`` index pairs that partition the units, used for every treatment.
    :param groups: optional cluster label per unit (e.g. the user when units are profiles):
        folds keep clusters together, the standard error is cluster-robust
        (``sqrt(sum_c (sum_{i in c} (psi_i - ATE))^2) / n``) and the bootstrap resamples clusters.
    :param clip: propensities are clipped to ``[low, high]`` before weighting.
    :param propensity_C: inverse L2 strength of the default ``LogisticRegression`` propensity.
    :param propensity_model: any scikit-learn classifier with ``predict_proba`` instead.
    :param outcome_model: ``"ridge"`` (closed form from Gram matrices, ``alpha=ridge_alpha``),
        ``"gradient_boosting"`` (``HistGradientBoostingRegressor``), or any regressor. A plain
        ``sklearn.linear_model.Ridge`` instance also takes the closed-form path.
    :param outcome_form: ``"separate"`` fits mu0 on control and mu1 on treated units;
        ``"joint"`` fits one regressor on ``[W, T]`` and predicts at T=0 and T=1, which is
        how econml's ``DRLearner`` fits ``model_regression``.
    :param standardize: scale covariates to mean 0, sd 1 (over all units) before fitting.
    :param min_units_per_arm: treatments with fewer treated or control units are skipped.
    :param max_clipped_share: warn (positivity) when more units than this share are clipped.
    :param bootstrap: B > 0 adds percentile intervals from B resamples of units (clusters),
        re-using the cross-fitted nuisance predictions (the scores psi are resampled, the
        models are not refitted); 0 uses the influence-function normal interval.
    :param confidence: level of the marginal intervals.
    :param fdr_q: Benjamini-Hochberg level across the estimated treatments.
    :param n_jobs: treatments fitted in parallel threads (joblib); 1 runs serially.
    :param influence_out: a list that receives the n x m matrix of estimated influence values
        ``psi - ATE`` (NaN in skipped columns), e.g. to compare two estimates on the same users.
    :returns: one :class:`AIPWResult` per treatment, in input order.
    """
    inputs = _validate(Y, T, treatment_names, groups)
    n, m = inputs.t.shape
    covariates = _Covariates(W, n=n, m=m, standardize=standardize)
    low, high = _validate_clip(clip)
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0.5, 1), got {confidence}.")
    if not 0.0 < fdr_q < 1.0:
        raise ValueError(f"fdr_q must lie in (0, 1), got {fdr_q}.")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be 0 (off) or a number of resamples, got {bootstrap}.")
    propensity = (
        LogisticRegression(C=propensity_C, max_iter=1000)
        if propensity_model is None
        else propensity_model
    )
    outcome, ridge = _resolve_outcome_model(outcome_model, ridge_alpha, seed)
    plan = _FoldPlan(folds, inputs.groups, n=n, seed=seed)
    min_units = max(int(min_units_per_arm), plan.n_folds, 2)

    results: list[AIPWResult] = []
    todo: list[int] = []
    constant = float(np.ptp(inputs.y)) == 0.0
    for j, name in enumerate(inputs.names):
        t = inputs.t[:, j]
        n1 = int(t.sum())
        n0 = n - n1
        base = AIPWResult(treatment=name, n=n, n_treated=n1, n_control=n0)
        reason = _skip_reason(n1, n0, min_units=min_units, constant_outcome=constant, y=inputs.y)
        if reason is None:
            reason = plan.check(t)
        if reason is None:
            todo.append(j)
            base = _with_naive(base, inputs.y, t, confidence, groups=inputs.groups)
        results.append(replace(base, skipped=reason))

    def shard(j: int) -> tuple[Any, ...]:
        t = inputs.t[:, j]
        x, fold_id = covariates.matrix(j), plan.fold_ids(t)
        return (x, inputs.y, t, fold_id, plan.n_folds, propensity, ridge, outcome, outcome_form)

    def fit_one(j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return fit_treatment_nuisance(None, shard(j))

    # Many small fits: multi-threaded BLAS and OpenMP only add synchronisation here (L-BFGS-B
    # calls BLAS on vectors of length p), which on a busy 2-core machine made the fits 10-50x
    # slower; one thread per fit, and parallelism across treatments through n_jobs instead.
    # A distributed executor (execution.backend) fits the treatments on its workers.
    executor = current_executor()
    with threadpool_limits(limits=1):
        if executor.distributed and len(todo) > 1:
            shards = [Shard(fit_treatment_nuisance, shard(j), "statistics", "aipw") for j in todo]
            fitted = [_shard_result(r) for r in executor.map_shards(shards)]
        elif n_jobs != 1 and len(todo) > 1:
            from joblib import Parallel, delayed

            fitted = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(fit_one)(j) for j in todo)
        else:
            fitted = [fit_one(j) for j in todo]

    if not todo:
        if influence_out is not None:
            influence_out.append(np.full((n, m), np.nan))
        return results
    psi = np.empty((n, len(todo)))
    for col, (j, (e_raw, mu0, mu1)) in enumerate(zip(todo, fitted, strict=True)):
        t = inputs.t[:, j]
        psi[:, col] = aipw_scores(inputs.y, t, e_raw, mu0, mu1, clip=(low, high))
        overlap = overlap_diagnostic(e_raw, t, clip=(low, high), bins=histogram_bins)
        warnings = list(results[j].warnings)
        failed = None
        if overlap.share_clipped > max_clipped_share:
            failed = (
                f"positivity: {overlap.share_clipped:.1%} of units have an estimated propensity "
                f"outside [{low:g}, {high:g}] and were clipped (limit {max_clipped_share:.0%}); "
                "treated and control units barely overlap, so the estimate extrapolates."
            )
            warnings.append(failed)
        results[j] = replace(
            results[j], overlap=overlap, warnings=tuple(warnings), overlap_failed=failed
        )

    ate = psi.mean(axis=0)
    se = _standard_errors(psi, ate, inputs.groups)
    if influence_out is not None:
        influence = np.full((n, m), np.nan)
        influence[:, todo] = psi - ate
        influence_out.append(influence)
    draws = (
        _bootstrap_draws(psi, inputs.groups, bootstrap, np.random.default_rng(seed))
        if bootstrap > 0
        else None
    )
    z = sps.norm.ppf(0.5 + confidence / 2)
    for col, j in enumerate(todo):
        if not se[col] > 0:
            results[j] = replace(results[j], skipped="the doubly-robust score has zero variance")
            continue
        if draws is not None:
            tail = (1 - confidence) / 2
            lo, hi = np.quantile(draws[:, col], [tail, 1 - tail])
            method = (
                f"bootstrap-percentile (B={bootstrap}, resampling "
                f"{'clusters' if inputs.groups is not None else 'units'}; nuisances fixed)"
            )
        else:
            lo, hi = ate[col] - z * se[col], ate[col] + z * se[col]
            method = _IF_METHOD
        p = float(2 * sps.norm.sf(abs(ate[col] / se[col])))
        results[j] = replace(
            results[j],
            ate=float(ate[col]),
            se=float(se[col]),
            ci_low=float(lo),
            ci_high=float(hi),
            ci_method=method,
            p_value=p,
        )
    boot_by_treatment = (
        {j: draws[:, col] for col, j in enumerate(todo)} if draws is not None else None
    )
    return apply_multiple_testing(results, fdr_q=fdr_q, bootstrap_draws=boot_by_treatment)


def aipw_ate(y: Any, t: Any, w: Any, **options: Any) -> AIPWResult:
    """One treatment: :func:`estimate_ates` with a single column (options as there)."""
    name = options.pop("treatment_name", "treatment")
    return estimate_ates(y, np.asarray(t).reshape(-1, 1), w, treatment_names=[name], **options)[0]


def aipw_scores(
    y: np.ndarray,
    t: np.ndarray,
    e_raw: np.ndarray,
    mu0: np.ndarray,
    mu1: np.ndarray,
    *,
    clip: tuple[float, float] = (0.01, 0.99),
) -> np.ndarray:
    """The AIPW score psi of every unit (Robins et al. 1994; Chernozhukov et al. 2018, eq. 5.3).

    ``psi = mu1 - mu0 + T (Y - mu1) / e - (1 - T)(Y - mu0) / (1 - e)`` with ``e`` clipped.
    """
    e = np.clip(e_raw, clip[0], clip[1])
    return mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)


def overlap_diagnostic(
    e_raw: np.ndarray,
    t: np.ndarray,
    *,
    clip: tuple[float, float] = (0.01, 0.99),
    bins: int = 20,
) -> OverlapDiagnostic:
    """Share of units clipped and the propensity histogram of each arm."""
    clipped = (e_raw < clip[0]) | (e_raw > clip[1])
    edges = np.linspace(0.0, 1.0, bins + 1)
    treated = t == 1
    counts_t, _ = np.histogram(e_raw[treated], bins=edges)
    counts_c, _ = np.histogram(e_raw[~treated], bins=edges)
    return OverlapDiagnostic(
        share_clipped=float(clipped.mean()) if len(e_raw) else 0.0,
        n_clipped=int(clipped.sum()),
        propensity_min=float(e_raw.min()) if len(e_raw) else math.nan,
        propensity_max=float(e_raw.max()) if len(e_raw) else math.nan,
        edges=tuple(float(v) for v in edges),
        counts_treated=tuple(int(v) for v in counts_t),
        counts_control=tuple(int(v) for v in counts_c),
    )


def _shard_result(record: Any) -> Any:
    """A shard's result, or its error raised here (as a local fit would have raised it)."""
    if record.error is not None:
        raise record.error
    return record.result
