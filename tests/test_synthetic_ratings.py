"""The synthetic world's ``ratings`` option (``synthetic_ratings`` loader): the world's own
tables are untouched, ratings follow the planted model, and over many seeds the
personalization detector recovers the planted per-user preference while item quality and
chance score tau whose CI covers 0."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors._personalization_groups import GroupSettings, build_groups
from audit_sdk.plugins.detectors._personalization_methods import run_scorer
from audit_sdk.plugins.detectors._personalization_metrics import group_taus, summarize_taus

from audit_sdk.data.synthetic_ratings import (
    RatingsParams,
    SyntheticRatingsWorldParams,
    generate_rating_world,
)
from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.data.tables import Dataset
from audit_sdk.testing import make_host

SMALL = {"n_users": 300, "n_artists": 60, "mean_events_per_user": 120.0}
HERE = "tests.test_synthetic_ratings"


def _truth(queries: pd.DataFrame, dataset: Dataset, column: str) -> np.ndarray:
    truth = dataset.metadata["ratings_truth"].drop_duplicates(["user_id", "item_id"])
    table = truth.set_index(["user_id", "item_id"])[column]
    return table.reindex(pd.MultiIndex.from_frame(queries[["user_id", "item_id"]])).to_numpy()


def preference_scorer(queries: pd.DataFrame, dataset: Dataset) -> Sequence[float]:
    """Knows the planted per-user preference (not the noise)."""
    return _truth(queries, dataset, "preference")


def quality_scorer(queries: pd.DataFrame, dataset: Dataset) -> Sequence[float]:
    """Knows only how good the track is: the same for every member of a group."""
    return _truth(queries, dataset, "quality")


def oracle_scorer(queries: pd.DataFrame, dataset: Dataset) -> Sequence[float]:
    return _truth(queries, dataset, "rating") - queries["user_mean"].to_numpy()


def test_the_world_itself_is_byte_identical_to_the_synthetic_loaders():
    for seed in (0, 3):
        world = generate_world(SyntheticWorldParams(seed=seed, **SMALL))
        rated = generate_rating_world(SyntheticRatingsWorldParams(seed=seed, **SMALL))
        plain = rated.interactions.frame.drop(columns=["rating"])
        pd.testing.assert_frame_equal(plain, world.interactions.frame)
        pd.testing.assert_frame_equal(rated.catalog.frame, world.catalog.frame)
        pd.testing.assert_frame_equal(rated.users.frame, world.users.frame)
        assert not world.interactions.has_ratings
        assert rated.interactions.has_ratings


def test_ratings_follow_the_planted_model_and_the_seed():
    params = SyntheticRatingsWorldParams(seed=1, **SMALL, ratings=RatingsParams(share=0.4))
    dataset = generate_rating_world(params)
    frame = dataset.interactions.frame
    rated = frame[frame["rating"].notna()]
    first = ~frame.duplicated(["user_id", "item_id"])
    assert first[rated.index].all()  # only first listens are rated
    assert rated["rating"].between(1, 5).all()
    assert set(rated["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert abs(len(rated) / first.sum() - 0.4) < 0.02
    truth = dataset.metadata["ratings_truth"]
    latent = 3.0 + truth["user_bias"] + truth["quality"] + truth["preference"]
    # rounding and clipping aside, the rating is the planted latent plus noise (sd 0.4)
    assert np.corrcoef(latent, truth["rating"])[0, 1] > 0.8
    again = generate_rating_world(params)
    pd.testing.assert_frame_equal(again.interactions.frame, frame)
    other = generate_rating_world(params.model_copy(update={"seed": 2}))
    assert not other.interactions.frame["rating"].equals(frame["rating"])


def test_the_loader_is_registered_and_bad_params_name_the_field():
    host = make_host()
    loader_cls = host.registry.get("dataset_loader", "synthetic_ratings").cls
    loader = loader_cls(loader_cls.Params(seed=0, **SMALL))
    assert loader.load().interactions.has_ratings
    with pytest.raises(ValueError, match="low"):
        RatingsParams(low=5, high=1)


def _taus(seed: int) -> dict[str, tuple[float, float, float]]:
    params = SyntheticRatingsWorldParams(
        seed=seed, **{**SMALL, "n_users": 400}, ratings=RatingsParams(share=0.5)
    )
    dataset = generate_rating_world(params)
    groups = build_groups(
        dataset.interactions.frame,
        GroupSettings(max_groups_per_size=80),
        np.random.default_rng(seed),
    )
    assert groups.n_groups >= 180, groups.counts
    out = {}
    for label, scorer in (
        ("oracle", f"{HERE}:oracle_scorer"),
        ("preference", f"{HERE}:preference_scorer"),
        ("quality", f"{HERE}:quality_scorer"),
        ("random", "random"),
    ):
        run = run_scorer(scorer, groups, dataset, np.random.default_rng(seed + 1))
        overall, _ = summarize_taus(
            group_taus(run.predictions),
            confidence=0.95,
            n_resamples=400,
            rng=np.random.default_rng(seed + 2),
        )
        out[label] = (overall.estimate, overall.low, overall.high)
    return out


def test_planted_preference_is_recovered_and_quality_or_chance_is_not_over_many_seeds():
    results = [_taus(seed) for seed in range(12)]
    random_covers = 0
    for result in results:
        assert result["oracle"][0] > 0.99
        assert result["preference"][1] > 0.2  # the whole CI well above chance
        low, high = result["quality"][1:]
        assert low <= 0.0 <= high  # item quality is cancelled by the group design
        random_covers += result["random"][1] <= 0.0 <= result["random"][2]
    assert random_covers >= 10  # a 95% CI covers chance in about 11.4 of 12 worlds
    assert np.mean([r["preference"][0] for r in results]) > 0.4
