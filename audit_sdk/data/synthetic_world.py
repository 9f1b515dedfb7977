"""A seeded synthetic music-streaming world with planted, known biases.

The world has genres, countries, artists with Zipf-like popularity and tracks, users with an
age, a country and a taste, and a year of listening events. Its generative model:

* **Artists.** Each has a primary genre (and, for some, a secondary one), a country drawn from
  the genre's country profile (k-pop mostly KR, latin mostly MX/BR...), a popularity
  ``rank ** -popularity_exponent`` over a random global rank, and ~``mean_tracks_per_artist``
  tracks with genre-dependent release years and lengths.
* **Taste.** A user's mean genre preference is
  ``softmax((1 - activity_mainstream_effect * z_act) * log(base) + age_taste_strength *
  slope * z_age)``: older users lean to jazz/classical/rock/country/folk, younger ones to
  hip-hop/k-pop/electronic/pop; active users lean away from mainstream genres. The realized
  preference is ``Dirichlet(c * mean)`` with a per-user concentration ``c`` drawn log-uniformly
  over ``taste_concentration_range`` (small ``c``: a specialist; large: a generalist),
  correlated with activity through ``activity_breadth_correlation``.
* **Events.** Per user, a lognormal number of events over ``days`` days. An event is a
  re-listen of one of the user's favourite tracks (share ``favourite_share``), or a fresh pick:
  a genre from the preference, an artist by popularity within the genre (restricted to the
  user's home country with probability ``home_country_affinity``), a track by within-artist
  popularity. A share ``skip_probability`` of events is a skip (< 30 s).
* **Planted quality penalty.** For users matching a :class:`QualityPenalty` (an age group, a
  country, or a top genre), a share ``strength`` of events is a uniform draw from the whole
  catalog: erratic behaviour that any recommender serves worse.

:func:`simulate_user_covariates` draws the same users and taste (same seed, same numbers)
without generating events, for fast causal tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtr

from audit_sdk.data.synthetic_world_params import (
    AGE_GROUP_EDGES,
    AGE_GROUPS,
    DEFAULT_COUNTRY_WEIGHTS,
    DEFAULT_GENRES,
    QualityPenalty,
    SyntheticWorldParams,
    age_group_of,
    genre_traits,
)
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import DatasetLoader, PluginParams

__all__ = [
    "AGE_GROUPS",
    "AGE_GROUP_EDGES",
    "DEFAULT_COUNTRY_WEIGHTS",
    "DEFAULT_GENRES",
    "QualityPenalty",
    "SyntheticWorldLoader",
    "SyntheticWorldParams",
    "age_group_of",
    "generate_world",
    "simulate_user_covariates",
]

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
           "kr", "st", "tr", "sh", "ch", "j", "y", "w", "h")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "x")
_SYLLABLES: tuple[str, ...] = tuple(o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS)


# --------------------------------------------------------------------------------------
# the model, shared by generate_world and simulate_user_covariates


@dataclass(frozen=True)
class _Artists:
    primary: np.ndarray  # genre index
    secondary: np.ndarray  # genre index or -1
    country: np.ndarray  # country index
    popularity: np.ndarray  # weight, sums to 1
    pools: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]  # (genre, country|-1) -> ids, cdf
    country_given_genre: np.ndarray  # genres x countries: popularity share of artist countries
    has_home: np.ndarray  # genres x countries: a home pool exists


@dataclass(frozen=True)
class _Users:
    age: np.ndarray
    country: np.ndarray  # country index
    activity_z: np.ndarray
    n_events: np.ndarray
    concentration: np.ndarray
    taste: np.ndarray  # users x genres, rows sum to 1


def _streams(params: SyntheticWorldParams) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(params.seed).spawn(4)
    return {
        name: np.random.default_rng(child)
        for name, child in zip(("artists", "names", "users", "events"), children, strict=True)
    }


def _country_weights(params: SyntheticWorldParams) -> np.ndarray:
    weights = np.asarray(list(params.countries.values()), dtype=float)
    return weights / weights.sum()


def _draw_artists(params: SyntheticWorldParams, rng: np.random.Generator) -> _Artists:
    genres, codes = params.genres, list(params.countries)
    n_genres, n_countries, n_artists = len(genres), len(codes), params.n_artists
    base = np.asarray([genre_traits(g).base for g in genres])
    genre_p = np.sqrt(base) / np.sqrt(base).sum()
    primary = rng.choice(n_genres, size=n_artists, p=genre_p)
    primary[: min(n_genres, n_artists)] = np.arange(min(n_genres, n_artists))
    secondary = np.where(
        rng.random(n_artists) < 0.3, rng.choice(n_genres, size=n_artists, p=genre_p), -1
    )
    secondary[secondary == primary] = -1

    global_weights = _country_weights(params)
    profile = np.empty((n_genres, n_countries))
    for g, genre in enumerate(genres):
        boost = {codes.index(c): w for c, w in genre_traits(genre).countries.items() if c in codes}
        rest = max(0.0, 1.0 - sum(boost.values()))
        profile[g] = rest * global_weights
        for c, w in boost.items():
            profile[g, c] += w
        profile[g] /= profile[g].sum()
    cumulative = np.cumsum(profile[primary], axis=1)
    country = np.minimum((rng.random(n_artists)[:, None] > cumulative).sum(axis=1), n_countries - 1)

    ranks = rng.permutation(n_artists) + 1
    popularity = ranks.astype(float) ** -params.popularity_exponent
    popularity /= popularity.sum()

    member = np.zeros((n_genres, n_artists))
    member[primary, np.arange(n_artists)] = 1.0
    has_second = secondary >= 0
    member[secondary[has_second], np.flatnonzero(has_second)] = 0.5
    weight = member * popularity[None, :]
    pools: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    country_given_genre = np.zeros((n_genres, n_countries))
    has_home = np.zeros((n_genres, n_countries), dtype=bool)
    for g in range(n_genres):
        ids = np.flatnonzero(weight[g] > 0)
        pools[(g, -1)] = (ids, _cdf(weight[g, ids]))
        np.add.at(country_given_genre[g], country[ids], weight[g, ids])
        country_given_genre[g] /= country_given_genre[g].sum()
        for c in np.unique(country[ids]):
            home_ids = ids[country[ids] == c]
            pools[(g, int(c))] = (home_ids, _cdf(weight[g, home_ids]))
            has_home[g, c] = True
    return _Artists(primary, secondary, country, popularity, pools, country_given_genre, has_home)


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _draw_users(params: SyntheticWorldParams, n_users: int, rng: np.random.Generator) -> _Users:
    """Ages, countries, activity and taste, in a fixed order of draws."""
    age = 16 + np.rint(rng.beta(2.0, 3.2, size=n_users) * 59).astype(np.int64)
    country = rng.choice(len(params.countries), size=n_users, p=_country_weights(params))
    activity_z = rng.standard_normal(n_users)
    sigma = params.activity_sigma
    mu = np.log(params.mean_events_per_user) - sigma**2 / 2
    n_events = np.maximum(params.min_events_per_user, np.rint(np.exp(mu + sigma * activity_z)))

    rho = params.activity_breadth_correlation
    breadth_z = rho * activity_z + np.sqrt(1 - rho**2) * rng.standard_normal(n_users)
    low, high = (
        np.log(params.taste_concentration_range[0]),
        np.log(params.taste_concentration_range[1]),
    )
    concentration = np.exp(low + (high - low) * ndtr(breadth_z))

    mean_taste = _mean_taste(params, age, activity_z)
    alpha = concentration[:, None] * mean_taste
    # Dirichlet draw in log space (Gamma(a) = Gamma(a + 1) * U ** (1 / a)), exact and free of
    # underflow for the tiny shapes that make specialists.
    log_gamma = np.log(rng.gamma(alpha + 1.0)) + np.log(rng.random(alpha.shape)) / alpha
    log_gamma -= log_gamma.max(axis=1, keepdims=True)
    taste = np.exp(log_gamma)
    taste /= taste.sum(axis=1, keepdims=True)
    return _Users(age, country, activity_z, n_events.astype(np.int64), concentration, taste)


def _mean_taste(
    params: SyntheticWorldParams, age: np.ndarray, activity_z: np.ndarray
) -> np.ndarray:
    """Mean genre preference given age and activity (the causal model of taste)."""
    base = np.asarray([genre_traits(g).base for g in params.genres])
    slope = np.asarray([genre_traits(g).age_slope for g in params.genres])
    log_base = np.log(base / base.sum())
    age_z = (np.asarray(age, dtype=float) - 40.0) / 15.0
    flatten = 1.0 - params.activity_mainstream_effect * np.clip(activity_z, -2.0, 2.0)
    logits = flatten[:, None] * log_base[None, :] + params.age_taste_strength * np.outer(
        age_z, slope
    )
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def _country_shares(params: SyntheticWorldParams, users: _Users, artists: _Artists) -> np.ndarray:
    """Expected share of each artist country in a user's fresh picks (users x countries)."""
    home = params.home_country_affinity * artists.has_home[:, users.country].T  # users x genres
    away = (users.taste * (1.0 - home)) @ artists.country_given_genre
    at_home = (users.taste * home).sum(axis=1)
    away[np.arange(len(users.country)), users.country] += at_home
    return away


