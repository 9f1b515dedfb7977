"""The fast AIPW path: equal to econml's DRLearner, right on planted truth, safe on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from statsmodels.stats.multitest import multipletests

from audit_sdk.stats.aipw import (
    AIPWResult,
    aipw_ate,
    estimate_ates,
    welch_difference,
)
from audit_sdk.stats.drlearner_reference import estimate_ates_econml

from .causal_worlds import PLANTED, confounded_world

econml_dr = pytest.importorskip("econml.dr", reason="econml (audit-sdk[causal]) not installed")


def _clipped_world(n: int = 900, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two treatments, one with strong confounding so that some propensities get clipped."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, 4))
    logits = np.column_stack([2.5 * w[:, 0] - 0.5, 0.8 * w[:, 1] - 0.6 * w[:, 2]])
    t = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(int)
    y = w[:, 0] + 0.5 * w[:, 1] ** 2 + 0.4 * t[:, 0] - 0.2 * t[:, 1] + rng.normal(size=n)
    return y, t, w


# ---------------------------------------------------------------------------------------------
# equality with the reference


def test_joint_mode_equals_econml_drlearner_with_the_same_folds_and_models() -> None:
    y, t, w = _clipped_world()
    n = len(y)
    propensity = LogisticRegression(C=0.5, max_iter=1000)
    regression = Ridge(alpha=2.0)
    for j in range(t.shape[1]):
        folds = list(StratifiedKFold(5, shuffle=True, random_state=11).split(w, t[:, j]))
        ours = estimate_ates(
            y,
            t[:, j],
            w,
            folds=folds,
            clip=(0.02, 0.98),
            propensity_model=propensity,
            outcome_model=regression,
            outcome_form="joint",
            standardize=False,
            min_units_per_arm=10,
        )[0]
        reference = econml_dr.DRLearner(
            model_propensity=propensity,
            model_regression=regression,
            cv=folds,
            min_propensity=0.02,
            random_state=0,
        ).fit(y, t[:, j], X=None, W=w)
        assert ours.overlap is not None
        if j == 0:
            assert ours.overlap.share_clipped > 0.02  # clipping is exercised
        assert ours.ate == pytest.approx(float(reference.ate()), abs=1e-6)
        # econml's final stage (statsmodels, HC1 on a constant) divides by n, we by n - 1
        econml_se = float(reference.ate_inference().stderr_mean)
        assert ours.se * math.sqrt((n - 1) / n) == pytest.approx(econml_se, rel=1e-6)


def test_default_folds_are_econml_default_folds() -> None:
    # folds=K with seed s is StratifiedKFold(K, shuffle=True, random_state=s) on the treatment,
    # which is what DRLearner(cv=K, random_state=s) draws
    y, t, w = _clipped_world(seed=8)
    ours = estimate_ates(y, t[:, 1], w, folds=4, seed=3, outcome_form="joint", standardize=False)[0]
    reference = econml_dr.DRLearner(
        model_propensity=LogisticRegression(max_iter=1000),
        model_regression=Ridge(alpha=1.0),
        cv=4,
        min_propensity=0.01,
        random_state=3,
    ).fit(y, t[:, 1], X=None, W=w)
    assert ours.ate == pytest.approx(float(reference.ate()), abs=1e-6)


def test_econml_wrapper_matches_fast_path() -> None:
    y, t, w = _clipped_world(seed=9)
    fast = estimate_ates(y, t, w, outcome_form="joint", clip=(0.02, 0.98), seed=4)
    reference = estimate_ates_econml(y, t, w, clip=(0.02, 0.98), seed=4)
    for a, b in zip(fast, reference, strict=True):
        assert a.ate == pytest.approx(b.ate, abs=1e-6)
        assert a.naive_diff == pytest.approx(b.naive_diff, abs=1e-12)
        assert a.overlap is not None and b.overlap is not None
        assert a.overlap.counts_treated == b.overlap.counts_treated
        assert a.significant == b.significant


def test_closed_form_ridge_equals_scikit_learn_refits() -> None:
    # Ridge(solver="svd") is not taken for the closed form, so it refits through scikit-learn
    y, t, w = _clipped_world(seed=2)
    for form in ("separate", "joint"):
        fast = estimate_ates(y, t, w, outcome_form=form, outcome_model=Ridge(alpha=3.0))
        refit = estimate_ates(
            y, t, w, outcome_form=form, outcome_model=Ridge(alpha=3.0, solver="svd")
        )
        for a, b in zip(fast, refit, strict=True):
            assert a.ate == pytest.approx(b.ate, abs=1e-9)
            assert a.se == pytest.approx(b.se, rel=1e-9)


def test_gradient_boosting_outcome_model_recovers_the_effect() -> None:
    world = confounded_world(2000, seed=1)
    j = world.names.index("metal")
    result = estimate_ates(
        world.y,
        world.treatments[:, j],
        world.covariates,
        outcome_model="gradient_boosting",
        treatment_names=["metal"],
    )[0]
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low < PLANTED["metal"] < result.ci_high


# ---------------------------------------------------------------------------------------------
# planted truth over many seeds

N_SEEDS = 300
N_UNITS = 2000


@pytest.fixture(scope="module")
def planted_runs() -> dict[str, np.ndarray]:
    """AIPW and naive estimates in N_SEEDS confounded worlds (about 15 s on 2 cores)."""
    fields = ("ate", "ci_low", "ci_high", "naive", "significant", "clipped")
    out = {name: np.empty((N_SEEDS, 6)) for name in fields}
    truth = None
    for seed in range(N_SEEDS):
        world = confounded_world(N_UNITS, seed=seed)
        truth = world.truth
        results = estimate_ates(
            world.y, world.treatments, world.covariates, treatment_names=world.names, seed=seed
        )
        for j, r in enumerate(results):
            assert r.estimated and r.overlap is not None
            out["ate"][seed, j] = r.ate
            out["ci_low"][seed, j] = r.ci_low
            out["ci_high"][seed, j] = r.ci_high
            out["naive"][seed, j] = r.naive_diff
            out["significant"][seed, j] = bool(r.significant)
            out["clipped"][seed, j] = r.overlap.share_clipped
    assert truth is not None
    out["truth"] = truth
    return out


def test_naive_difference_is_biased_and_aipw_is_not(planted_runs: dict[str, np.ndarray]) -> None:
    truth = planted_runs["truth"]
    ate, naive = planted_runs["ate"], planted_runs["naive"]
    mc_se = ate.std(axis=0, ddof=1) / math.sqrt(N_SEEDS)
    aipw_bias = ate.mean(axis=0) - truth
    naive_bias = naive.mean(axis=0) - truth
    # every treatment but pop is confounded by age and activity in this world
    confounded = np.abs(naive_bias) > 0.05
    assert confounded.sum() >= 4
    for j in np.flatnonzero(confounded):
        assert abs(naive_bias[j]) > 10 * mc_se[j]
    assert np.all(np.abs(aipw_bias) < 4 * mc_se), (aipw_bias, mc_se)
    assert np.all(np.abs(aipw_bias) < 0.03)


def test_confidence_intervals_cover_the_planted_effects(
    planted_runs: dict[str, np.ndarray],
) -> None:
    truth = planted_runs["truth"]
    covered = (planted_runs["ci_low"] <= truth) & (truth <= planted_runs["ci_high"])
    coverage = covered.mean(axis=0)
    for j in np.flatnonzero(truth != 0):
        assert 0.90 <= coverage[j] <= 0.98, coverage
    assert 0.92 <= covered.mean() <= 0.97, coverage  # pooled over all treatments
    assert np.all(coverage >= 0.88), coverage


def test_null_genres_stay_non_significant_after_bh(planted_runs: dict[str, np.ndarray]) -> None:
    truth = planted_runs["truth"]
    significant = planted_runs["significant"].astype(bool)
    null = truth == 0
    assert (~significant[:, null]).mean() >= 0.95
    assert np.all(significant[:, null].mean(axis=0) <= 0.08)
    # and the planted effects are found
    assert significant[:, ~null].mean() >= 0.99
    assert planted_runs["clipped"].max() < 0.05


# ---------------------------------------------------------------------------------------------
# inference details


def test_benjamini_hochberg_and_fcr_intervals() -> None:
    world = confounded_world(1500, seed=3)
    results = estimate_ates(
        world.y, world.treatments, world.covariates, treatment_names=world.names, fdr_q=0.1
    )
    pvals = [r.p_value for r in results]
    reject, qvals, _, _ = multipletests(pvals, alpha=0.1, method="fdr_bh")
    assert [r.q_value for r in results] == pytest.approx(list(qvals))
    assert [r.significant for r in results] == list(reject)
    selected = int(reject.sum())
    assert selected >= 2
    level = 1 - selected * 0.1 / len(results)
    z = sps.norm.ppf(1 - (1 - level) / 2)
    for r in results:
        assert r.fcr_level == pytest.approx(level)
        assert r.fcr_ci_low == pytest.approx(r.ate - z * r.se)
        assert r.fcr_ci_high == pytest.approx(r.ate + z * r.se)
        # wider than the marginal interval; excludes 0 exactly for the selected ones
        assert r.fcr_ci_low < r.ci_low and r.fcr_ci_high > r.ci_high
        assert r.significant == (r.fcr_ci_low > 0 or r.fcr_ci_high < 0)


def test_no_selection_gives_bonferroni_intervals() -> None:
    world = confounded_world(800, seed=4, effects={})
    results = estimate_ates(world.y, world.treatments, world.covariates, fdr_q=0.05)
    assert not any(r.significant for r in results)
    m = len(results)
    for r in results:
        assert r.fcr_level == pytest.approx(1 - 0.05 / m)


def test_welch_difference_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(1.0, 2.0, 40), rng.normal(0.0, 0.5, 90)])
    t = np.concatenate([np.ones(40), np.zeros(90)])
    diff, low, high = welch_difference(y, t, confidence=0.9)
    test = sps.ttest_ind(y[t == 1], y[t == 0], equal_var=False)
    ci = test.confidence_interval(confidence_level=0.9)
    assert (diff, low, high) == pytest.approx(
        (y[t == 1].mean() - y[t == 0].mean(), ci.low, ci.high)
    )


def test_bootstrap_percentile_agrees_with_influence_function() -> None:
    world = confounded_world(2000, seed=6)
    kwargs = {"treatment_names": world.names, "seed": 6}
    analytic = estimate_ates(world.y, world.treatments, world.covariates, **kwargs)
    boot = estimate_ates(world.y, world.treatments, world.covariates, bootstrap=2000, **kwargs)
    again = estimate_ates(world.y, world.treatments, world.covariates, bootstrap=2000, **kwargs)
    for a, b, c in zip(analytic, boot, again, strict=True):
        assert b.ate == a.ate  # same nuisances, same point estimate
        assert b.ci_method is not None and b.ci_method.startswith("bootstrap-percentile")
        width = a.ci_high - a.ci_low
        assert abs(b.ci_low - a.ci_low) < 0.1 * width
        assert abs(b.ci_high - a.ci_high) < 0.1 * width
        assert (b.ci_low, b.ci_high, b.fcr_ci_low) == (c.ci_low, c.ci_high, c.fcr_ci_low)


def test_clustered_units_get_cluster_robust_errors() -> None:
    world = confounded_world(1500, seed=7)
    j = world.names.index("metal")
    once = aipw_ate(world.y, world.treatments[:, j], world.covariates)
    copies = 3
    y = np.repeat(world.y, copies)
    t = np.repeat(world.treatments[:, j], copies)
    w = np.repeat(world.covariates, copies, axis=0)
    users = np.repeat(np.arange(len(world.y)), copies)
    clustered = aipw_ate(y, t, w, groups=users)
    naive_iid = aipw_ate(y, t, w)  # pretends the copies are independent users
    assert clustered.se == pytest.approx(once.se, rel=0.1)
    assert naive_iid.se < 0.7 * once.se
    boot = aipw_ate(y, t, w, groups=users, bootstrap=1000)
    assert boot.ci_high - boot.ci_low == pytest.approx(
        clustered.ci_high - clustered.ci_low, rel=0.15
    )


# ---------------------------------------------------------------------------------------------
# degenerate input


def _skipped(result: AIPWResult) -> str:
    assert not result.estimated
    assert result.skipped is not None
    return result.skipped


def test_degenerate_treatments_are_skipped_with_the_reason() -> None:
    rng = np.random.default_rng(1)
    n = 300
    w = rng.normal(size=(n, 2))
    y = w[:, 0] + rng.normal(size=n)
    few = np.zeros(n, dtype=int)
    few[:7] = 1
    t = np.column_stack(
        [np.zeros(n, int), np.ones(n, int), few, 1 - few, (rng.random(n) < 0.5).astype(int)]
    )
    names = ["nobody", "everybody", "few", "few_controls", "fine"]
    results = estimate_ates(y, t, w, treatment_names=names, min_units_per_arm=20)
    assert "no unit is treated" in _skipped(results[0])
    assert "every unit is treated" in _skipped(results[1])
    assert "only 7 treated" in _skipped(results[2])
    assert "only 7 control" in _skipped(results[3])
    assert results[4].estimated
    # BH runs over the estimated treatments only
    assert results[4].fcr_level == pytest.approx(1 - 0.05 / 1)


def test_constant_outcome_is_skipped() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(size=(200, 2))
    t = (rng.random((200, 2)) < 0.5).astype(int)
    results = estimate_ates(np.full(200, 0.25), t, w)
    assert all("outcome is constant" in _skipped(r) for r in results)


def test_positivity_failure_warns() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    w = rng.normal(size=(n, 2))
    t = (w[:, 0] > 0.3).astype(int)  # the treatment is a function of a covariate
    y = w[:, 0] + 0.2 * t + rng.normal(size=n)
    result = aipw_ate(y, t, w)
    assert result.overlap is not None
    assert result.overlap.share_clipped > 0.05
    assert any(w_.startswith("positivity") for w_ in result.warnings)
    hist = result.overlap.histogram()
    assert sum(hist["counts_treated"]) == t.sum()
    assert sum(hist["counts_control"]) == n - t.sum()
    assert len(hist["edges"]) == len(hist["counts_treated"]) + 1


def test_explicit_folds_missing_an_arm_are_skipped() -> None:
    n = 100
    t = np.zeros(n, dtype=int)
    t[:25] = 1
    w = np.arange(n, dtype=float).reshape(-1, 1)
    y = np.arange(n, dtype=float)
    folds = [(np.arange(25, n), np.arange(25)), (np.arange(25), np.arange(25, n))]
    result = aipw_ate(y, t, w, folds=folds, min_units_per_arm=2)
    assert "no treated units" in _skipped(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"Y": [1.0, math.nan, 2.0, 3.0]}, "missing or infinite value at unit 1"),
        ({"T": [0, 1, 2, 1]}, "0/1 indicators"),
        ({"clip": (0.5, 0.4)}, "0 < low < high < 1"),
        ({"folds": 1}, "at least 2 folds"),
        ({"W": [[0.0], [math.inf], [1.0], [2.0]]}, "covariate column 0"),
        ({"outcome_model": "forest"}, "unknown outcome_model"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "Y": [1.0, 2.0, 3.0, 4.0],
        "T": [0, 1, 0, 1],
        "W": [[0.0], [1.0], [2.0], [3.0]],
    }
    for key in ("Y", "T", "W"):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        estimate_ates(args["Y"], args["T"], np.asarray(args["W"]), **kwargs)  # type: ignore[arg-type]
