"""The synthetic music-streaming world: determinism, realism, and planted effects recovered."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from audit_sdk.data.synthetic_world import (
    AGE_GROUPS,
    DEFAULT_GENRES,
    QualityPenalty,
    SyntheticWorldLoader,
    SyntheticWorldParams,
    age_group_of,
    generate_world,
    simulate_user_covariates,
)
from audit_sdk.data.tables import Dataset

GENRE_SHARES = [f"share:{g}" for g in DEFAULT_GENRES]


@pytest.fixture(scope="module")
def world() -> Dataset:
    return generate_world(SyntheticWorldParams(seed=7))


def primary_genre_shares(dataset: Dataset) -> pd.DataFrame:
    frame = dataset.interactions.frame
    genre = frame["item_id"].map(dataset.catalog.primary_genre())
    return pd.crosstab(frame["user_id"], genre, normalize="index")


def test_same_params_give_identical_tables():
    params = SyntheticWorldParams(seed=3, n_users=300, n_artists=80)
    first, second = generate_world(params), generate_world(params)
    pd.testing.assert_frame_equal(first.interactions.frame, second.interactions.frame)
    pd.testing.assert_frame_equal(first.catalog.frame, second.catalog.frame)
    pd.testing.assert_frame_equal(first.users.frame, second.users.frame)
    assert first.fingerprint() == second.fingerprint()
    other = generate_world(params.model_copy(update={"seed": 4}))
    assert other.fingerprint() != first.fingerprint()


def test_loader_and_metadata(world):
    loaded = SyntheticWorldLoader(SyntheticWorldParams(seed=7)).load()
    assert loaded.fingerprint() == world.fingerprint()
    assert world.name == "synthetic"
    assert world.metadata["params"]["seed"] == 7
    assert world.metadata["planted"]["quality_penalty"] == []


def test_tables_are_canonical_and_plausible(world):
    events = world.interactions.frame
    assert list(events.columns) == ["user_id", "item_id", "plays", "timestamp", "duration_s"]
    assert (events["plays"] == 1.0).all()
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert events["timestamp"].min() >= pd.Timestamp("2025-01-01", tz="UTC")
    assert events["timestamp"].max() < pd.Timestamp("2026-01-01", tz="UTC")
    assert events.groupby("user_id")["timestamp"].is_monotonic_increasing.all()
    assert events["item_id"].isin(world.catalog.frame.index).all()
    assert 120 < len(events) / len(world.users) < 180
    catalog = world.catalog.frame
    assert catalog["artist_id"].nunique() == 400
    assert 6 < len(catalog) / 400 < 10
    assert catalog["release_year"].between(1960, 2025).all()
    assert catalog["length_s"].between(150, 360).all()
    assert set(catalog["genres"].explode()) <= set(DEFAULT_GENRES)
    per_artist = catalog.groupby("artist_id")
    assert per_artist["artist"].nunique().eq(1).all()
    assert catalog.drop_duplicates("artist_id")["artist"].is_unique  # one name per artist
    assert per_artist["title"].apply(lambda t: t.is_unique).all()
    assert catalog["artist"].str.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)*").all()
    users = world.users.frame
    assert users["age"].between(16, 75).all()
    assert set(users["country"]) <= set(SyntheticWorldParams().countries)


def test_country_follows_genre(world):
    catalog = world.catalog.frame.drop_duplicates("artist_id")
    primary = catalog["genres"].map(lambda g: g[0])
    assert (catalog.loc[primary == "k-pop", "country"] == "KR").mean() > 0.6
    latin = catalog.loc[primary == "latin", "country"]
    assert latin.isin(["MX", "BR"]).mean() > 0.6


def test_artist_popularity_is_zipf_like(world):
    frame = world.interactions.frame
    plays = frame["item_id"].map(world.catalog.frame["artist_id"]).value_counts()
    top_share = plays.iloc[: len(plays) // 10].sum() / plays.sum()
    assert top_share > 0.45  # uniform popularity would give about 0.10
    flat = generate_world(SyntheticWorldParams(seed=7, n_users=500, popularity_exponent=0.0))
    flat_plays = flat.interactions.frame["item_id"].map(flat.catalog.frame["artist_id"])
    counts = flat_plays.value_counts()
    assert counts.iloc[: len(counts) // 10].sum() / counts.sum() < top_share - 0.15


def test_specialists_and_generalists(world):
    top = primary_genre_shares(world).max(axis=1)
    assert (top > 0.6).mean() > 0.12  # specialists
    assert (top < 0.35).mean() > 0.25  # generalists
    truth = world.metadata["truth"]
    correlation = np.corrcoef(truth["activity"], np.log(truth["taste_concentration"]))[0, 1]
    assert correlation == pytest.approx(0.4, abs=0.08)  # activity_breadth_correlation


def test_covariates_match_the_world_users(world):
    covariates = simulate_user_covariates(2000, seed=7)
    pd.testing.assert_frame_equal(covariates, world.metadata["truth"].drop(columns="erratic_share"))
    assert (covariates["age"] == world.users.frame["age"]).all()
    np.testing.assert_allclose(covariates[GENRE_SHARES].sum(axis=1), 1.0)
    country_shares = covariates.filter(like="share_country:")
    np.testing.assert_allclose(country_shares.sum(axis=1), 1.0)
    assert np.log(covariates["n_events"]).equals(covariates["activity"])


def test_covariates_are_fast():
    start = time.perf_counter()
    covariates = simulate_user_covariates(100_000, seed=1)
    elapsed = time.perf_counter() - start
    print(f"simulate_user_covariates(100_000): {elapsed:.3f} s")
    assert len(covariates) == 100_000


def _age_gap(covariates: pd.DataFrame) -> pd.Series:
    means = covariates.groupby("age_group")[GENRE_SHARES].mean()
    return means.loc["55+"] - means.loc["<25"]


def test_age_shifts_taste_only_when_strength_is_positive():
    shifted = _age_gap(simulate_user_covariates(20_000, seed=11))
    for older in ("jazz", "classical", "rock", "country"):
        assert shifted[f"share:{older}"] > 0.03, older
    for younger in ("hip-hop", "k-pop", "pop"):
        assert shifted[f"share:{younger}"] < -0.02, younger
    null = _age_gap(simulate_user_covariates(20_000, seed=11, age_taste_strength=0.0))
    assert null.abs().max() < 0.015
    # and in realized listening, not only in the latent taste
    events = generate_world(SyntheticWorldParams(seed=5, n_users=1500))
    realized = primary_genre_shares(events)
    group = pd.Series(age_group_of(events.users.frame["age"]), index=events.users.frame.index)
    by_group = realized.groupby(group.reindex(realized.index)).mean()
    assert by_group.loc["55+", "jazz"] > 2 * by_group.loc["<25", "jazz"]
    assert by_group.loc["<25", "hip-hop"] > 2 * by_group.loc["55+", "hip-hop"]


def test_home_country_affinity(world):
    frame = world.interactions.frame
    home = frame["user_id"].map(world.users.frame["country"])
    artist_country = frame["item_id"].map(world.catalog.frame["country"])
    realized = (home == artist_country).groupby(frame["user_id"]).mean()
    truth = world.metadata["truth"]
    expected = pd.Series(
        [truth.at[u, f"share_country:{truth.at[u, 'country']}"] for u in truth.index],
        index=truth.index,
    )
    assert realized.mean() == pytest.approx(expected.mean(), abs=0.02)
    none = simulate_user_covariates(2000, seed=7, home_country_affinity=0.0)
    expected_none = np.mean(
        [none.at[u, f"share_country:{none.at[u, 'country']}"] for u in none.index]
    )
    assert expected.mean() > expected_none + 0.15


@pytest.mark.parametrize("probability", [0.15, 0.4])
def test_skip_share_follows_the_parameter(probability):
    world = generate_world(SyntheticWorldParams(seed=2, n_users=400, skip_probability=probability))
    durations = world.interactions.frame["duration_s"]
    assert (durations < 30).mean() == pytest.approx(probability, abs=0.01)
    full = durations[durations >= 30]
    assert full.between(150, 360).all()


def _known_artist_share(dataset: Dataset) -> pd.Series:
    """Per user, the share of second-half events on artists already played in the first half."""
    frame = dataset.interactions.frame.assign(
        artist=lambda f: f["item_id"].map(dataset.catalog.frame["artist_id"])
    )
    cut = frame["timestamp"] < pd.Timestamp("2025-07-01", tz="UTC")
    history = frame[cut].drop_duplicates(["user_id", "artist"]).assign(known=True)
    later = frame[~cut].merge(history[["user_id", "artist", "known"]], how="left")
    return later["known"].fillna(False).astype(bool).groupby(later["user_id"]).mean()


def test_planted_penalty_lowers_predictability_of_the_penalized_group():
    base = SyntheticWorldParams(seed=9, n_users=1500)
    penalty = QualityPenalty(attribute="age_group", value="55+", strength=0.6)
    plain = generate_world(base)
    planted = generate_world(base.model_copy(update={"quality_penalty": [penalty]}))
    groups = pd.Series(age_group_of(plain.users.frame["age"]), index=plain.users.frame.index)
    before = _known_artist_share(plain).groupby(groups).mean()
    after = _known_artist_share(planted).groupby(groups).mean()
    assert before["55+"] - after["55+"] > 0.25
    for other in ("<25", "25-34", "35-44", "45-54"):
        assert abs(before[other] - after[other]) < 0.03, other
    recorded = planted.metadata["planted"]
    assert recorded["quality_penalty"] == [penalty]
    assert set(recorded["penalized_users"][0]) == set(groups.index[groups == "55+"])
    erratic = planted.metadata["truth"]["erratic_share"]
    assert (erratic[groups == "55+"] == 0.6).all()
    assert (erratic[groups != "55+"] == 0.0).all()


def test_genre_and_country_penalties_select_the_right_users(world):
    params = SyntheticWorldParams(
        seed=7,
        quality_penalty=[
            QualityPenalty(attribute="genre", value="jazz", strength=0.5),
            QualityPenalty(attribute="country", value="JP", strength=0.5),
        ],
    )
    planted = generate_world(params)
    truth = planted.metadata["truth"]
    both = (truth["top_genre"] == "jazz") & (truth["country"] == "JP")
    one = (truth["top_genre"] == "jazz") ^ (truth["country"] == "JP")
    assert np.allclose(truth.loc[both, "erratic_share"], 0.75)
    assert np.allclose(truth.loc[one, "erratic_share"], 0.5)
    assert (truth.loc[~(both | one), "erratic_share"] == 0).all()


def test_history_predicts_held_out_items(world):
    """A popularity recommender gets a clearly non-zero NDCG@10 on each user's new items of
    the last month, far above a random ranking."""
    frame = world.interactions.frame
    cut = frame["timestamp"] < pd.Timestamp("2025-12-01", tz="UTC")
    train, test = frame[cut], frame[~cut]
    popular = train["item_id"].value_counts().index.to_numpy()
    seen = train.groupby("user_id")["item_id"].agg(set)
    held_out = test.groupby("user_id")["item_id"].agg(set)
    rng = np.random.default_rng(0)
    discounts = 1 / np.log2(np.arange(2, 12))
    scores, random_scores = [], []
    for user, items in held_out.items():
        history = seen.get(user, set())
        new = items - history
        if not new:
            continue
        ideal = discounts[: min(10, len(new))].sum()
        ranked = [i for i in popular[:300] if i not in history][:10]
        scores.append(sum(d for d, i in zip(discounts, ranked, strict=False) if i in new) / ideal)
        shuffled = [i for i in rng.permutation(popular)[:60] if i not in history][:10]
        random_scores.append(
            sum(d for d, i in zip(discounts, shuffled, strict=False) if i in new) / ideal
        )
    assert np.mean(scores) > 0.04
    assert np.mean(scores) > 5 * np.mean(random_scores)


def test_age_groups():
    labels = age_group_of([16, 24, 25, 34.9, 35, 44, 45, 54, 55, 75, np.nan])
    assert labels.tolist() == [
        "<25", "<25", "25-34", "25-34", "35-44", "35-44", "45-54", "45-54", "55+", "55+", None,
    ]  # fmt: skip
    assert set(labels[:-1]) == set(AGE_GROUPS)


def test_params_are_validated():
    with pytest.raises(ValidationError, match="not a known age_group"):
        SyntheticWorldParams(
            quality_penalty=[QualityPenalty(attribute="age_group", value="60+", strength=0.5)]
        )
    with pytest.raises(ValidationError):
        QualityPenalty(attribute="age_group", value="55+", strength=1.5)
    with pytest.raises(ValidationError):
        SyntheticWorldParams(n_user=10)  # type: ignore[call-arg]


def test_default_world_speed():
    start = time.perf_counter()
    world = generate_world()
    elapsed = time.perf_counter() - start
    print(f"generate_world(): {len(world.interactions):,} events in {elapsed:.2f} s")
    assert len(world.users) == 2000
