"""One definition of each listening feature, computed from an interactions table.

Every detector, group and mitigator reads these through :class:`~audit_sdk.features.UserFeatures`
(``context.features``), so "a user's genre shares" means one thing everywhere:

* **item popularity**: the share of training users who played the item at least once
  (Abdollahpouri et al., UMAP 2019; Kowald et al., ECIR 2020 use the same user-count form).
* **genre shares** p(g | u): the user's plays spread over genres, an item's plays split equally
  over its genres; rows sum to 1 over the plays whose item has a genre (Steck, RecSys 2018,
  eq. 1 with w = plays).
* **country shares**: the same over the artists' countries (one country per item).
* **genre entropy**: Shannon entropy (nats) of the genre shares, the "taste breadth" of
  Sguerra et al. (RecSys 2025) and Kowald et al. (2020).
* **activity**: the number of training events (``activity_events``) and their total plays
  (``activity_plays``, listening volume).
* **mainstreamness**: the mean popularity of the distinct items a user played (Bauer & Schedl,
  PLOS ONE 2019, the "popularity-based" variant).

All are linear in the number of interactions: one sparse users x items matrix, products with
items x levels indicator matrices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "activity_events",
    "activity_plays",
    "country_shares",
    "genre_entropy",
    "genre_shares",
    "item_level_matrix",
    "item_popularity",
    "level_shares",
    "mainstreamness",
    "user_item_plays",
]


def user_item_plays(
    interactions: pd.DataFrame, users: pd.Index, items: pd.Index
) -> sparse.csr_matrix:
    """Users x items matrix of summed plays (rows in ``users`` order; unknown ids dropped)."""
    rows = users.get_indexer(interactions["user_id"])
    cols = items.get_indexer(interactions["item_id"])
    keep = (rows >= 0) & (cols >= 0)
    plays = interactions["plays"].to_numpy(dtype=float)[keep]
    return sparse.csr_matrix((plays, (rows[keep], cols[keep])), shape=(len(users), len(items)))


def item_popularity(interactions: pd.DataFrame, items: pd.Index) -> pd.Series:
    """Share of users in ``interactions`` who played each item in ``items`` (0 for unseen)."""
    n_users = max(int(interactions["user_id"].nunique()), 1)
    pairs = interactions[["user_id", "item_id"]].drop_duplicates()
    counts = pairs["item_id"].value_counts(sort=False)
    return (counts / n_users).reindex(items, fill_value=0.0).astype(float).rename("popularity")


def item_level_matrix(
    catalog: pd.DataFrame, column: str
) -> tuple[sparse.csr_matrix, list[str]] | None:
    """Items x levels weights (rows sum to 1 over the item's levels, 0 without any) for a
    catalog column holding a tuple of levels (``genres``) or one level (``country``)."""
    if column not in catalog.columns:
        return None
    values = catalog[column]

    def as_tuple(value: object) -> tuple[str, ...]:
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value if v is not None and str(v).strip())
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ()
        text = str(value).strip()
        return (text,) if text and text.lower() != "nan" else ()

    levels_per_item = values.map(as_tuple)
    levels = sorted({level for levels in levels_per_item for level in levels})
    if not levels:
        return None
    position = {level: j for j, level in enumerate(levels)}
    rows, cols, weights = [], [], []
    for i, item_levels in enumerate(levels_per_item.to_numpy()):
        unique = list(dict.fromkeys(item_levels))
        for level in unique:
            rows.append(i)
            cols.append(position[level])
            weights.append(1.0 / len(unique))
    matrix = sparse.csr_matrix(
        (np.asarray(weights), (np.asarray(rows), np.asarray(cols))),
        shape=(len(catalog), len(levels)),
    )
    return matrix, levels


def level_shares(
    plays: sparse.csr_matrix, levels: tuple[sparse.csr_matrix, list[str]] | None, users: pd.Index
) -> pd.DataFrame:
    """Users x levels shares of plays (rows sum to 1, or 0 for a user with no known level)."""
    if levels is None:
        return pd.DataFrame(index=users)
    matrix, names = levels
    mass = np.asarray((plays @ matrix).todense(), dtype=float)
    totals = mass.sum(axis=1, keepdims=True)
    shares = np.divide(mass, totals, out=np.zeros_like(mass), where=totals > 0)
    return pd.DataFrame(shares, index=users, columns=pd.Index(names, dtype=object))


def genre_shares(
    interactions: pd.DataFrame, catalog: pd.DataFrame, users: Sequence[str]
) -> pd.DataFrame:
    """p(g | u) for every user in ``users`` (see the module docstring)."""
    index = pd.Index(list(users), name="user_id")
    plays = user_item_plays(interactions, index, catalog.index)
    return level_shares(plays, item_level_matrix(catalog, "genres"), index)


def country_shares(
    interactions: pd.DataFrame, catalog: pd.DataFrame, users: Sequence[str]
) -> pd.DataFrame:
    """The share of each user's plays on artists from each country."""
    index = pd.Index(list(users), name="user_id")
    plays = user_item_plays(interactions, index, catalog.index)
    return level_shares(plays, item_level_matrix(catalog, "country"), index)


def genre_entropy(shares: pd.DataFrame) -> pd.Series:
    """Shannon entropy (nats) of each row of a shares table; 0 for an all-zero row."""
    values = shares.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(values > 0, -values * np.log(values), 0.0)
    return pd.Series(terms.sum(axis=1), index=shares.index, name="genre_entropy")


def activity_events(interactions: pd.DataFrame, users: Sequence[str]) -> pd.Series:
    """Number of training events per user (0 for none)."""
    index = pd.Index(list(users), name="user_id")
    counts = interactions["user_id"].value_counts(sort=False)
    return counts.reindex(index, fill_value=0).astype(np.int64).rename("activity_events")


def activity_plays(interactions: pd.DataFrame, users: Sequence[str]) -> pd.Series:
    """Total plays per user (listening volume; 0 for none)."""
    index = pd.Index(list(users), name="user_id")
    totals = interactions.groupby("user_id", sort=False)["plays"].sum()
    return totals.reindex(index, fill_value=0).astype(float).rename("activity_plays")


def mainstreamness(
    interactions: pd.DataFrame, popularity: pd.Series, users: Sequence[str]
) -> pd.Series:
    """Mean popularity of the distinct items each user played (NaN for none)."""
    index = pd.Index(list(users), name="user_id")
    pairs = interactions[["user_id", "item_id"]].drop_duplicates()
    score = pairs["item_id"].map(popularity).fillna(0.0).groupby(pairs["user_id"]).mean()
    return score.reindex(index).astype(float).rename("mainstreamness")
