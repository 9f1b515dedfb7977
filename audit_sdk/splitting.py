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
import pandas as pd

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

    is_test = _held_out_events(
        frame, strategy=strategy, test_items=test_items, min_train_items=min_train_items, seed=seed
    )
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


def _held_out_events(
    frame: pd.DataFrame,
    *,
    strategy: Literal["time", "random"],
    test_items: int,
    min_train_items: int,
    seed: int,
) -> np.ndarray:
    """Which events belong to held-out (user, item) pairs, on integer codes: users and items
    coded in sorted order, pairs as one int64 key, one sort of the pairs. Linear in events but
    for the O(n log n) sorts; the same pairs as ranking the (user, item) groups by pandas."""
    user_codes, _ = pd.factorize(frame["user_id"], sort=True)
    item_codes, items = pd.factorize(frame["item_id"], sort=True)
    key = user_codes.astype(np.int64) * len(items) + item_codes
    pair_keys, pair_of_event = np.unique(key, return_inverse=True)  # sorted by (user, item)
    pair_user = pair_keys // len(items)
    pair_item = pair_keys % len(items)
    if strategy == "time":
        stamps = pd.Series(pd.DatetimeIndex(frame["timestamp"]).asi8)
        first = stamps.groupby(pair_of_event).min().to_numpy()
        # Latest discoveries first; ties broken by item id for determinism.
        order = np.lexsort((pair_item, -first, pair_user))
    else:
        draw = np.random.default_rng(seed).random(len(pair_keys))
        order = np.lexsort((draw, pair_user))
    sorted_users = pair_user[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    eligible = np.repeat(sizes - test_items >= min_train_items, sizes)
    held = np.zeros(len(pair_keys), dtype=bool)
    held[order[eligible & (rank < test_items)]] = True
    return held[pair_of_event]
