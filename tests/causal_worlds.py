"""Synthetic worlds with planted genre effects and confounding, for the causal tests.

Users (age, activity) come from the synthetic music world's taste model
(:func:`audit_sdk.data.synthetic_world.simulate_user_covariates`). Each genre's binary
treatment ("heavy listener of g") is drawn from a logistic propensity in age and activity
with genre-specific signs (metal and hip-hop lean young and active, jazz and classical old),
independently across genres given the covariates, so that the planted coefficient of a genre
*is* its average treatment effect. The outcome depends on age and activity (non-linearly:
a ridge outcome model is misspecified, the logistic propensity is not, so the AIPW estimate is
consistent by double robustness) plus the planted effects, plus noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from audit_sdk.config import AuditConfig
from audit_sdk.data.synthetic_world import simulate_user_covariates
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import AuditContext, SubjectOutputs

GENRES: tuple[str, ...] = ("pop", "rock", "hip-hop", "metal", "jazz", "classical")
PLANTED: dict[str, float] = {"metal": -0.5, "jazz": 0.3}
# intercept, age slope, activity slope of each genre's propensity (logit scale)
_PROPENSITY: dict[str, tuple[float, float, float]] = {
    "pop": (0.4, -0.5, -0.4),
    "rock": (-0.2, 0.4, 0.2),
    "hip-hop": (-0.4, -0.9, 0.3),
    "metal": (-0.6, -0.8, 0.7),
    "jazz": (-0.7, 0.9, -0.5),
    "classical": (-0.9, 1.0, -0.3),
}


@dataclass(frozen=True)
class CausalWorld:
    y: np.ndarray
    treatments: np.ndarray  # n x m, 0/1
    covariates: np.ndarray  # n x 2: age, activity
    names: tuple[str, ...]
    truth: np.ndarray  # planted ATE per treatment


def confounded_world(
    n_users: int,
    *,
    seed: int,
    effects: dict[str, float] | None = None,
    genres: tuple[str, ...] = GENRES,
    noise: float = 1.0,
) -> CausalWorld:
    effects = PLANTED if effects is None else effects
    users = simulate_user_covariates(n_users, seed=seed)
    age = users["age"].to_numpy(dtype=float)
    activity = users["activity"].to_numpy(dtype=float)
    age_z = (age - 40.0) / 15.0
    act_z = (activity - activity.mean()) / activity.std()
    rng = np.random.default_rng([seed, 20250722])
    coef = np.array([_PROPENSITY[g] for g in genres])  # m x 3
    logits = coef[:, 0] + np.outer(age_z, coef[:, 1]) + np.outer(act_z, coef[:, 2])
    treatments = (rng.random(logits.shape) < expit(logits)).astype(np.int8)
    truth = np.array([effects.get(g, 0.0) for g in genres])
    y = (
        1.0 * age_z
        - 0.8 * act_z
        + 0.4 * age_z**2
        + treatments @ truth
        + noise * rng.standard_normal(n_users)
    )
    return CausalWorld(
        y=y,
        treatments=treatments,
        covariates=np.column_stack([age, activity]),
        names=genres,
        truth=truth,
    )


# ---------------------------------------------------------------------------------------------
# a whole audit context, for the detector


DETECTOR_GENRES: tuple[str, ...] = (
    "pop",
    "rock",
    "hip-hop",
    "electronic",
    "metal",
    "jazz",
    "classical",
    "folk",
    "latin",
    "r&b",
    "country",
    "blues",
)
DETECTOR_PLANTED: dict[str, float] = {"metal": -0.1, "jazz": 0.06}


def _genre_propensity_slopes(genres: tuple[str, ...]) -> np.ndarray:
    # young users lean to the first genres, old users to the last ones
    return np.linspace(-0.9, 0.9, len(genres))


def heavy_listeners(shares: pd.DataFrame) -> pd.DataFrame:
    """1 where a user's share is above the genre's median among users with a nonzero share."""
    positive = shares.where(shares > 0)
    return (shares > positive.median(axis=0)).astype(np.int8)


def audit_context(
    n_users: int,
    *,
    seed: int,
    effects: dict[str, float] | None = None,
    genres: tuple[str, ...] = DETECTOR_GENRES,
    logged: bool = False,
    windows: tuple[str, ...] = ("30d", "90d"),
) -> AuditContext:
    """An audit of ``n_users`` with genre exposure confounded by age (and user country).

    History mode (``logged=False``): each genre has four single-genre artists from random
    countries; a user's plays on a genre follow a weight that is tripled when the user is
    drawn as a fan of the genre (spread over its artists at random), and
    ``user_table["ndcg@10"]`` = base + age and country terms + the planted effect of being
    a heavy listener (share above the genre's listeners' median, as the detector defines it)
    + noise. Fandom is drawn independently per genre given age and country, with many genres
    so that one genre's weight barely moves another's share.

    Logged mode (``logged=True``): no ndcg; ``subject.profiles`` has one row per (user,
    window) with ``share:<genre>`` columns (independent per genre given the covariates, not
    summing to 1, as a logging system may record them) and a ``rating`` with the planted
    effect of the user's heavy-listener status.
    """
    effects = DETECTOR_PLANTED if effects is None else effects
    rng = np.random.default_rng([seed, 2507])
    user_ids = np.array([f"u{i:05d}" for i in range(n_users)], dtype=object)
    age = rng.integers(16, 70, size=n_users).astype(float)
    age_z = (age - 40.0) / 15.0
    country = rng.choice(
        np.array(["US", "GB", "BR"], dtype=object), size=n_users, p=[0.5, 0.3, 0.2]
    )
    is_br = (country == "BR").astype(float)
    slopes = _genre_propensity_slopes(genres)
    logits = np.outer(age_z, slopes) + np.outer(is_br, np.where(slopes > 0, -0.6, 0.6))
    fan = rng.random(logits.shape) < expit(logits - 0.3)
    weight = np.exp(0.3 * rng.standard_normal(logits.shape)) * np.where(fan, 3.0, 1.0)

    users = pd.DataFrame({"age": age, "country": country}, index=pd.Index(user_ids, name="user_id"))
    # artist countries at random (a regular pattern, e.g. genre g's two artists in countries
    # g and g + 1, makes some country shares exact linear functions of the others)
    per_genre = 4
    artist_country = rng.choice(["US", "GB", "SE", "JP", "BR", "NG"], size=per_genre * len(genres))
    catalog_rows = []
    for g, genre in enumerate(genres):
        for copy in range(per_genre):
            item = f"{genre}-{copy}"
            catalog_rows.append(
                {
                    "item_id": item,
                    "title": item,
                    "artist": item,
                    "genres": (genre,),
                    "country": str(artist_country[per_genre * g + copy]),
                    "release_year": 2000,
                }
            )
    catalog = pd.DataFrame(catalog_rows).set_index("item_id")
    share_true = weight / weight.sum(axis=1, keepdims=True)
    # within a genre, a user's plays spread over its artists at random, so artist-country
    # shares are not a function of genre shares
    within = rng.dirichlet(np.ones(per_genre), size=(n_users, len(genres)))
    plays = np.maximum(1, np.rint(600 * share_true[:, :, None] * within)).astype(np.int64)
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(user_ids, len(catalog)),
            "item_id": np.tile(catalog.index.to_numpy(), n_users),
            "plays": plays.reshape(-1),
        }
    )
    genre_plays = pd.DataFrame(plays.sum(axis=2), index=users.index, columns=list(genres))
    history_shares = genre_plays.div(genre_plays.sum(axis=1), axis=0)
    truth = np.array([effects.get(g, 0.0) for g in genres])
    noise = 0.1 * rng.standard_normal(n_users)
    base = 0.35 + 0.05 * age_z - 0.04 * is_br

    user_table = users.copy()
    profiles = None
    metric_columns: list[str] = []
    if not logged:
        heavy = heavy_listeners(history_shares)
        user_table["ndcg@10"] = base + heavy.to_numpy() @ truth + noise
        metric_columns = ["ndcg@10"]
    else:
        rows = []
        for window in windows:
            logged_shares = np.clip(
                np.where(fan, 0.4, 0.1) + 0.08 * rng.standard_normal(fan.shape), 0.0, 1.0
            )
            table = pd.DataFrame(logged_shares, columns=[f"share:{g}" for g in genres])
            heavy = heavy_listeners(table)
            rating = 3.0 + 0.3 * age_z - 0.2 * is_br + 10 * (heavy.to_numpy() @ truth)
            rating = rating + 0.5 * rng.standard_normal(n_users)
            table.insert(0, "user_id", user_ids)
            table.insert(1, "window", window)
            table["rating"] = rating
            rows.append(table)
        profiles = pd.concat(rows, ignore_index=True)

    dataset = Dataset(
        name="causal-test",
        interactions=Interactions(frame),
        catalog=Catalog(catalog),
        users=Users(users),
        metadata={"planted": dict(effects)},
    )
    subject = SubjectOutputs(
        name="subject", adapter="test", fingerprint="0" * 64, profiles=profiles
    )
    return AuditContext.from_tables(
        config=AuditConfig(seed=seed),
        dataset=dataset,
        user_table=user_table,
        group_columns=["country"],
        metric_columns=metric_columns,
        subject=subject,
    )


def with_tables(
    context: AuditContext,
    *,
    user_table: pd.DataFrame | None = None,
    subject: SubjectOutputs | None = None,
) -> AuditContext:
    """The same audit with a different user table and/or subject outputs."""
    return AuditContext.from_tables(
        config=context.config,
        dataset=context.dataset,
        user_table=context.user_table if user_table is None else user_table,
        group_columns=context.group_columns,
        metric_columns=context.metric_columns,
        subject=context.subject if subject is None else subject,
    )
