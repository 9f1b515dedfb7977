"""Held-out splits per user: the items a recommender must find.

The test set of a user is the ``test_items`` distinct items they started listening to most
recently (``strategy="time"``, where timestamps exist) or a seeded random choice of their
items (``strategy="random"``). Every event of a held-out item goes to the test set; the rest
is training data. Users left with fewer than ``min_train_items`` training items are not audited
(their events still train the recommenders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from audit_sdk.data.tables import Dataset
from audit_sdk.errors import DataValidationError

__all__ = ["HoldoutSplit", "holdout_split"]


@dataclass(frozen=True)
class HoldoutSplit:
    train: Dataset
    test: Dataset
    strategy: Literal["time", "random"]

    @property
    def users(self) -> list[str]:
        """Audited users: those with held-out items, in a stable order."""
        return sorted(self.test.interactions.frame["user_id"].unique().tolist())


def holdout_split(
    dataset: Dataset,
    *,
    test_items: int = 5,
    strategy: Literal["auto", "time", "random"] = "auto",
    min_train_items: int = 5,
    seed: int = 0,
) -> HoldoutSplit:
    interactions = dataset.interactions
    frame = interactions.frame
    if strategy == "auto":
        strategy = "time" if interactions.has_timestamps else "random"
    if strategy == "time" and not interactions.has_timestamps:
        raise DataValidationError(
            "split.strategy is 'time' but the interactions have no timestamps.",
            source=dataset.name,
            column="timestamp",
            hint="use split.strategy: random (or auto), or load a timestamp column",
        )
    if frame.empty:
        raise DataValidationError("there are no interactions to split.", source=dataset.name)

    pairs = frame.groupby(["user_id", "item_id"], as_index=False, sort=True).agg(
        **({"first": ("timestamp", "min")} if strategy == "time" else {"plays": ("plays", "sum")})
    )
    if strategy == "time":
        # Latest discoveries first; ties broken by item id for determinism.
        pairs = pairs.sort_values(
            ["user_id", "first", "item_id"], ascending=[True, False, True], kind="mergesort"
        )
    else:
        rng = np.random.default_rng(seed)
        pairs = pairs.assign(_key=rng.random(len(pairs))).sort_values(
            ["user_id", "_key"], kind="mergesort"
        )
    pairs["_rank"] = pairs.groupby("user_id", sort=False).cumcount()
    n_items = pairs.groupby("user_id", sort=False)["item_id"].transform("size")
    eligible = n_items - test_items >= min_train_items
    held = pairs.loc[eligible & (pairs["_rank"] < test_items), ["user_id", "item_id"]]

    marked = frame.merge(held.assign(_test=True), on=["user_id", "item_id"], how="left")
    is_test = marked["_test"].fillna(False).astype(bool).to_numpy()
    train_frame = frame.loc[~is_test].reset_index(drop=True)
    test_frame = frame.loc[is_test].reset_index(drop=True)
    if test_frame.empty:
        raise DataValidationError(
            f"no user has at least {test_items + min_train_items} distinct items, so nothing can "
            "be held out.",
            source=dataset.name,
            hint="lower split.test_items or split.min_train_items",
        )
    return HoldoutSplit(
        train=dataset.replace(interactions=interactions.with_frame(train_frame)),
        test=dataset.replace(interactions=interactions.with_frame(test_frame)),
        strategy=strategy,
    )
