"""Scorers the personalization detector ranks directly: reference points, and any function.

A scorer is ``fn(queries, dataset) -> scores``: one score per row of ``queries`` (``group_id,
user_id, item_id, timestamp, user_mean, history_n``), higher meaning the user likes the item
more *relative to their own mean*. Built-ins:

* ``random``: a seeded draw per member (chance: tau 0);
* ``user_mean``: predicts each user's mean rating, so every relative prediction is 0 (no
  information: tau 0);
* ``item_mean``: the item's mean rating, item quality only, the same for every member of a
  group (tau 0: the groups are built to cancel it);
* ``constant_rating``: the pointwise floor, one rating for everyone ranked the way pointwise
  predictions are (prediction minus the user's mean). It is *not* at chance: subtracting each
  user's mean ranks harsh raters first, and a relative rating shares the noise of the user's
  estimated mean (regression to the mean) and the ceiling of the scale, so on rating data it
  scores a positive tau that a pointwise LLM must beat before its tau means anything;
* ``item_knn``: item-based collaborative filtering on mean-centred ratings (Sarwar et al.,
  WWW 2001, Eqs. 2 and 4: cosine similarity of centred item columns, "adjusted cosine", and the
  similarity-weighted sum of the user's ratings), over the user's ratings before the query and
  the ``neighbours`` most similar of them, with the user's own row left out of each
  similarity so that their query rating never informs its own prediction.

``"package.module:function"`` names any other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._personalization_groups import rating_timelines

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset

__all__ = ["BUILTIN_SCORERS", "Scorer", "builtin_rating", "item_knn_scorer", "resolve_scorer"]

Scorer = Callable[[pd.DataFrame, "Dataset"], "Sequence[float] | np.ndarray"]


def _item_mean_scorer(queries: pd.DataFrame, dataset: Dataset) -> np.ndarray:
    frame = dataset.interactions.frame
    means = frame.dropna(subset=["rating"]).groupby("item_id")["rating"].mean()
    return means.reindex(queries["item_id"]).fillna(float(means.mean())).to_numpy()


def _user_mean_scorer(queries: pd.DataFrame, dataset: Dataset) -> np.ndarray:
    return np.zeros(len(queries))  # predicted rating = user mean: relative 0 for everyone


def _constant_rating_scorer(queries: pd.DataFrame, dataset: Dataset) -> np.ndarray:
    rating = dataset.interactions.frame["rating"]
    return float(rating.mean()) - queries["user_mean"].to_numpy(dtype=float)


def item_knn_scorer(queries: pd.DataFrame, dataset: Dataset, *, neighbours: int = 20) -> np.ndarray:
    """Predicted relative rating by adjusted-cosine item kNN (see the module docstring)."""
    timelines, _ = rating_timelines(dataset.interactions.frame)
    cells = timelines.groupby(["user_id", "item_id"], sort=False)["rating"].mean().reset_index()
    cells["centred"] = cells["rating"] - cells.groupby("user_id")["rating"].transform("mean")
    users = pd.Index(cells["user_id"].unique())
    items = pd.Index(cells["item_id"].unique())
    x = sparse.csr_matrix(
        (
            cells["centred"].to_numpy(dtype=float),
            (users.get_indexer(cells["user_id"]), items.get_indexer(cells["item_id"])),
        ),
        shape=(len(users), len(items)),
    )
    gram = (x.T @ x).tocsr()
    gram.sort_indices()
    norms = np.asarray(x.multiply(x).sum(axis=0)).ravel()
    centred = timelines.merge(cells[["user_id", "item_id", "centred"]], on=["user_id", "item_id"])
    centred = centred.sort_values(["user_id", "timestamp"], kind="stable")
    codes = items.get_indexer(centred["item_id"])
    times = pd.to_datetime(centred["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
    ratings = centred["rating"].to_numpy(dtype=float)
    centred_values = centred["centred"].to_numpy(dtype=float)
    by_user = {
        user: np.asarray(positions)
        for user, positions in centred.reset_index(drop=True)
        .groupby("user_id", sort=False)
        .indices.items()
    }
    rows_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def gram_at(q: int, j: np.ndarray) -> np.ndarray:
        if q not in rows_of:
            start, end = gram.indptr[q], gram.indptr[q + 1]
            rows_of[q] = (gram.indices[start:end], gram.data[start:end])
        indices, data = rows_of[q]
        pos = np.minimum(np.searchsorted(indices, j), max(len(indices) - 1, 0))
        hit = (indices[pos] == j) if len(indices) else np.zeros(len(j), dtype=bool)
        return np.where(hit, data[pos] if len(indices) else 0.0, 0.0)

    out = np.zeros(len(queries))
    query_times = pd.to_datetime(queries["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
    query_items = items.get_indexer(queries["item_id"])
    for row, (user, q, t, mean) in enumerate(
        zip(queries["user_id"], query_items, query_times, queries["user_mean"], strict=True)
    ):
        positions = by_user.get(user)
        if q < 0 or positions is None:
            continue
        own = codes[positions] == q
        x_uq = float(centred_values[positions][own][0]) if own.any() else 0.0
        earlier = positions[(times[positions] < t) & ~own]
        if len(earlier) == 0:
            continue
        j = codes[earlier]
        relative = ratings[earlier] - mean
        x_uj = centred_values[earlier]
        dots = gram_at(q, j) - x_uq * x_uj
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = dots / np.sqrt((norms[q] - x_uq**2) * (norms[j] - x_uj**2))
        sim = np.where(np.isfinite(sim), sim, 0.0)
        top = np.argsort(-sim, kind="stable")[:neighbours]
        top = top[sim[top] > 0]
        if len(top):
            out[row] = float(sim[top] @ relative[top] / sim[top].sum())
    return out


BUILTIN_SCORERS: dict[str, Scorer] = {
    "user_mean": _user_mean_scorer,
    "item_mean": _item_mean_scorer,
    "constant_rating": _constant_rating_scorer,
    "item_knn": item_knn_scorer,
}


def builtin_rating(
    name: str, queries: pd.DataFrame, scores: np.ndarray, dataset: Dataset
) -> np.ndarray | None:
    """The rating a built-in scorer predicts (for MAE/RMSE beside its tau), or None."""
    mean = queries["user_mean"].to_numpy(dtype=float)
    if name == "user_mean":
        return mean
    if name == "item_mean":
        return scores
    if name == "constant_rating":
        return scores + mean  # the overall mean rating for everyone
    if name == "item_knn":
        return mean + scores
    return None


def resolve_scorer(name: str) -> Scorer | None:
    """A built-in scorer, a ``package.module:function``, or None for ``random`` (which needs
    the detector's generator)."""
    if name == "random":
        return None
    if name in BUILTIN_SCORERS:
        return BUILTIN_SCORERS[name]
    module, sep, attribute = name.partition(":")
    known = ", ".join(["random", *BUILTIN_SCORERS])
    if not sep or not module or not attribute:
        raise ValueError(
            f"detector 'personalization', params.scorers: unknown scorer {name!r}; use one of "
            f"{known} or 'package.module:function'"
        )
    try:
        obj: Any = importlib.import_module(module)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"detector 'personalization', params.scorers: cannot load {name!r} "
            f"({type(exc).__name__}: {exc}); check that the module is importable"
        ) from exc
    if not callable(obj):
        raise ValueError(f"detector 'personalization', params.scorers: {name!r} is not callable")
    return obj
