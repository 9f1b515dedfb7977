"""The three tables every audit works on, with canonical column names.

* :class:`Interactions`: one row per listening event or per (user, item) aggregate:
  ``user_id``, ``item_id``, ``plays`` (a count or weight, >= 0), and optionally ``timestamp``
  (UTC), ``duration_s`` (play duration in seconds) and ``rating``.
* :class:`Catalog`: one row per item, indexed by ``item_id``: ``title``, ``artist``,
  ``genres`` (a tuple of strings, most relevant first), ``country``, ``release_year``.
  In artist-level data (HetRec Last.fm) the item *is* the artist and ``title == artist``.
* :class:`Users`: one row per user, indexed by ``user_id``, with any attribute columns
  (``age``, ``country``, ...).

Ids are strings everywhere so that any source (integers, UUIDs, names) fits. The classes are
thin, immutable holders: loaders validate once (``audit_sdk.data.validation``) and every later
step can trust the columns and dtypes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CATALOG_COLUMNS",
    "INTERACTION_COLUMNS",
    "Catalog",
    "Dataset",
    "Interactions",
    "Users",
]

INTERACTION_COLUMNS = ("user_id", "item_id", "plays", "timestamp", "duration_s", "rating")
CATALOG_COLUMNS = ("title", "artist", "genres", "country", "release_year")


@dataclass(frozen=True)
class Interactions:
    frame: pd.DataFrame

    @property
    def has_timestamps(self) -> bool:
        return "timestamp" in self.frame.columns and bool(self.frame["timestamp"].notna().any())

    @property
    def has_durations(self) -> bool:
        return "duration_s" in self.frame.columns and bool(self.frame["duration_s"].notna().any())

    @property
    def has_ratings(self) -> bool:
        return "rating" in self.frame.columns and bool(self.frame["rating"].notna().any())

    @property
    def user_ids(self) -> np.ndarray:
        return self.frame["user_id"].unique()

    def __len__(self) -> int:
        return len(self.frame)

    def with_frame(self, frame: pd.DataFrame) -> Interactions:
        return Interactions(frame.reset_index(drop=True))

    def user_item_plays(self) -> pd.DataFrame:
        """Aggregate to one row per (user, item): total plays and, where known, last time."""
        agg: dict[str, Any] = {"plays": ("plays", "sum")}
        if self.has_timestamps:
            agg["last_played"] = ("timestamp", "max")
        return self.frame.groupby(["user_id", "item_id"], as_index=False, sort=False).agg(**agg)


@dataclass(frozen=True)
class Catalog:
    frame: pd.DataFrame  # indexed by item_id

    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.frame.index

    def primary_genre(self) -> pd.Series:
        """The first genre of each item, ``"unknown"`` where an item has none."""
        return self.frame["genres"].map(lambda g: g[0] if len(g) else "unknown")

    def genre_matrix(self, genres: Iterable[str] | None = None) -> pd.DataFrame:
        """Items x genres, each row summing to 1 over the item's genres (0 if none)."""
        exploded = self.frame["genres"].explode().dropna()
        if genres is not None:
            exploded = exploded[exploded.isin(list(genres))]
        if exploded.empty:
            return pd.DataFrame(index=self.frame.index)
        onehot = pd.crosstab(exploded.index, exploded.values).astype(float)
        onehot = onehot.reindex(self.frame.index, fill_value=0.0)
        totals = onehot.sum(axis=1).replace(0.0, 1.0)
        return onehot.div(totals, axis=0)


@dataclass(frozen=True)
class Users:
    frame: pd.DataFrame  # indexed by user_id

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Dataset:
    """A loaded, validated dataset. ``metadata`` carries source files and, for synthetic
    worlds, the planted ground truth."""

    name: str
    interactions: Interactions
    catalog: Catalog
    users: Users
    metadata: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Dataset:
        values: dict[str, Any] = {
            "name": self.name,
            "interactions": self.interactions,
            "catalog": self.catalog,
            "users": self.users,
            "metadata": self.metadata,
        }
        values.update(changes)
        return Dataset(**values)

    def fingerprint(self) -> str:
        """sha256 over the content of the three tables (order-independent of row order)."""
        digest = hashlib.sha256()
        for label, frame in (
            ("interactions", self.interactions.frame),
            ("catalog", self.catalog.frame),
            ("users", self.users.frame),
        ):
            digest.update(label.encode())
            digest.update(",".join(map(str, frame.columns)).encode())
            hashable = frame.copy()
            for column in hashable.columns:
                if hashable[column].dtype == object:
                    hashable[column] = hashable[column].map(_hashable)
            hashed = pd.util.hash_pandas_object(hashable, index=True)
            digest.update(np.sort(hashed.to_numpy()).tobytes())
        return digest.hexdigest()


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return "|".join(map(str, value))
    return value
