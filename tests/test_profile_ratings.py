"""profile_ratings on a table shaped like the seed study's (user x generator x window x
profile, own and others' profiles rated 1-7, with downstream utility): planted relative
rating, generator effect and rating-utility correlation are recovered with cluster-bootstrap
CIs; bad input gives a clear error or a skip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors.profile_ratings import ProfileRatingsDetector, cluster_resample
from scipy import stats

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.errors import AuditSDKError
from audit_sdk.interfaces import AuditContext, SubjectOutputs
from audit_sdk.report_model import Finding
from audit_sdk.testing import check_detector, make_host

OWN_BONUS = 0.6
GENERATOR_SHIFT = {"gen-a": 0.0, "gen-b": 0.5, "gen-c": 0.0}


def study_table(seed: int, n_users: int = 120, *, user_sd: float = 0.5) -> pd.DataFrame:
    """One row per user x generator x window x profile (own + two others'), continuous
    ratings on the 1-7 scale (the mean of a few Likert items) and a utility column."""
    rng = np.random.default_rng([seed, 77])
    rows = []
    user_effect = user_sd * rng.standard_normal(n_users)
    for u in range(n_users):
        for generator, shift in GENERATOR_SHIFT.items():
            for window in ("30d", "1y"):
                for own in (True, False, False):
                    utility = rng.beta(2, 5)
                    rating = 3.5 + shift + OWN_BONUS * own + 2.0 * utility + user_effect[u]
                    rows.append(
                        {
                            "user_id": f"u{u:03d}",
                            "model": generator,
                            "window": window,
                            "is_own_profile": own,
                            "rating": float(np.clip(rating + 0.7 * rng.standard_normal(), 1, 7)),
                            "downstream_ndcg@10": utility,
                        }
                    )
    return pd.DataFrame(rows)


def _context(profiles: pd.DataFrame, seed: int = 0) -> AuditContext:
    users = pd.DataFrame(index=pd.Index(sorted(profiles["user_id"].unique()), name="user_id"))
    users["gs_score"] = np.random.default_rng(seed).uniform(size=len(users))  # for regressions
    catalog = pd.DataFrame({"title": ["x"]}, index=pd.Index(["i0"], name="item_id"))
    interactions = pd.DataFrame({"user_id": users.index[:1], "item_id": ["i0"], "plays": [1.0]})
    dataset = Dataset(
        name="study",
        interactions=Interactions(interactions),
        catalog=Catalog(catalog),
        users=Users(users.assign(age=30)),
    )
    return AuditContext.from_tables(
        config=AuditConfig(seed=seed, stats={"bootstrap_resamples": 300}),
        dataset=dataset,
        user_table=users,
        group_columns=[],
        subject=SubjectOutputs(name="s", adapter="logged", fingerprint="0" * 64, profiles=profiles),
    )


def _detect(profiles: pd.DataFrame, seed: int = 0, **params: object) -> dict[str, Finding]:
    detector = ProfileRatingsDetector(ProfileRatingsDetector.Params(anova_resamples=60, **params))
    return {f.metric: f for f in detector.detect(_context(profiles, seed))}


def test_cluster_resample_keeps_each_users_rows_together() -> None:
    users = np.array([0, 0, 1, 2, 2, 2, 1])
    rows = cluster_resample(users, np.random.default_rng(0))
    counts = np.bincount(users[rows], minlength=3)
    multiples = np.array([2, 2, 3])
    assert ((counts % multiples) == 0).all() and counts.sum() > 0
    again = cluster_resample(users, np.random.default_rng(0))
    np.testing.assert_array_equal(rows, again)


def test_planted_effects_recovered_over_seeds() -> None:
    # population Spearman rho of rating vs utility, from one large draw of the same process
    big = study_table(999, n_users=3000)
    rho = stats.spearmanr(big["rating"], big["downstream_ndcg@10"]).statistic
    covered = {"relative": 0, "rho": 0}
    seeds = range(6)
    for seed in seeds:
        found = _detect(study_table(seed), seed)
        relative = found["rating:relative"]
        assert relative.ci_low is not None and relative.ci_high is not None
        covered["relative"] += relative.ci_low <= OWN_BONUS <= relative.ci_high
        generator = found["rating:anova:generator"]
        assert generator.ci_low is not None and generator.ci_low > 0.01
        assert found["rating:anova:window"].estimate < 0.01
        spearman = found["rating:spearman:downstream_ndcg@10"]
        assert spearman.ci_low is not None and spearman.ci_high is not None
        covered["rho"] += spearman.ci_low <= rho <= spearman.ci_high
        assert {r.group for r in spearman.groups} == set(GENERATOR_SHIFT)
    assert covered["relative"] >= 5 and covered["rho"] >= 5, covered


def test_anova_table_is_statsmodels_type_ii() -> None:
    sm = pytest.importorskip("statsmodels.api")
    smf = pytest.importorskip("statsmodels.formula.api")
    table = study_table(3)
    found = _detect(table)
    data = table.rename(columns={"model": "generator"})
    fit = smf.ols("rating ~ C(generator) * C(window)", data=data).fit()
    ref = sm.stats.anova_lm(fit, typ=2)
    ss = ref["sum_sq"]
    term = "C(generator):C(window)"
    eta = ss[term] / (ss[term] + ss["Residual"])
    assert found["rating:anova:generator:window"].estimate == pytest.approx(eta)
    assert found["rating:anova:generator"].details["F"] == pytest.approx(
        ref.loc["C(generator)", "F"]
    )


def test_cluster_ci_is_wider_than_a_row_bootstrap_would_be() -> None:
    """Strong user effects make a user's 18 rows alike: resampling users gives a wider (honest)
    interval than treating the same rows as 18 x more users."""
    table = study_table(4, n_users=60, user_sd=1.5)
    clustered = _detect(table)["rating:spearman:downstream_ndcg@10"]
    as_rows = table.assign(user_id=[f"r{i}" for i in range(len(table))], is_own_profile=False)
    naive = _detect(as_rows)["rating:spearman:downstream_ndcg@10"]
    assert naive.n == len(table) and clustered.n == 60
    assert clustered.ci_high is not None and clustered.ci_low is not None
    assert naive.ci_high is not None and naive.ci_low is not None
    assert clustered.ci_high - clustered.ci_low > 1.3 * (naive.ci_high - naive.ci_low)


def test_bad_ratings_are_clear_errors_or_skips() -> None:
    table = study_table(5, n_users=10)
    outside = table.copy()
    outside.loc[7, "rating"] = 9.0
    with pytest.raises(AuditSDKError, match=r"rating 9 at row 7 is outside the scale \[1, 7\]"):
        _detect(outside)
    strings = table.astype({"rating": object})
    strings.loc[2, "rating"] = "great"
    with pytest.raises(AuditSDKError, match="non-number 'great' at row 2"):
        _detect(strings)
    only_own = table[table["is_own_profile"]]
    found = _detect(only_own)
    assert found["rating:relative"].status == "skipped"
    assert "needs both rows" in found["rating:relative"].explanation
    no_rating = _detect(table.drop(columns=["rating"]))
    assert no_rating["rating:relative"].status == "skipped"
    one_cell = table[(table["model"] == "gen-a") & (table["window"] == "30d")]
    assert _detect(one_cell)["rating:anova:generator"].status == "skipped"


def test_registered_through_the_entry_point() -> None:
    host = make_host()
    assert "profile_ratings" in {r.name for r in host.registry.all() if r.kind == "detector"}


def test_relative_rating_from_a_baseline_column_equals_the_own_rows_form() -> None:
    table = study_table(8, n_users=40)
    keys = ["user_id", "model", "window"]
    others = table[~table["is_own_profile"]].groupby(keys)["rating"].mean()
    own = table[table["is_own_profile"]].set_index(keys)
    logged = own.assign(baseline_rating=others).reset_index().drop(columns=["is_own_profile"])
    from_rows = _detect(table)["rating:relative"]
    from_column = _detect(logged)["rating:relative"]
    assert from_column.estimate == pytest.approx(from_rows.estimate)
    assert from_column.n == from_rows.n == 40


@pytest.mark.parametrize("seed", range(3))
def test_conformance_suite(seed: int) -> None:
    detector = ProfileRatingsDetector(ProfileRatingsDetector.Params(anova_resamples=60))
    findings = check_detector(detector, _context(study_table(seed, n_users=60), seed))
    assert {f.status for f in findings} == {"pass"}