def _top_genre(params: SyntheticWorldParams, taste: np.ndarray) -> np.ndarray:
    return np.asarray(params.genres, dtype=object)[taste.argmax(axis=1)]


def _user_ids(n_users: int) -> np.ndarray:
    width = max(5, len(str(n_users)))
    return np.asarray([f"u{i:0{width}d}" for i in range(1, n_users + 1)], dtype=object)


def _covariates(params: SyntheticWorldParams, users: _Users, artists: _Artists) -> pd.DataFrame:
    codes = list(params.countries)
    columns: dict[str, Any] = {
        "age": users.age,
        "age_group": age_group_of(users.age),
        "country": np.asarray(codes, dtype=object)[users.country],
        "activity": np.log(users.n_events),
        "n_events": users.n_events,
        "taste_concentration": users.concentration,
        "top_genre": _top_genre(params, users.taste),
    }
    for g, genre in enumerate(params.genres):
        columns[f"share:{genre}"] = users.taste[:, g]
    shares = _country_shares(params, users, artists)
    for c, code in enumerate(codes):
        columns[f"share_country:{code}"] = shares[:, c]
    frame = pd.DataFrame(columns, index=pd.Index(_user_ids(len(users.age)), name="user_id"))
    for column in ("age_group", "country", "top_genre"):
        frame[column] = frame[column].astype(str)
    return frame


