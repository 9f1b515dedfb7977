"""A small rating world with planted per-user preferences and item quality, and deterministic
generating functions (an oracle and a garbage answerer) for the personalization detector.

Rating model: ``r = clip(round(3 + bias_u + quality_i + taste_u[genre_i] + noise), 1, 5)``
with ``bias_u ~ N(0, 0.5)``, ``quality_i ~ N(0, 0.6)``, ``taste_u[g] ~ N(0, taste_sd)`` and
``noise ~ N(0, noise_sd)``; timestamps uniform over ``days`` days. The planted personal
preference of user u for item i is ``taste_u[genre_i]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.interfaces import AuditContext, SubjectOutputs, TokenScores

GENRES = ("rock", "jazz", "pop", "folk", "metal")

# (user_id, item_id) -> true rating, read by the oracle generator (set by ``install_truth``).
TRUTH: dict[tuple[str, str], float] = {}


def rating_world(
    seed: int,
    *,
    n_users: int = 200,
    n_items: int = 40,
    ratings_per_user: int = 30,
    days: float = 120.0,
    taste_sd: float = 1.0,
    noise_sd: float = 0.3,
    rounded: bool = True,
) -> Dataset:
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n_users)]
    items = [f"i{j}" for j in range(n_items)]
    genre = rng.integers(0, len(GENRES), n_items)
    quality = rng.normal(0, 0.6, n_items)
    bias = rng.normal(0, 0.5, n_users)
    taste = rng.normal(0, taste_sd, (n_users, len(GENRES)))
    # Popular items get more raters, so that groups form.
    popularity = np.arange(1, n_items + 1, dtype=float) ** -0.6
    popularity /= popularity.sum()
    start = pd.Timestamp("2024-01-01", tz="UTC")
    chosen = np.stack(
        [rng.choice(n_items, size=ratings_per_user, replace=False, p=popularity) for _ in users]
    )
    user_codes = np.repeat(np.arange(n_users), ratings_per_user)
    item_codes = chosen.ravel()
    pref = taste[user_codes, genre[item_codes]]
    noise = rng.normal(0, noise_sd, len(item_codes))
    raw = 3 + bias[user_codes] + quality[item_codes] + pref + noise
    rating = np.clip(np.round(raw) if rounded else raw, 1, 5)
    seconds = np.sort(rng.uniform(0, days * 86400, (n_users, ratings_per_user)), axis=1).ravel()
    frame = pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=object)[user_codes],
            "item_id": np.asarray(items, dtype=object)[item_codes],
            "plays": 1.0,
            "timestamp": start + pd.to_timedelta(seconds, unit="s"),
            "rating": rating,
            "preference": pref,
        }
    )
    catalog = pd.DataFrame(
        {
            "title": [f"Album {j} ({GENRES[genre[j]]})" for j in range(n_items)],
            "artist": [f"Artist {j}" for j in range(n_items)],
            "genres": [(GENRES[genre[j]],) for j in range(n_items)],
            "country": "US",
            "release_year": 2000,
        },
        index=pd.Index(items, name="item_id"),
    )
    user_frame = pd.DataFrame(
        {"age_group": np.where(np.arange(n_users) % 2 == 0, "young", "old")},
        index=pd.Index(users, name="user_id"),
    )
    planted = frame[["user_id", "item_id", "rating", "preference"]].copy()
    planted["quality"] = quality[pd.Index(items).get_indexer(planted["item_id"])]
    return Dataset(
        name=f"rating-world-{seed}",
        interactions=Interactions(frame.drop(columns=["preference"])),
        catalog=Catalog(catalog),
        users=Users(user_frame),
        metadata={"planted": planted},
    )


def world_context(dataset: Dataset, *, seed: int = 0) -> AuditContext:
    users = dataset.users.frame
    return AuditContext.from_tables(
        config=AuditConfig(seed=seed),
        dataset=dataset,
        user_table=users,
        group_columns=["age_group"],
        subject=SubjectOutputs(name="subject", adapter="test", fingerprint="0" * 64),
    )


def install_truth(dataset: Dataset) -> None:
    TRUTH.clear()
    planted = dataset.metadata["planted"]
    for user, item, rating in planted[["user_id", "item_id", "rating"]].itertuples(index=False):
        TRUTH[(user, item)] = float(rating)


# -- scorers ("package.module:function" targets): fn(queries, dataset) -> scores ----------------
def planted_preference_scorer(queries: pd.DataFrame, dataset: Dataset) -> Sequence[float]:
    """Knows each user's planted taste for the item's genre (not the noise)."""
    planted = dataset.metadata["planted"].set_index(["user_id", "item_id"])["preference"]
    return planted.reindex(pd.MultiIndex.from_frame(queries[["user_id", "item_id"]])).to_numpy()


def true_rating_scorer(queries: pd.DataFrame, dataset: Dataset) -> Sequence[float]:
    """The oracle: the rating the user actually gave, minus their mean (the true relative)."""
    planted = dataset.metadata["planted"].set_index(["user_id", "item_id"])["rating"]
    rating = planted.reindex(pd.MultiIndex.from_frame(queries[["user_id", "item_id"]]))
    return rating.to_numpy() - queries["user_mean"].to_numpy()


def item_quality_scorer(queries: pd.DataFrame, dataset: Dataset) -> Sequence[float]:
    """Knows only how good the item is (the same for every user of a group)."""
    planted = dataset.metadata["planted"].drop_duplicates("item_id").set_index("item_id")
    return planted["quality"].reindex(queries["item_id"]).to_numpy()


# -- generators (callable adapter targets) ------------------------------------------------------
_BLOCK = re.compile(r"\[(?P<label>[A-D])\] user (?P<user>\S+)")
_ITEM = re.compile(r"query item \(id (?P<item>[^)]+)\)")
_POINT = re.compile(r"^user id: (?P<user>\S+)$", re.M)


def oracle_generate(prompt: str) -> str:
    """Answers every personalization prompt from :data:`TRUTH` (ties broken by label)."""
    item = _ITEM.search(prompt)
    assert item is not None, prompt
    item_id = item["item"]
    point = _POINT.search(prompt)
    if point is not None:
        return json.dumps({"rating": TRUTH[(point["user"], item_id)]})
    labels = {m["label"]: m["user"] for m in _BLOCK.finditer(prompt)}
    means = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"user (\S+) \(mean rating ([-0-9.]+)\)", prompt)
    }
    relative = {label: TRUTH[(user, item_id)] - means[user] for label, user in labels.items()}
    order = sorted(relative, key=lambda label: -relative[label])
    if "ranking" in prompt:
        return f"Sure! Here it is: {json.dumps({'ranking': order})}"
    return json.dumps({"preferred": order[0]})


def garbage_generate(prompt: str) -> str:
    return "I am unable to help with that request."


# -- a scoring recommender (callable adapter with ``score``) -------------------------------------
# history prompt -> user id, and (user id, item title) -> the user's true relative rating: an
# oracle that recognises the user from the history the detector shows it (set by the test).
HISTORIES: dict[str, str] = {}
RELATIVE: dict[tuple[str, str], float] = {}


def oracle_score(prompts: list[str], continuations: list[str]) -> list[TokenScores]:
    """log p(item | history) := the user's true relative rating for the item."""
    out = []
    for prompt, continuation in zip(prompts, continuations, strict=True):
        user = HISTORIES[prompt]
        out.append(TokenScores([0], [RELATIVE[(user, continuation.strip())]]))
    return out
