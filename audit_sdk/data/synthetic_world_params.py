"""The synthetic world's parameters, its genres and countries, and their traits.

:class:`SyntheticWorldParams` is what a config's ``dataset: {loader: synthetic, params: ...}``
sets; :mod:`audit_sdk.data.synthetic_world` draws the world from it. The genre traits (era,
track length, country profile, age slope) are the fixed part of the generative model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from audit_sdk.interfaces import PluginParams

__all__ = [
    "AGE_GROUPS",
    "AGE_GROUP_EDGES",
    "DEFAULT_COUNTRY_WEIGHTS",
    "DEFAULT_GENRES",
    "GenreTraits",
    "QualityPenalty",
    "SyntheticWorldParams",
    "age_group_of",
    "genre_traits",
]

AGE_GROUP_EDGES: tuple[int, ...] = (25, 35, 45, 55)
AGE_GROUPS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55+")

DEFAULT_GENRES: tuple[str, ...] = (
    "pop",
    "rock",
    "hip-hop",
    "electronic",
    "jazz",
    "classical",
    "metal",
    "country",
    "r&b",
    "latin",
    "k-pop",
    "folk",
)
DEFAULT_COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 0.27,
    "GB": 0.12,
    "DE": 0.09,
    "FR": 0.07,
    "BR": 0.09,
    "MX": 0.09,
    "JP": 0.07,
    "KR": 0.06,
    "SE": 0.05,
    "NG": 0.09,
}


@dataclass(frozen=True)
class GenreTraits:
    base: float  # overall popularity among listeners
    age_slope: float  # + : older listeners prefer it; - : younger
    era: float  # mean release year
    length_s: float  # mean track length
    countries: dict[str, float]  # share of the genre's artists from these countries


_TRAITS: dict[str, GenreTraits] = {
    "pop": GenreTraits(0.20, -0.6, 2010, 210, {"US": 0.35, "GB": 0.15, "SE": 0.10}),
    "rock": GenreTraits(0.14, 0.6, 1985, 250, {"GB": 0.35, "US": 0.35}),
    "hip-hop": GenreTraits(0.13, -0.9, 2010, 225, {"US": 0.45, "NG": 0.10, "FR": 0.10}),
    "electronic": GenreTraits(0.10, -0.5, 2008, 290, {"DE": 0.20, "FR": 0.20, "GB": 0.20}),
    "jazz": GenreTraits(0.04, 1.0, 1966, 310, {"US": 0.55}),
    "classical": GenreTraits(0.04, 1.1, 1975, 340, {"DE": 0.30, "GB": 0.15, "FR": 0.15}),
    "metal": GenreTraits(0.06, 0.1, 1995, 290, {"SE": 0.25, "DE": 0.20, "US": 0.20}),
    "country": GenreTraits(0.05, 0.7, 1995, 215, {"US": 0.85}),
    "r&b": GenreTraits(0.07, -0.3, 2005, 230, {"US": 0.45, "NG": 0.20}),
    "latin": GenreTraits(0.07, -0.2, 2012, 215, {"MX": 0.45, "BR": 0.35}),
    "k-pop": GenreTraits(0.05, -1.0, 2017, 200, {"KR": 0.85}),
    "folk": GenreTraits(0.05, 0.6, 1980, 240, {"GB": 0.30, "US": 0.30}),
}
_DEFAULT_TRAITS = GenreTraits(0.05, 0.0, 1995, 235, {})


def genre_traits(genre: str) -> GenreTraits:
    """The traits of ``genre`` (neutral defaults for a genre the table does not know)."""
    return _TRAITS.get(genre, _DEFAULT_TRAITS)


class QualityPenalty(PluginParams):
    """Users matching ``attribute == value`` draw a share ``strength`` of their events uniformly
    from the catalog (erratic behaviour). ``attribute``: ``age_group`` (one of
    :data:`AGE_GROUPS`), ``country`` (the user's ISO code) or ``genre`` (the user's top genre).
    """

    attribute: Literal["age_group", "country", "genre"]
    value: str
    strength: float = Field(ge=0.0, le=1.0)


class SyntheticWorldParams(PluginParams):
    """Parameters of :func:`generate_world`. Every default is a plausible streaming world."""

    seed: int = Field(default=0, description="seed of every random draw")
    n_users: int = Field(default=2000, ge=1)
    n_artists: int = Field(default=400, ge=1)
    mean_tracks_per_artist: float = Field(default=8.0, ge=1.0)
    genres: list[str] = Field(default_factory=lambda: list(DEFAULT_GENRES), min_length=1)
    countries: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_COUNTRY_WEIGHTS),
        description="ISO 3166 alpha-2 code -> weight, for users and (mixed with genre "
        "profiles) artists",
    )
    popularity_exponent: float = Field(default=1.1, ge=0.0, description="Zipf exponent of artists")
    mean_events_per_user: float = Field(default=150.0, gt=0.0)
    activity_sigma: float = Field(default=0.8, ge=0.0, description="sd of log events per user")
    min_events_per_user: int = Field(default=20, ge=1)
    taste_concentration_range: tuple[float, float] = Field(
        default=(0.3, 60.0),
        description="Dirichlet concentration range: low = specialists, high = generalists",
    )
    activity_breadth_correlation: float = Field(
        default=0.4, ge=-1.0, le=1.0, description="correlation of activity with taste breadth"
    )
    activity_mainstream_effect: float = Field(
        default=0.25,
        ge=0.0,
        le=0.5,
        description="how much active users lean away from mainstream genres",
    )
    age_taste_strength: float = Field(
        default=1.0, ge=0.0, description="how strongly age shifts genre taste (0: not at all)"
    )
    home_country_affinity: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="chance a fresh pick is an artist from the user's country",
    )
    favourite_share: float = Field(default=0.5, ge=0.0, le=1.0, description="share of re-listens")
    mean_favourites: float = Field(default=15.0, ge=1.0, description="favourite tracks per user")
    skip_probability: float = Field(
        default=0.15, ge=0.0, le=1.0, description="share of skips (< 30 s)"
    )
    start_date: date = Field(default=date(2025, 1, 1))
    days: int = Field(default=365, ge=1)
    quality_penalty: list[QualityPenalty] = Field(default_factory=list)

    @field_validator("genres")
    @classmethod
    def _unique_genres(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("genres must be unique")
        return value

    @field_validator("countries")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(w <= 0 for w in value.values()):
            raise ValueError("countries needs at least one code with a positive weight")
        return value

    @field_validator("taste_concentration_range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError("taste_concentration_range must be (low, high) with 0 < low <= high")
        return value

    @model_validator(mode="after")
    def _known_penalty_values(self) -> SyntheticWorldParams:
        if self.n_artists < len(self.genres):
            raise ValueError(
                f"n_artists ({self.n_artists}) must be at least the number of genres "
                f"({len(self.genres)}) so that every genre has an artist"
            )
        allowed = {
            "age_group": list(AGE_GROUPS),
            "country": list(self.countries),
            "genre": list(self.genres),
        }
        for penalty in self.quality_penalty:
            if penalty.value not in allowed[penalty.attribute]:
                raise ValueError(
                    f"quality_penalty value {penalty.value!r} is not a known "
                    f"{penalty.attribute}; choose one of {allowed[penalty.attribute]}"
                )
        return self


def age_group_of(ages: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    """Age-group labels (:data:`AGE_GROUPS`: ``<25``, ``25-34``, ``35-44``, ``45-54``,
    ``55+``) for an array of ages; ``None`` where an age is missing."""
    values = pd.to_numeric(pd.Series(np.asarray(ages, dtype=object)), errors="coerce")
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    codes = np.searchsorted(np.asarray(AGE_GROUP_EDGES, dtype=float), numbers, side="right")
    labels = np.asarray(AGE_GROUPS, dtype=object)[np.minimum(codes, len(AGE_GROUPS) - 1)]
    labels[np.isnan(numbers)] = None
    return labels
