"""Chunked, candidate-based baselines give the lists a brute-force ranking of the whole catalog
gives, whatever the chunk size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.adapters.baseline_recommenders import (
    ItemKNNRecommender,
    PopularityRecommender,
    RandomRecommender,
)

from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.memory_budget import MemoryBudget, use_memory_budget


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return generate_world(SyntheticWorldParams(seed=3, n_users=300, n_artists=60))


def _brute_force(adapter, users: list[str], k: int) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Score every item for every user, drop the seen ones, sort (score desc, item order)."""
    rows = adapter.users_.get_indexer(pd.Index(users))
    scores = np.asarray(adapter._scores(rows, users), dtype=float).copy()
    out = []
    for i, user in enumerate(users):
        if rows[i] >= 0:
            scores[i, adapter.matrix_[rows[i]].indices] = -np.inf
        order = np.lexsort((np.arange(scores.shape[1]), -scores[i]))[:k]
        order = order[np.isfinite(scores[i, order])]
        out += [(user, r + 1, adapter.items_[j]) for r, j in enumerate(order)]
    return pd.DataFrame(out, columns=["user_id", "rank", "item_id"])


@pytest.mark.parametrize(
    "adapter",
    [
        PopularityRecommender(),
        ItemKNNRecommender(),
        ItemKNNRecommender(ItemKNNRecommender.Params(neighbours=10)),
    ],
    ids=["popularity", "item_knn", "item_knn_10_neighbours"],
)
def test_candidate_ranking_equals_brute_force(world, adapter) -> None:  # type: ignore[no-untyped-def]
    adapter.fit(world)
    users = [*world.users.frame.index[:120], "someone-new"]
    ours = adapter.recommend(users, k=10)
    expected = _brute_force(adapter, users, 10)
    pd.testing.assert_frame_equal(ours[["user_id", "rank", "item_id"]], expected)
    with use_memory_budget(MemoryBudget(4 * 25 * len(adapter.items_) * 7)):  # 7 users a chunk
        chunked = adapter.recommend(users, k=10)
    pd.testing.assert_frame_equal(chunked, ours)


def test_random_lists_are_unseen_distinct_and_per_user(world) -> None:  # type: ignore[no-untyped-def]
    adapter = RandomRecommender()
    adapter.fit(world)
    users = list(world.users.frame.index[:200])
    recs = adapter.recommend(users, k=10)
    assert (recs.groupby("user_id").size() == 10).all()
    assert not recs.duplicated(["user_id", "item_id"]).any()
    train = world.interactions.frame[["user_id", "item_id"]].drop_duplicates()
    assert recs.merge(train, on=["user_id", "item_id"]).empty
    # A user's list does not depend on who else is in the batch.
    alone = adapter.recommend(users[5:6], k=10)
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True),
        recs[recs["user_id"] == users[5]].reset_index(drop=True),
    )
    # Items are drawn uniformly: counts per item spread no more than Poisson counts would.
    counts = recs["item_id"].value_counts().reindex(adapter.items_, fill_value=0)
    assert counts.std() < 1.3 * np.sqrt(counts.mean())
    # Another seed, other lists.
    other = RandomRecommender(RandomRecommender.Params(seed=1))
    other.fit(world)
    assert not other.recommend(users[:3], k=10).equals(recs.head(30))
