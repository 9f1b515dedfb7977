"""Explicit ratings for the synthetic music world, with a planted per-user preference.

The ``synthetic_ratings`` loader draws exactly the world ``synthetic`` draws for the same
parameters (same tables, byte for byte: :func:`audit_sdk.data.synthetic_world.generate_world`
is called unchanged) and then adds a ``rating`` column from a random stream of its own,
derived from the seed (``SeedSequence(seed, spawn_key=(RATINGS_STREAM,))``), so no draw of
the world itself moves and the worlds existing seeds produce stay as they were.

Which events carry a rating: each user's *first* listen of each distinct track is rated with
probability ``share`` (at that event's timestamp); every other event has no rating (NaN).

Rating model (the usual additive decomposition of explicit ratings, Koren, Bell & Volinsky,
"Matrix factorization techniques for recommender systems", IEEE Computer 2009, Eq. 3: global
mean + user bias + item bias + user-item interaction), rounded and clipped to the scale:

    r_ui = clip(round(mean + b_u + q_i + p_ui + e_ui), low, high)

* ``b_u ~ N(0, user_bias_sd)``: how generous a rater the user is;
* ``q_i ~ N(0, item_quality_sd)``: the track's quality, the same for every user;
* ``p_ui = preference_sd * z_u[genre(i)]``: the planted *personal* preference, where ``z_u``
  is the user's log genre taste (the world's ``share:<genre>``) standardized across genres
  (mean 0, sd 1 per user, clipped to +-3): users like the genres they listen to, so the
  listening data carries the signal a personalizing model can learn;
* ``e_ui ~ N(0, noise_sd)``.

PerRecBench-style groups (users who rated the same track in the same window, ranked by
rating minus their own mean) cancel ``q_i`` exactly and ``b_u`` up to the user's history, so
only ``p_ui`` (and noise) is left to rank by. ``metadata["ratings_truth"]`` holds every
rating with its ``preference``, ``quality`` and ``user_bias``; ``metadata["planted"]
["ratings"]`` the parameters.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.data.tables import Dataset, Interactions
from audit_sdk.hookspecs import RegisterDatasetLoader, hookimpl
from audit_sdk.interfaces import DatasetLoader, PluginParams

__all__ = [
    "RATINGS_STREAM",
    "RatingsParams",
    "SyntheticRatingsLoader",
    "SyntheticRatingsWorldParams",
    "add_ratings",
    "audit_sdk_register_dataset_loaders",
    "generate_rating_world",
]

RATINGS_STREAM = int.from_bytes(b"ratings", "big")
"""spawn key of the ratings' random stream (distinct from the world's own streams)"""


class RatingsParams(PluginParams):
    """How the synthetic world's listeners rate tracks (see the module docstring)."""

    share: float = Field(
        0.3, gt=0.0, le=1.0, description="chance that a user rates a track at its first listen"
    )
    mean: float = Field(3.0, description="global mean of the latent rating")
    user_bias_sd: float = Field(0.5, ge=0.0, description="sd of a user's rating generosity")
    item_quality_sd: float = Field(0.5, ge=0.0, description="sd of a track's quality")
    preference_sd: float = Field(
        0.8, ge=0.0, description="strength of the planted per-user genre preference"
    )
    noise_sd: float = Field(0.4, ge=0.0, description="sd of the rating noise")
    low: float = Field(1.0, description="lowest rating")
    high: float = Field(5.0, description="highest rating")
    rounded: bool = Field(True, description="round to whole stars (else continuous)")

    @model_validator(mode="after")
    def _ordered_scale(self) -> RatingsParams:
        if not self.low < self.high:
            raise ValueError(f"ratings: low ({self.low}) must be below high ({self.high})")
        return self


class SyntheticRatingsWorldParams(SyntheticWorldParams):
    """The synthetic world's parameters plus ``ratings``."""

    ratings: RatingsParams = Field(default_factory=RatingsParams)


def _standardized_log_taste(truth: pd.DataFrame, genres: list[str]) -> np.ndarray:
    shares = truth[[f"share:{g}" for g in genres]].to_numpy(dtype=float)
    logs = np.log(np.maximum(shares, 1e-12))
    centred = logs - logs.mean(axis=1, keepdims=True)
    sd = centred.std(axis=1, keepdims=True)
    z = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    return np.clip(z, -3.0, 3.0)


