"""Personalization detector parts: Kendall tau on rank vectors (and the ordering pitfall),
group construction against a brute-force rule, and answer parsing."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors._personalization_groups import (
    GroupSettings,
    build_groups,
    rating_timelines,
)
from audit_sdk.plugins.detectors._personalization_metrics import (
    group_taus,
    ordering_tau,
    rank_tau,
    user_concordance,
)
from audit_sdk.plugins.detectors._personalization_prompts import (
    parse_preferred,
    parse_ranking,
    parse_rating,
)
from audit_sdk.plugins.detectors._personalization_scorers import item_knn_scorer
from scipy import stats

from tests.personalization_worlds import rating_world


def test_rank_tau_is_scipy_tau_b_on_rank_vectors_and_zero_for_constant_predictions():
    predicted = np.array([0.1, 0.5, 0.5, 2.0])
    truth = np.array([1.0, 3.0, 2.0, 4.0])
    expected = stats.kendalltau(stats.rankdata(predicted), stats.rankdata(truth)).statistic
    assert rank_tau(predicted, truth) == pytest.approx(expected)
    assert rank_tau(np.array([2.0, 2.0, 2.0]), truth[:3]) == 0.0
    assert rank_tau(truth, truth) == pytest.approx(1.0)
    assert rank_tau(-truth, truth) == pytest.approx(-1.0)


def test_perrecbench_ordering_tau_differs_from_rank_vector_tau_from_three_users_on():
    # Two users: an ordering and a rank vector carry the same information.
    for t, p in itertools.product(itertools.permutations([1, 2]), repeat=2):
        assert ordering_tau(np.array(p), np.array(t)) == rank_tau(np.array(p), np.array(t))
    # Three users, the documented example: true best-first order b, c, a (scores a=1, b=3,
    # c=2), predicted b, a, c (a=2, b=3, c=1). Only the pair (a, c) is wrong: tau = 1/3.
    truth, predicted = np.array([1.0, 3.0, 2.0]), np.array([2.0, 3.0, 1.0])
    assert rank_tau(predicted, truth) == pytest.approx(1 / 3)
    assert ordering_tau(predicted, truth) == pytest.approx(-1.0)
    differing = sum(
        abs(rank_tau(np.array(p), np.array(t)) - ordering_tau(np.array(p), np.array(t))) > 1e-9
        for t, p in itertools.product(itertools.permutations([1, 2, 3]), repeat=2)
    )
    assert differing == 8  # of 36 (truth, prediction) pairs


def test_user_concordance_averages_to_tau_a_over_pairs():
    frame = pd.DataFrame(
        {
            "group_id": ["g0"] * 3 + ["g1"] * 2,
            "user_id": ["a", "b", "c", "a", "d"],
            "predicted": [3.0, 2.0, 1.0, 1.0, 2.0],
            "relative": [1.0, 0.0, 2.0, 1.0, 0.0],
            "difficulty": ["medium"] * 3 + ["easy"] * 2,
            "size": [3] * 3 + [2] * 2,
        }
    )
    concordance = user_concordance(frame)
    # g0 pairs: (a,b) +1, (a,c) -1, (b,c) -1; g1: (a,d) -1.
    assert concordance.to_dict() == pytest.approx({"a": -1 / 3, "b": 0.0, "c": -1.0, "d": -1.0})
    taus = group_taus(frame).frame.set_index("group_id")["tau"]
    assert taus.to_dict() == pytest.approx({"g0": -1 / 3, "g1": -1.0})


def test_timelines_use_only_strictly_earlier_ratings():
    dataset = rating_world(3, n_users=30, ratings_per_user=12)
    frame = dataset.interactions.frame.copy()
    # Two ratings at the same instant are not each other's history.
    frame.loc[1, "timestamp"] = frame.loc[0, "timestamp"]
    frame.loc[1, "user_id"] = frame.loc[0, "user_id"]
    timelines, _ = rating_timelines(frame)
    for row in timelines.sample(40, random_state=0).itertuples():
        own = timelines[timelines["user_id"] == row.user_id]
        earlier = own[own["timestamp"] < row.timestamp]["rating"]
        assert row.history_n == len(earlier)
        if len(earlier):
            assert row.user_mean == pytest.approx(earlier.mean())
            assert row.relative == pytest.approx(row.rating - earlier.mean())


def test_groups_obey_every_filter_and_count_what_each_dropped():
    dataset = rating_world(1)
    settings = GroupSettings(window_days=20, min_history=6, min_gap=0.75, max_groups_per_size=40)
    groups = build_groups(dataset.interactions.frame, settings, np.random.default_rng(0))
    members = groups.members
    counts = groups.counts
    assert counts["ratings"] == len(dataset.interactions)
    assert counts["dropped_short_history"] + counts["eligible_ratings"] == counts["ratings"]
    assert groups.n_groups == counts["groups"] == sum(counts[f"size_{s}_kept"] for s in (2, 3, 4))
    for s in (2, 3, 4):
        assert counts[f"size_{s}_kept"] == min(40, counts[f"size_{s}_candidates"])
    assert set(members["difficulty"]) == {"easy", "medium", "hard"}
    for _, group in members.groupby("group_id"):
        assert group["item_id"].nunique() == 1
        assert group["user_id"].is_unique
        assert len(group) == group["size"].iat[0]
        assert (group["history_n"] >= 6).all()
        span = group["timestamp"].max() - group["timestamp"].min()
        assert span < pd.Timedelta(days=20)
        relative = np.sort(group["relative"].to_numpy())
        assert (np.diff(relative) >= 0.75 - 1e-12).all()
    again = build_groups(dataset.interactions.frame, settings, np.random.default_rng(0))
    pd.testing.assert_frame_equal(members, again.members)


def test_no_group_when_the_filters_admit_none():
    dataset = rating_world(1, n_users=20, ratings_per_user=8)
    groups = build_groups(
        dataset.interactions.frame, GroupSettings(min_history=50), np.random.default_rng(0)
    )
    assert groups.n_groups == 0
    assert groups.counts["dropped_short_history"] == len(dataset.interactions)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"rating": 4}', 4.0),
        ('Sure.\n```json\n{"rating": 3.5}\n```', 3.5),
        ("rating: 2", 2.0),
        ("4", 4.0),
        ('{"rating": 9}', None),
        ('{"rating": "high"}', None),
        ("I think they would like it.", None),
        (None, None),
    ],
)
def test_parse_rating(text, expected):
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"preferred": "B"}', "B"),
        ('Answer: {"preferred": "a"} because...', "A"),
        ("preferred: B", "B"),
        ("A", "A"),
        ('{"preferred": "C"}', None),
        ("Both users like it.", None),
    ],
)
def test_parse_preferred(text, expected):
    assert parse_preferred(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"ranking": ["C", "A", "B"]}', ["C", "A", "B"]),
        ('Here: {"ranking": ["b", "a", "c"]}', ["B", "A", "C"]),
        ("C > B > A", ["C", "B", "A"]),
        ('{"ranking": ["C", "A"]}', None),
        ('{"ranking": ["A", "A", "B"]}', None),
        ("no idea", None),
    ],
)
def test_parse_ranking(text, expected):
    assert parse_ranking(text, "ABC") == expected


def test_item_knn_scorer_matches_a_dense_leave_the_user_out_computation():
    dataset = rating_world(2, n_users=60, n_items=25, ratings_per_user=12)
    groups = build_groups(
        dataset.interactions.frame, GroupSettings(min_history=3), np.random.default_rng(0)
    )
    queries = groups.members.head(12).reset_index(drop=True)
    fast = item_knn_scorer(queries, dataset, neighbours=5)
    timelines, _ = rating_timelines(dataset.interactions.frame)
    cells = timelines.groupby(["user_id", "item_id"])["rating"].mean().unstack()
    centred = cells.sub(cells.mean(axis=1), axis=0).fillna(0.0)
    for row, query in queries.iterrows():
        others = centred.drop(index=query.user_id)
        own = timelines[
            (timelines["user_id"] == query.user_id)
            & (timelines["timestamp"] < query.timestamp)
            & (timelines["item_id"] != query.item_id)
        ]
        q = others[query.item_id].to_numpy()
        sims = np.array(
            [
                q
                @ others[j].to_numpy()
                / np.sqrt((q @ q) * (others[j].to_numpy() @ others[j].to_numpy()))
                for j in own["item_id"]
            ]
        )
        relative = own["rating"].to_numpy() - query.user_mean
        top = np.argsort(-sims, kind="stable")[:5]
        top = top[sims[top] > 0]
        expected = sims[top] @ relative[top] / sims[top].sum() if len(top) else 0.0
        assert fast[row] == pytest.approx(expected)
