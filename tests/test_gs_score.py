"""GS-score feature: the closed form against the definition, planted taste breadth, determinism,
NaN reasons, and registration through the entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.features.generalist_specialist import (
    NO_PLAYS,
    GeneralistSpecialistScore,
    gs_scores,
    gs_undefined_reasons,
    positive_pmi,
    ppmi_item_vectors,
)
from scipy import sparse, stats

from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.features import UserFeatures
from audit_sdk.testing import make_host


def _features(seed: int, n_users: int = 300) -> tuple[UserFeatures, pd.DataFrame]:
    world = generate_world(SyntheticWorldParams(seed=seed, n_users=n_users))
    users = list(world.users.frame.index)
    feature = GeneralistSpecialistScore()
    return UserFeatures(world, users, extra={"gs_score": feature}), world.metadata["truth"]


def _gs_by_definition(plays: np.ndarray, vectors: np.ndarray, min_items: int) -> np.ndarray:
    """Waller & Anderson (2019) Eq. 1 user by user: weighted mean cosine to the centre."""
    out = np.full(len(plays), np.nan)
    norms = np.linalg.norm(vectors, axis=1)
    for u, row in enumerate(plays):
        items = np.flatnonzero((row > 0) & (norms > 0))
        if len(items) < min_items:
            continue
        unit = vectors[items] / norms[items, None]
        w = row[items]
        centre = (w[:, None] * unit).sum(axis=0) / w.sum()
        cosines = unit @ centre / np.linalg.norm(centre)
        out[u] = float((w * cosines).sum() / w.sum())
    return out


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_equals_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.4, size=(60, 40)).astype(float) * rng.integers(1, 5, size=(60, 40))
    vectors = rng.normal(size=(40, 6))
    vectors[3] = 0.0  # an item without a vector is left out of every user
    expected = _gs_by_definition(dense, vectors, min_items=3)
    got = gs_scores(sparse.csr_matrix(dense), vectors, min_items=3)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    finite = got[np.isfinite(got)]
    assert finite.size and (finite >= 0).all() and (finite <= 1).all()


def test_ppmi_matches_dense_formula() -> None:
    rng = np.random.default_rng(3)
    counts = (rng.random((30, 20)) < 0.3).astype(float)
    a = 0.75
    n_i = counts.sum(axis=0) ** a
    p_i = n_i / n_i.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts / (counts.sum(axis=1, keepdims=True) * p_i[None, :]))
    expected = np.where(counts > 0, np.maximum(pmi, 0.0), 0.0)
    got = positive_pmi(sparse.csr_matrix(counts), smoothing=a).toarray()
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_planted_specialists_score_higher(seed: int) -> None:
    features, truth = _features(seed)
    gs = features.get("gs_score")
    concentration = truth["taste_concentration"].reindex(gs.index)
    # small Dirichlet concentration = narrow taste = specialist = high GS
    rho = stats.spearmanr(gs, np.log(concentration), nan_policy="omit").statistic
    assert rho < -0.5, rho
    low = gs[concentration < concentration.quantile(0.2)].mean()
    high = gs[concentration > concentration.quantile(0.8)].mean()
    assert low > high + 0.05


def test_identical_for_a_seed_and_independent_of_the_order_of_users() -> None:
    first, _ = _features(7, n_users=200)
    second, _ = _features(7, n_users=200)
    a, b = first.get("gs_score"), second.get("gs_score")
    pd.testing.assert_series_equal(a, b)
    world = first.train
    shuffled = list(np.random.default_rng(0).permutation(first.users))
    third = UserFeatures(world, shuffled, extra={"gs_score": GeneralistSpecialistScore()})
    pd.testing.assert_series_equal(third.get("gs_score").reindex(a.index), a, rtol=1e-9)


def test_undefined_below_min_items_with_reasons() -> None:
    dense = np.zeros((4, 6))
    dense[0, :5] = 1.0  # five items: defined
    dense[1, :2] = 3.0  # two items: too few
    # user 2 never played anything
    dense[3, :6] = 1.0
    vectors = np.random.default_rng(0).normal(size=(6, 3))
    scores = gs_scores(sparse.csr_matrix(dense), vectors, min_items=5)
    assert np.isfinite(scores[[0, 3]]).all() and np.isnan(scores[[1, 2]]).all()
    reasons = gs_undefined_reasons(sparse.csr_matrix(dense), scores, min_items=5)
    assert reasons == {NO_PLAYS: 1, "fewer than 5 distinct items with an embedding": 1}


def test_item_vectors_are_capped_to_the_rank_and_zero_for_unplayed_items() -> None:
    dense = np.zeros((5, 8))
    dense[:, :4] = np.random.default_rng(1).random((5, 4)) < 0.8
    vectors = ppmi_item_vectors(sparse.csr_matrix(dense), dimensions=64)
    assert vectors.shape == (8, 4)
    np.testing.assert_array_equal(vectors[4:], 0.0)


def test_registered_through_the_entry_point() -> None:
    host = make_host()
    names = {reg.name for reg in host.registry.all() if reg.kind == "feature"}
    assert "gs_score" in names