def add_ratings(dataset: Dataset, world: SyntheticWorldParams, ratings: RatingsParams) -> Dataset:
    """``dataset`` (a world :func:`generate_world` drew from ``world``) with a ``rating``
    column on each user's rated first listens; the other tables are the same objects."""
    rng = np.random.default_rng(np.random.SeedSequence(world.seed, spawn_key=(RATINGS_STREAM,)))
    frame = dataset.interactions.frame
    truth = dataset.metadata["truth"]
    genres = list(world.genres)
    users = pd.Index(truth.index.astype(str))
    items = pd.Index(dataset.catalog.frame.index.astype(str))
    z = _standardized_log_taste(truth, genres)
    primary = dataset.catalog.primary_genre().reindex(items)
    genre_code = pd.Index(genres).get_indexer(primary)
    # Draw every user's bias and every track's quality first (fixed sizes), then the rated
    # subset and the noise, so one parameter's change does not reshuffle the others.
    bias = rng.normal(0.0, ratings.user_bias_sd, len(users))
    quality = rng.normal(0.0, ratings.item_quality_sd, len(items))
    first = ~frame.duplicated(["user_id", "item_id"], keep="first").to_numpy()
    rated = first & (rng.random(len(frame)) < ratings.share)
    noise = rng.normal(0.0, ratings.noise_sd, len(frame))
    rows = np.flatnonzero(rated)
    u = users.get_indexer(frame["user_id"].to_numpy()[rows])
    i = items.get_indexer(frame["item_id"].to_numpy()[rows])
    g = genre_code[i]
    preference = np.where(g >= 0, ratings.preference_sd * z[u, np.maximum(g, 0)], 0.0)
    latent = ratings.mean + bias[u] + quality[i] + preference + noise[rows]
    value = np.round(latent) if ratings.rounded else latent
    value = np.clip(value, ratings.low, ratings.high)
    column = np.full(len(frame), np.nan)
    column[rows] = value
    out = frame.copy()
    out["rating"] = column
    ratings_truth = pd.DataFrame(
        {
            "user_id": frame["user_id"].to_numpy()[rows],
            "item_id": frame["item_id"].to_numpy()[rows],
            "timestamp": frame["timestamp"].to_numpy()[rows],
            "rating": value,
            "preference": preference,
            "quality": quality[i],
            "user_bias": bias[u],
        }
    )
    planted = dict(dataset.metadata.get("planted", {}))
    planted["ratings"] = ratings.model_dump(mode="json")
    metadata = {**dataset.metadata, "planted": planted, "ratings_truth": ratings_truth}
    return dataset.replace(
        name=f"{dataset.name}-ratings",
        interactions=Interactions(out),
        metadata=metadata,
    )


def generate_rating_world(params: SyntheticRatingsWorldParams | None = None) -> Dataset:
    """The synthetic world for ``params`` (without ``ratings``) plus its ratings."""
    params = params or SyntheticRatingsWorldParams()
    world = SyntheticWorldParams(**params.model_dump(exclude={"ratings"}))
    dataset = add_ratings(generate_world(world), world, params.ratings)
    metadata = {**dataset.metadata, "loader": "synthetic_ratings"}
    metadata["params"] = params.model_dump(mode="json")
    return dataset.replace(metadata=metadata)


class SyntheticRatingsLoader(DatasetLoader):
    """The synthetic world plus explicit ratings with a planted per-user preference."""

    name: ClassVar[str] = "synthetic_ratings"
    description: ClassVar[str] = (
        "the seeded synthetic world (same draws as 'synthetic') plus explicit 1-5 ratings "
        "with a planted per-user preference, user bias and item quality"
    )
    Params: ClassVar[type[PluginParams]] = SyntheticRatingsWorldParams

    def load(self) -> Dataset:
        params = self.params
        assert isinstance(params, SyntheticRatingsWorldParams)
        return generate_rating_world(params)


@hookimpl
def audit_sdk_register_dataset_loaders(register: RegisterDatasetLoader) -> None:
    register(SyntheticRatingsLoader)