def simulate_user_covariates(
    n_users: int,
    *,
    seed: int,
    params: SyntheticWorldParams | None = None,
    **changes: Any,
) -> pd.DataFrame:
    """Per-user covariates from the world's taste model, without generating events.

    Columns: ``age``, ``age_group``, ``country``, ``activity`` (log of the user's number of
    events), ``n_events``, ``taste_concentration``, ``top_genre``, ``share:<genre>`` (the
    user's genre preference, summing to 1) and ``share_country:<CC>`` (the expected share of
    artists from each country among the user's picks). ``params`` (default: the defaults) and
    keyword ``changes`` (e.g. ``age_taste_strength=0``) set the model; the users are exactly
    those :func:`generate_world` draws for the same seed and parameters.
    """
    base = (params or SyntheticWorldParams()).model_dump()
    base.update(changes, n_users=n_users, seed=seed)
    model = SyntheticWorldParams.model_validate(base)
    streams = _streams(model)
    artists = _draw_artists(model, streams["artists"])
    users = _draw_users(model, n_users, streams["users"])
    return _covariates(model, users, artists)


# --------------------------------------------------------------------------------------
# catalog and events


def _names(
    count: int, rng: np.random.Generator, *, words: tuple[int, int], syllables: tuple[int, int]
) -> list[str]:
    """Pronounceable made-up names from syllables, drawn in one batch."""
    n_words = rng.integers(words[0], words[1] + 1, size=count)
    n_syllables = rng.integers(syllables[0], syllables[1] + 1, size=(count, words[1]))
    picks = rng.integers(len(_SYLLABLES), size=(count, words[1], syllables[1]))
    names = []
    for i in range(count):
        parts = [
            "".join(_SYLLABLES[s] for s in picks[i, w, : n_syllables[i, w]]).capitalize()
            for w in range(n_words[i])
        ]
        names.append(" ".join(parts))
    return names


