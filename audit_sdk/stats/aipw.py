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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import linalg
from scipy import stats as sps
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, StratifiedKFold
from statsmodels.stats.multitest import multipletests
from threadpoolctl import threadpool_limits

from audit_sdk.stats.cluster_robust import cluster_robust_slope

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

OutcomeForm = Literal["separate", "joint"]
OutcomeModelName = Literal["ridge", "gradient_boosting"]

_IF_METHOD = "influence-function normal (cross-fitted AIPW)"


@dataclass(frozen=True)
class OverlapDiagnostic:
    """How well the treated and control units overlap in their estimated propensities.

    ``share_clipped`` is the share of units whose raw cross-fitted propensity fell outside
    the clipping range (their weights were capped). The histogram has fixed edges on [0, 1]
    and one count vector per arm.
    """

    share_clipped: float
    n_clipped: int
    propensity_min: float
    propensity_max: float
    edges: tuple[float, ...]
    counts_treated: tuple[int, ...]
    counts_control: tuple[int, ...]

    def histogram(self) -> dict[str, list[float] | list[int]]:
        """The form ``Finding.details["histogram"]`` takes."""
        return {
            "edges": list(self.edges),
            "counts_treated": list(self.counts_treated),
            "counts_control": list(self.counts_control),
        }


@dataclass(frozen=True)
class AIPWResult:
    """The estimate for one treatment, its uncertainty, and what it rests on.

    ``ci_low``/``ci_high`` is the marginal interval at ``confidence``; ``fcr_ci_low``/
    ``fcr_ci_high`` the interval at ``fcr_level`` = 1 - max(R, 1) q / m after selecting R of
    m treatments with Benjamini-Hochberg at level q (Benjamini & Yekutieli 2005). For a
    selected treatment that is the FCR-adjusted interval; when nothing is selected (R = 0)
    the level uses R = 1, i.e. the Bonferroni simultaneous interval, which stays valid for a
    treatment picked after looking (say, the most negative one). ``naive_*`` is the plain
    difference in means, treated minus control, with its Welch interval (cluster-robust when
    the units are clustered). A treatment that could
    not be estimated has ``skipped`` set to the reason and no estimate.
    """

    treatment: str
    n: int
    n_treated: int
    n_control: int
    ate: float | None = None
    se: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    p_value: float | None = None
    q_value: float | None = None
    significant: bool | None = None
    fcr_ci_low: float | None = None
    fcr_ci_high: float | None = None
    fcr_level: float | None = None
    naive_diff: float | None = None
    naive_ci_low: float | None = None
    naive_ci_high: float | None = None
    overlap: OverlapDiagnostic | None = None
    skipped: str | None = None
    warnings: tuple[str, ...] = ()
    overlap_failed: str | None = None  # the reason, when positivity/overlap fails

    @property
    def trusted(self) -> bool:
        """Estimated, with adequate overlap (the detector gates only on trusted rows)."""
        return self.estimated and self.overlap_failed is None

    @property
    def estimated(self) -> bool:
        return self.skipped is None and self.ate is not None


