"""Partially linear double ML and the cluster-robust naive slope: references and planted truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from audit_sdk.stats.aipw import estimate_ates
from audit_sdk.stats.cluster_robust import cluster_robust_slope
from audit_sdk.stats.partially_linear import cross_fitted_residuals, estimate_partially_linear

THETA = (-1.5, 0.0, 1.0)


def _plr_world(n: int, seed: int, *, clusters: int | None = None):  # type: ignore[no-untyped-def]
    """Three shares confounded by W; the outcome is non-linear in W (ridge misspecified for l,
    correct for m, so the orthogonal score stays unbiased)."""
    rng = np.random.default_rng([seed, 44])
    w = rng.standard_normal((n, 3))
    d = np.column_stack(
        [
            0.3 + 0.08 * w[:, 0] + 0.1 * rng.standard_normal(n),
            0.3 - 0.06 * w[:, 1] + 0.1 * rng.standard_normal(n),
            0.2 + 0.05 * w[:, 0] + 0.1 * rng.standard_normal(n),
        ]
    )
    y = d @ np.array(THETA) + np.sin(w[:, 0]) + 0.3 * w[:, 1] ** 2 + 0.3 * rng.standard_normal(n)
    groups = None
    if clusters is not None:
        groups = rng.integers(0, clusters, n)
        y = y + 0.3 * rng.standard_normal(clusters)[groups]
    return y, d, w, groups


def test_cluster_robust_slope_equals_statsmodels() -> None:
    rng = np.random.default_rng(0)
    n, g = 900, 250
    groups = rng.integers(0, g, n)
    x = (rng.random(n) < 0.4).astype(float)
    y = 0.3 * x + rng.standard_normal(n) + rng.standard_normal(g)[groups]
    slope, se, low, high = cluster_robust_slope(y, x, groups, confidence=0.9)
    fit = sm.OLS(y, sm.add_constant(x)).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )
    assert slope == pytest.approx(fit.params[1], rel=1e-10)
    assert se == pytest.approx(fit.bse[1], rel=1e-10)
    np.testing.assert_allclose([low, high], fit.conf_int(alpha=0.1)[1], rtol=1e-10)
    # a 0/1 regressor's slope is the difference in means
    assert slope == pytest.approx(y[x == 1].mean() - y[x == 0].mean())


def test_aipw_naive_difference_is_cluster_robust_with_groups() -> None:
    rng = np.random.default_rng(1)
    n_users = 300
    user = np.repeat(np.arange(n_users), 3)
    t = np.repeat((rng.random(n_users) < 0.5).astype(int), 3)  # treatment constant per user
    y = 0.2 * t + np.repeat(rng.standard_normal(n_users), 3) + 0.2 * rng.standard_normal(len(t))
    w = rng.standard_normal((len(t), 2))
    clustered = estimate_ates(y, t, w, groups=user, min_units_per_arm=5)[0]
    independent = estimate_ates(y, t, w, min_units_per_arm=5)[0]
    assert clustered.naive_diff == pytest.approx(independent.naive_diff)
    width_c = clustered.naive_ci_high - clustered.naive_ci_low  # type: ignore[operator]
    width_i = independent.naive_ci_high - independent.naive_ci_low  # type: ignore[operator]
    assert width_c > 1.4 * width_i  # three near-copies per user: about sqrt(3) wider
    _, _, low, high = cluster_robust_slope(y, t, user)
    assert (clustered.naive_ci_low, clustered.naive_ci_high) == pytest.approx((low, high))


def test_estimate_is_the_residual_on_residual_slope_of_statsmodels() -> None:
    y, d, w, _ = _plr_world(800, seed=2)
    (result,) = estimate_partially_linear(y, d[:, 0], w, folds=4, seed=7, standardize=False)
    folds = KFold(n_splits=4, shuffle=True, random_state=7).split(w)
    fold_id = np.empty(len(y), dtype=int)
    for k, (_, test) in enumerate(folds):
        fold_id[test] = k
    y_res, d_res = cross_fitted_residuals(y, d[:, 0], w, fold_id, Ridge(alpha=1.0))
    fit = sm.OLS(y_res, d_res).fit(cov_type="HC0")
    assert result.ate == pytest.approx(fit.params[0], rel=1e-9)
    assert result.se == pytest.approx(fit.bse[0], rel=1e-9)


def test_matches_econml_linear_dml_with_the_same_folds() -> None:
    dml = pytest.importorskip("econml.dml", reason="econml (audit-sdk[causal]) not installed")
    y, d, w, _ = _plr_world(800, seed=3)
    (ours,) = estimate_partially_linear(y, d[:, 0], w, folds=5, seed=11, standardize=False)
    cv = list(KFold(n_splits=5, shuffle=True, random_state=11).split(w))
    reference = dml.LinearDML(model_y=Ridge(alpha=1.0), model_t=Ridge(alpha=1.0), cv=cv)
    reference.fit(y, d[:, 0], X=None, W=w)
    assert ours.ate == pytest.approx(float(np.ravel(reference.ate())[0]), rel=1e-6)


N_SEEDS = 150


@pytest.fixture(scope="module")
def plr_runs() -> dict[str, np.ndarray]:
    est = np.empty((N_SEEDS, 3))
    low = np.empty((N_SEEDS, 3))
    high = np.empty((N_SEEDS, 3))
    sig = np.empty((N_SEEDS, 3), dtype=bool)
    naive = np.empty((N_SEEDS, 3))
    for seed in range(N_SEEDS):
        y, d, w, _ = _plr_world(600, seed=seed)
        for j, r in enumerate(estimate_partially_linear(y, d, w, seed=seed)):
            assert r.estimated and r.overlap_failed is None
            est[seed, j], low[seed, j], high[seed, j] = r.ate, r.ci_low, r.ci_high
            sig[seed, j] = bool(r.significant)
            naive[seed, j] = r.naive_diff
    return {"est": est, "low": low, "high": high, "sig": sig, "naive": naive}


@pytest.mark.slow
def test_planted_shares_are_recovered_with_nominal_coverage(
    plr_runs: dict[str, np.ndarray],
) -> None:
    truth = np.array(THETA)
    covered = (plr_runs["low"] <= truth) & (truth <= plr_runs["high"])
    assert np.all(covered.mean(axis=0) >= 0.90), covered.mean(axis=0)
    assert covered.mean() <= 0.985
    mc_se = plr_runs["est"].std(axis=0, ddof=1) / math.sqrt(N_SEEDS)
    assert np.all(np.abs(plr_runs["est"].mean(axis=0) - truth) < 4 * mc_se)
    # the naive slope is confounded (share 1 and 3 move with W's non-linear effect)
    assert abs(plr_runs["naive"][:, 0].mean() - truth[0]) > 0.5


@pytest.mark.slow
def test_null_share_rarely_significant(plr_runs: dict[str, np.ndarray]) -> None:
    assert plr_runs["sig"][:, 1].mean() <= 0.08  # false alarms on the null share
    assert plr_runs["sig"][:, 0].mean() >= 0.8  # power on the planted -1.5


def test_clustered_units_widen_the_interval() -> None:
    y, d, w, groups = _plr_world(1200, seed=5, clusters=150)
    clustered = estimate_partially_linear(y, d, w, groups=groups)
    plain = estimate_partially_linear(y, d, w)
    assert clustered[0].se is not None and plain[0].se is not None
    assert clustered[0].se > 0  # cluster sums used; grouped folds keep users together


def test_share_the_covariates_determine_fails_overlap() -> None:
    rng = np.random.default_rng(6)
    w = rng.standard_normal((500, 2))
    d = 0.3 + 0.1 * w[:, 0] + 0.001 * rng.standard_normal(500)
    y = d + w[:, 1] + rng.standard_normal(500)
    (result,) = estimate_partially_linear(y, d, w)
    assert result.overlap_failed is not None and "R^2" in result.overlap_failed
    assert not result.trusted


def test_degenerate_shares_are_skipped_with_the_reason() -> None:
    rng = np.random.default_rng(7)
    w = rng.standard_normal((100, 2))
    y = rng.standard_normal(100)
    d = np.column_stack([np.full(100, 0.2), np.r_[np.full(95, 0.0), np.full(5, 0.3)]])
    constant, rare = estimate_partially_linear(y, d, w, min_units=20)
    assert constant.skipped is not None and "same" in constant.skipped
    assert rare.skipped is not None and "only 5 units" in rare.skipped


@pytest.mark.slow
def test_difference_of_two_generators_effects_covers_the_planted_difference() -> None:
    """Two generators rate the same users; the difference of their effects, paired through the
    influence functions, covers the planted difference at about the nominal rate."""
    from audit_sdk.stats.cluster_robust import difference_of_estimates

    from .causal_worlds import confounded_world

    covered, widths_paired, widths_independent = [], [], []
    for seed in range(40):
        world = confounded_world(1200, seed=seed)
        rng = np.random.default_rng([seed, 5])
        shift = np.array([0.0, 0.0, 0.0, 0.4, 0.0, 0.0])  # B adds +0.4 on metal
        y_b = world.y + world.treatments @ shift + 0.5 * rng.standard_normal(len(world.y))
        ia: list[np.ndarray] = []
        ib: list[np.ndarray] = []
        ra = estimate_ates(world.y, world.treatments, world.covariates, influence_out=ia, seed=seed)
        rb = estimate_ates(y_b, world.treatments, world.covariates, influence_out=ib, seed=seed)
        users = np.arange(len(world.y))
        for j in range(len(shift)):  # metal differs by 0.4, the others by 0
            _, se, low, high = difference_of_estimates(
                rb[j].ate,
                ib[0][:, j],
                users,
                ra[j].ate,
                ia[0][:, j],
                users,  # type: ignore[arg-type]
            )
            covered.append(low <= shift[j] <= high)
            widths_paired.append(se)
            widths_independent.append(math.hypot(ra[j].se, rb[j].se))  # type: ignore[arg-type]
    assert 0.92 <= np.mean(covered) <= 0.98, np.mean(covered)
    # the shared outcome noise cancels: pairing is much tighter than independent errors
    assert np.mean(widths_paired) < 0.8 * np.mean(widths_independent)