def _unique(names: list[str], spares: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    spare = iter(spares)
    for name in names:
        candidate = name
        while candidate in seen:
            candidate = f"{name} {next(spare)}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _catalog(
    params: SyntheticWorldParams, artists: _Artists, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The track catalog, the per-track sampling keys (artist index + within-artist cdf) and
    the track lengths."""
    n_artists = params.n_artists
    genres = params.genres
    codes = np.asarray(list(params.countries), dtype=object)
    n_tracks_per = 1 + rng.poisson(params.mean_tracks_per_artist - 1.0, size=n_artists)
    track_artist = np.repeat(np.arange(n_artists), n_tracks_per)
    n_tracks = len(track_artist)
    start = np.concatenate([[0], np.cumsum(n_tracks_per)[:-1]])
    rank_in_artist = np.arange(n_tracks) - start[track_artist] + 1
    weight = 1.0 / rank_in_artist
    running = np.cumsum(weight)
    within_cdf = running - np.repeat(running[start] - weight[start], n_tracks_per)
    within_cdf /= np.repeat(within_cdf[start + n_tracks_per - 1], n_tracks_per)
    keys = track_artist + within_cdf

    era = np.asarray([genre_traits(g).era for g in genres])
    debut = np.clip(rng.normal(era[artists.primary], 9.0), 1960, 2025)
    years = np.clip(
        np.rint(debut[track_artist] + rng.exponential(4.0, size=n_tracks)), 1960, 2025
    ).astype(np.int64)
    mean_length = np.asarray([genre_traits(g).length_s for g in genres])
    lengths = np.clip(
        np.rint(mean_length[artists.primary][track_artist] * rng.lognormal(0.0, 0.2, n_tracks)),
        150,
        360,
    )

    artist_names = _unique(
        _names(n_artists, rng, words=(1, 2), syllables=(2, 3)),
        _names(n_artists, rng, words=(1, 1), syllables=(1, 2)),
    )
    raw_titles = _names(n_tracks, rng, words=(1, 3), syllables=(1, 3))
    spare_titles = _names(n_tracks, rng, words=(1, 1), syllables=(2, 2))
    titles: list[str] = []
    for a in range(n_artists):
        block = slice(start[a], start[a] + n_tracks_per[a])
        titles.extend(_unique(raw_titles[block], spare_titles[block]))

    genre_tuples = [
        (genres[p],) if s < 0 else (genres[p], genres[s])
        for p, s in zip(artists.primary, artists.secondary, strict=True)
    ]
    width = max(5, len(str(n_tracks)))
    artist_width = max(4, len(str(n_artists)))
    artist_ids = np.asarray(
        [f"a{i:0{artist_width}d}" for i in range(1, n_artists + 1)], dtype=object
    )
    frame = pd.DataFrame(
        {
            "title": pd.Series(titles, dtype=object).astype(str),
            "artist": pd.Series(np.asarray(artist_names, dtype=object)[track_artist]).astype(str),
            "genres": pd.Series([genre_tuples[a] for a in track_artist], dtype=object),
            "country": pd.Series(codes[artists.country][track_artist]).astype(str),
            "release_year": pd.array(years, dtype="Int64"),
            "artist_id": pd.Series(artist_ids[track_artist]).astype(str),
            "length_s": lengths.astype(float),
        }
    )
    frame.index = pd.Index(
        [f"t{i:0{width}d}" for i in range(1, n_tracks + 1)], name="item_id"
    ).astype(str)
    return frame, keys, lengths


def _fresh_picks(
    user_index: np.ndarray,
    params: SyntheticWorldParams,
    users: _Users,
    artists: _Artists,
    keys: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tracks picked by taste: genre ~ preference, artist ~ popularity (maybe at home),
    track ~ within-artist popularity."""
    n = len(user_index)
    n_genres = len(params.genres)
    genre_draw, home_draw, artist_draw, track_draw = rng.random((4, n))
    cdf = np.cumsum(users.taste, axis=1)
    genre = np.minimum((genre_draw[:, None] > cdf[user_index]).sum(axis=1), n_genres - 1)
    home_country = users.country[user_index]
    at_home = (home_draw < params.home_country_affinity) & artists.has_home[genre, home_country]
    pool_country = np.where(at_home, home_country, -1)
    artist = np.empty(n, dtype=np.int64)
    code = genre * (len(params.countries) + 1) + (pool_country + 1)
    order = np.argsort(code, kind="stable")
    boundaries = np.flatnonzero(np.diff(code[order])) + 1
    for group in np.split(order, boundaries):
        if not len(group):
            continue
        g, c = int(genre[group[0]]), int(pool_country[group[0]])
        ids, pool_cdf = artists.pools[(g, c)]
        picks = np.searchsorted(pool_cdf, artist_draw[group], side="right")
        artist[group] = ids[np.minimum(picks, len(ids) - 1)]
    track = np.searchsorted(keys, artist + track_draw, side="right")
    return np.minimum(track, len(keys) - 1)


_PENALTY_COLUMN = {"age_group": "age_group", "country": "country", "genre": "top_genre"}


def _penalized(penalty: QualityPenalty, covariates: pd.DataFrame) -> np.ndarray:
    return (covariates[_PENALTY_COLUMN[penalty.attribute]] == penalty.value).to_numpy(dtype=bool)


def _erratic_share(params: SyntheticWorldParams, covariates: pd.DataFrame) -> np.ndarray:
    """Per user, the share of erratic events: 1 - prod(1 - strength) over matching penalties."""
    keep = np.ones(len(covariates))
    for penalty in params.quality_penalty:
        keep[_penalized(penalty, covariates)] *= 1.0 - penalty.strength
    return 1.0 - keep


def generate_world(params: SyntheticWorldParams | None = None) -> Dataset:
    """Generate the world: interactions (one row per event), catalog (tracks), users.

    Deterministic given ``params`` (a numpy ``Generator`` per component, seeded from
    ``params.seed``). ``metadata["planted"]`` records the planted effects;
    ``metadata["truth"]`` is the per-user ground truth (taste, top genre, erratic share).
    """
    params = params or SyntheticWorldParams()
    streams = _streams(params)
    artists = _draw_artists(params, streams["artists"])
    users = _draw_users(params, params.n_users, streams["users"])
    catalog, keys, lengths = _catalog(params, artists, streams["names"])
    truth = _covariates(params, users, artists)
    erratic_share = _erratic_share(params, truth)
    truth["erratic_share"] = erratic_share
    rng = streams["events"]
    n_users = params.n_users
    n_tracks = len(catalog)

    n_favourites = 1 + rng.poisson(params.mean_favourites - 1.0, size=n_users)
    favourite_owner = np.repeat(np.arange(n_users), n_favourites)
    favourites = _fresh_picks(favourite_owner, params, users, artists, keys, rng)
    favourite_start = np.concatenate([[0], np.cumsum(n_favourites)[:-1]])

    event_user = np.repeat(np.arange(n_users), users.n_events)
    n_events = len(event_user)
    kind_draw, favourite_draw = rng.random((2, n_events))
    erratic = kind_draw < erratic_share[event_user]
    favourite = ~erratic & (
        kind_draw
        < erratic_share[event_user] + (1 - erratic_share[event_user]) * params.favourite_share
    )
    fresh = ~erratic & ~favourite
    track = np.empty(n_events, dtype=np.int64)
    track[erratic] = rng.integers(n_tracks, size=int(erratic.sum()))
    # favourites are played in heavy rotation: the first ones most (density ~ 1 / sqrt(rank))
    owner = event_user[favourite]
    slot = np.floor(n_favourites[owner] * favourite_draw[favourite] ** 2).astype(np.int64)
    track[favourite] = favourites[favourite_start[owner] + slot]
    track[fresh] = _fresh_picks(event_user[fresh], params, users, artists, keys, rng)

    seconds = rng.random(n_events) * params.days * 86400.0
    skipped = rng.random(n_events) < params.skip_probability
    skip_length = 1.0 + rng.random(n_events) * 28.9
    duration = np.where(skipped, np.round(skip_length, 1), lengths[track])

    order = np.lexsort((seconds, event_user))
    start = pd.Timestamp(params.start_date, tz="UTC").as_unit("ns")
    timestamps = start + pd.to_timedelta(np.rint(seconds[order] * 1e3).astype(np.int64), unit="ms")
    user_ids = truth.index.to_numpy(dtype=object)
    item_ids = catalog.index.to_numpy(dtype=object)
    interactions = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids[event_user[order]]).astype(str),
            "item_id": pd.Series(item_ids[track[order]]).astype(str),
            "plays": np.ones(n_events),
            "timestamp": pd.Series(timestamps).dt.as_unit("ns"),
            "duration_s": duration[order].astype(float),
        }
    )
    users_frame = truth[["age", "country"]].copy()
    users_frame["age"] = users_frame["age"].astype(np.int64)
    planted = {
        "quality_penalty": list(params.quality_penalty),
        "penalized_users": [
            truth.index[_penalized(p, truth)].tolist() for p in params.quality_penalty
        ],
        "age_taste_strength": params.age_taste_strength,
        "home_country_affinity": params.home_country_affinity,
        "activity_breadth_correlation": params.activity_breadth_correlation,
        "activity_mainstream_effect": params.activity_mainstream_effect,
    }
    return Dataset(
        name="synthetic",
        interactions=Interactions(interactions),
        catalog=Catalog(catalog),
        users=Users(users_frame),
        metadata={
            "loader": "synthetic",
            "params": params.model_dump(mode="json"),
            "planted": planted,
            "truth": truth,
        },
    )


class SyntheticWorldLoader(DatasetLoader):
    """The seeded synthetic music-streaming world (tracks, users with age and country, a year
    of events) with optional planted quality penalties."""

    name: ClassVar[str] = "synthetic"
    description: ClassVar[str] = "seeded synthetic music-streaming world with planted, known biases"
    Params: ClassVar[type[PluginParams]] = SyntheticWorldParams

    def load(self) -> Dataset:
        params = self.params
        assert isinstance(params, SyntheticWorldParams)
        return generate_world(params)