@dataclass
class _Inputs:
    """Validated arrays shared by every treatment."""

    y: np.ndarray
    t: np.ndarray  # n x m, int8 in {0, 1}
    names: list[str]
    groups: np.ndarray | None  # cluster codes 0..C-1 or None


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

    def fit_one(j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = inputs.t[:, j]
        fold_id = plan.fold_ids(t)
        x = covariates.matrix(j)
        e_raw = _cross_fit_propensity(x, t, fold_id, plan.n_folds, propensity)
        if ridge is not None:
            mu0, mu1 = _cross_fit_ridge(x, inputs.y, t, fold_id, plan.n_folds, ridge, outcome_form)
        else:
            mu0, mu1 = _cross_fit_outcome(
                x, inputs.y, t, fold_id, plan.n_folds, outcome, outcome_form
            )
        return e_raw, mu0, mu1

    # Many small fits: multi-threaded BLAS and OpenMP only add synchronisation here (L-BFGS-B
    # calls BLAS on vectors of length p), which on a busy 2-core machine made the fits 10-50x
    # slower; one thread per fit, and parallelism across treatments through n_jobs instead.
    with threadpool_limits(limits=1):
        if n_jobs != 1 and len(todo) > 1:
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


def apply_multiple_testing(
    results: list[AIPWResult],
    *,
    fdr_q: float = 0.05,
    bootstrap_draws: dict[int, np.ndarray] | None = None,
) -> list[AIPWResult]:
    """Benjamini-Hochberg q-values and FCR-adjusted intervals over the estimated results.

    BH via ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``. For R selected of
    m tested, every estimated result gets an interval at level ``1 - max(R, 1) q / m``
    (Benjamini & Yekutieli 2005): normal from its standard error, or percentile from its
    bootstrap draws (``bootstrap_draws`` maps the result's index to them).
    """
    index = [i for i, r in enumerate(results) if r.estimated and r.p_value is not None]
    if not index:
        return list(results)
    pvals = np.array([results[i].p_value for i in index], dtype=float)
    reject, qvals, _, _ = multipletests(pvals, alpha=fdr_q, method="fdr_bh")
    m = len(index)
    selected = int(reject.sum())
    miscoverage = max(selected, 1) * fdr_q / m
    level = 1 - miscoverage
    z = float(sps.norm.ppf(1 - miscoverage / 2))
    out = list(results)
    for k, i in enumerate(index):
        r = results[i]
        assert r.ate is not None and r.se is not None
        if bootstrap_draws is not None and i in bootstrap_draws:
            lo, hi = np.quantile(bootstrap_draws[i], [miscoverage / 2, 1 - miscoverage / 2])
        else:
            lo, hi = r.ate - z * r.se, r.ate + z * r.se
        out[i] = replace(
            r,
            q_value=float(qvals[k]),
            significant=bool(reject[k]),
            fcr_ci_low=float(lo),
            fcr_ci_high=float(hi),
            fcr_level=float(level),
        )
    return out


# ---------------------------------------------------------------------------------------------
# validation and preparation


def _validate(Y: Any, T: Any, names: Sequence[str] | None, groups: Any) -> _Inputs:
    y = np.asarray(Y, dtype=float).reshape(-1)
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"the outcome has a missing or infinite value at unit {bad}; drop it.")
    t = np.asarray(T)
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    if t.ndim != 2 or t.shape[0] != len(y):
        raise ValueError(
            f"treatments must be an n x m array with n = {len(y)} rows, got shape {t.shape}."
        )
    if not np.isin(t, (0, 1)).all():
        raise ValueError("treatments must be 0/1 indicators (binarize shares first).")
    t = t.astype(np.int8)
    if names is None:
        names = [f"t{j}" for j in range(t.shape[1])]
    names = [str(v) for v in names]
    if len(names) != t.shape[1]:
        raise ValueError(f"{len(names)} treatment names for {t.shape[1]} treatment columns.")
    codes = None
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != len(y):
            raise ValueError(f"groups has {len(groups)} entries for {len(y)} units.")
        _, codes = np.unique(groups, return_inverse=True)
    return _Inputs(y=y, t=t, names=names, groups=codes)


def _validate_clip(clip: tuple[float, float]) -> tuple[float, float]:
    low, high = float(clip[0]), float(clip[1])
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"clip must satisfy 0 < low < high < 1, got {clip}.")
    return low, high


def _skip_reason(
    n1: int, n0: int, *, min_units: int, constant_outcome: bool, y: np.ndarray
) -> str | None:
    if n1 == 0:
        return "no unit is treated (nobody has this treatment)"
    if n0 == 0:
        return "every unit is treated (no control group)"
    if n1 < min_units:
        return f"only {n1} treated units (need at least {min_units} per arm)"
    if n0 < min_units:
        return f"only {n0} control units (need at least {min_units} per arm)"
    if constant_outcome:
        return f"the outcome is constant ({y[0]:g} for every unit); no effect can be estimated"
    return None


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


