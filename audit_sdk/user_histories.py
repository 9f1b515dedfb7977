"""A user's listening history as an ordered list of distinct items.

Where timestamps exist the order is chronological by first listen ("oldest discovery
first"), the order the time-based held-out split continues. HetRec Last.fm has no timestamps:
there the order is by total listening count, most played first (ties by item id); TinyRec's
training additionally shuffles such histories every epoch, so it learns to complete a set
rather than a particular order. Recommendation prompts
(:mod:`audit_sdk.recommendation_prompts`) show histories in this order.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from audit_sdk.data.tables import Interactions

__all__ = ["HistoryOrder", "history_order_for", "user_histories"]

HistoryOrder = Literal["chronological", "plays"]


def history_order_for(interactions: Interactions) -> HistoryOrder:
    return "chronological" if interactions.has_timestamps else "plays"


def user_histories(
    interactions: Interactions, *, order: HistoryOrder | None = None
) -> dict[str, list[str]]:
    """Each user's distinct items, ordered as described in the module docstring.

    :param order: ``None`` picks ``"chronological"`` when the interactions have timestamps
        and ``"plays"`` otherwise.
    """
    order = order or history_order_for(interactions)
    frame = interactions.frame
    if frame.empty:
        return {}
    if order == "chronological":
        agg = frame.groupby(["user_id", "item_id"], as_index=False, sort=False).agg(
            first=("timestamp", "min")
        )
        agg = agg.sort_values(["user_id", "first", "item_id"], kind="mergesort")
    else:
        agg = frame.groupby(["user_id", "item_id"], as_index=False, sort=False).agg(
            plays=("plays", "sum")
        )
        agg = agg.sort_values(
            ["user_id", "plays", "item_id"], ascending=[True, False, True], kind="mergesort"
        )
    users = agg["user_id"].astype(str).to_numpy()
    items = agg["item_id"].astype(str).to_numpy()
    histories: dict[str, list[str]] = {}
    for user, group in pd.Series(items).groupby(users, sort=False):
        histories[str(user)] = group.tolist()
    return histories