class _Covariates:
    """Covariate matrices per treatment: one shared array or one per treatment."""

    def __init__(self, W: Any, *, n: int, m: int, standardize: bool) -> None:
        self.standardize = standardize
        self.n = n
        self._shared: np.ndarray | None = None
        self._per: Sequence[Any] | None = None
        if isinstance(W, np.ndarray) or hasattr(W, "to_numpy") or W is None:
            self._shared = self._prepare(np.zeros((n, 0)) if W is None else W)
        else:
            if len(W) != m:
                raise ValueError(f"{len(W)} covariate arrays for {m} treatments.")
            self._per = W

    def _prepare(self, W: Any) -> np.ndarray:
        x = np.asarray(W, dtype=float)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        if x.shape[0] != self.n:
            raise ValueError(f"covariates have {x.shape[0]} rows for {self.n} units.")
        if not np.isfinite(x).all():
            row, col = (int(v[0]) for v in np.nonzero(~np.isfinite(x)))
            raise ValueError(
                f"covariate column {col} has a missing or infinite value at unit {row}; "
                "impute it (and add a missing indicator) first."
            )
        if self.standardize and x.shape[1]:
            sd = x.std(axis=0)
            # a constant column carries no information and slows L-BFGS down; drop it
            x = (x[:, sd > 0] - x[:, sd > 0].mean(axis=0)) / sd[sd > 0]
        if x.shape[1] == 0:  # no covariates: intercept-only nuisance models
            x = np.zeros((self.n, 1))
        return np.ascontiguousarray(x)

    def matrix(self, j: int) -> np.ndarray:
        if self._shared is not None:
            return self._shared
        assert self._per is not None
        return self._prepare(self._per[j])


class _FoldPlan:
    """Which fold predicts each unit, per treatment (stratified) or shared (explicit/groups)."""

    def __init__(self, folds: Any, groups: np.ndarray | None, *, n: int, seed: int) -> None:
        self.seed = seed
        self.n = n
        self._fixed: np.ndarray | None = None
        if isinstance(folds, (int, np.integer)):
            if folds < 2:
                raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}.")
            self.n_folds = int(folds)
            if groups is not None:
                n_groups = int(groups.max()) + 1
                if n_groups < self.n_folds:
                    raise ValueError(f"{n_groups} clusters cannot fill {self.n_folds} folds.")
                splitter = GroupKFold(n_splits=self.n_folds, shuffle=True, random_state=seed)
                self._fixed = self._from_pairs(splitter.split(np.zeros(n), groups=groups))
        else:
            pairs = [(np.asarray(tr), np.asarray(te)) for tr, te in folds]
            self.n_folds = len(pairs)
            self._fixed = self._from_pairs(pairs, check_complement=True)

    def _from_pairs(self, pairs: Any, *, check_complement: bool = False) -> np.ndarray:
        fold_id = np.full(self.n, -1, dtype=np.int64)
        for k, (train, test) in enumerate(pairs):
            if (fold_id[test] != -1).any():
                raise ValueError(f"fold {k}'s test units also appear in an earlier fold.")
            fold_id[test] = k
            if check_complement:
                expected = np.setdiff1d(np.arange(self.n), test)
                if not np.array_equal(np.sort(train), expected):
                    raise ValueError(
                        f"fold {k}: the training units must be exactly the units outside its "
                        "test units."
                    )
        if (fold_id == -1).any():
            raise ValueError("the folds' test parts must cover every unit.")
        return fold_id

    def check(self, t: np.ndarray) -> str | None:
        """A reason the folds cannot fit this treatment, or None."""
        if self._fixed is None:
            return None
        for k in range(self.n_folds):
            train = self._fixed != k
            n1 = int(t[train].sum())
            if n1 == 0 or n1 == int(train.sum()):
                arm = "treated" if n1 == 0 else "control"
                return f"cross-fitting fold {k}'s training part has no {arm} units"
        return None

    def fold_ids(self, t: np.ndarray) -> np.ndarray:
        if self._fixed is not None:
            return self._fixed
        splitter = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.seed)
        return self._from_pairs(splitter.split(np.zeros(self.n), t))


def _resolve_outcome_model(model: Any, ridge_alpha: float, seed: int) -> tuple[Any, float | None]:
    """The regressor and, for a plain ridge, its alpha (closed-form path)."""
    if isinstance(model, str):
        if model == "ridge":
            return Ridge(alpha=ridge_alpha), float(ridge_alpha)
        if model == "gradient_boosting":
            return HistGradientBoostingRegressor(random_state=seed), None
        raise ValueError(
            f"unknown outcome_model {model!r}; use 'ridge', 'gradient_boosting' or a regressor."
        )
    if (
        type(model) is Ridge
        and model.fit_intercept
        and not model.positive
        and np.ndim(model.alpha) == 0
        and model.solver in ("auto", "cholesky")
    ):
        return model, float(model.alpha)
    if not hasattr(model, "fit") or not hasattr(model, "predict"):
        raise ValueError(f"outcome_model {model!r} is not a scikit-learn regressor.")
    return model, None


# ---------------------------------------------------------------------------------------------
# nuisance models


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


# ---------------------------------------------------------------------------------------------
# inference


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
