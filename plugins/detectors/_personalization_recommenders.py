"""Recommenders ranked directly by the personalization detector: no prompt asks for a rating;
the recommender's own affinity of each group member for the query item orders the group.

* An adapter that can ``score`` (an LLM with log-probabilities, TinyRec) is asked for
  ``log p(query item | the user's history)``: the recommendation prompt of
  :mod:`audit_sdk.recommendation_prompts` with the user's items *before* the query (the most
  recent ``max_history``, oldest first) and the query item's title as the continuation. The
  continuation is the same for every member of a group, so the log-probabilities compare.
* An adapter that only ``recommend``\\ s (the popularity, item-kNN and random baselines, a
  team's own recommender) excludes items a user has already consumed, and every member has
  consumed the query item. So a *fresh* instance (same class, same params; the audit's own
  instance is left alone) is fit on the interactions without the members' (user, query item)
  rows, asked for each member's ranking of the whole catalog, and the query item's position
  as a share of that user's list ranks the members (earlier = likes it more; not in the list
  = tied last; a share, since a heavy listener has fewer unseen items and so smaller raw
  positions even under a random recommender). The refit sees
  the rest of each user's log, later listening included: an optimistic reference.
* Any other adapter cannot be ranked: its run says why (``unrankable``) and the report
  shows that instead of a tau.

Neither score is a relative rating: they measure how strongly the model ties the item to the
user, which is what a recommender has to offer; the tau says whether that orders users the
way their relative ratings do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Dataset, Interactions
from audit_sdk.recommendation_prompts import catalog_unit, clean_title, recommendation_prompt

from ._personalization_methods import MethodRun, base_frame

if TYPE_CHECKING:
    from audit_sdk.interfaces.adapter import GeneratorAdapter

    from ._personalization_groups import PersonalizationGroups

__all__ = ["history_prompts", "rank_with_recommender", "ranking_capability"]


def ranking_capability(adapter: GeneratorAdapter) -> str | None:
    """``"score"``, ``"recommend"`` or None (cannot be ranked directly)."""
    if adapter.supports("score"):
        return "score"
    if adapter.supports("recommend"):
        return "recommend"
    return None


def rank_with_recommender(
    adapter: GeneratorAdapter,
    groups: PersonalizationGroups,
    dataset: Dataset,
    *,
    label: str,
    max_history: int = 50,
    batch_size: int = 64,
) -> MethodRun:
    frame = base_frame(groups)
    capability = ranking_capability(adapter)
    if capability is None:
        frame["predicted"] = np.nan
        reason = (
            f"{label}: adapter {adapter.name!r} can neither score a continuation nor "
            f"recommend (it declares: {', '.join(sorted(adapter.capabilities)) or 'nothing'}), "
            "so it cannot be ranked directly"
        )
        return MethodRun(label, frame, {"queries": len(frame)}, unrankable=reason)
    if capability == "score":
        scores = _log_likelihoods(adapter, groups, dataset, max_history, batch_size)
    else:
        scores = _positions(adapter, groups, dataset)
    frame["predicted"] = scores
    counts = {
        "queries": len(frame),
        "missing_scores": int((~np.isfinite(scores)).sum()),
        f"ranked_by_{capability}": len(frame),
    }
    return MethodRun(label, frame, counts)


def _titles(dataset: Dataset) -> pd.Series:
    catalog = dataset.catalog.frame
    titles = catalog["title"] if "title" in catalog else pd.Series(catalog.index, catalog.index)
    titles = titles.fillna(pd.Series(catalog.index, index=catalog.index))
    return titles.map(clean_title)


def history_prompts(
    groups: PersonalizationGroups, dataset: Dataset, *, max_history: int = 50
) -> tuple[list[str], list[str]]:
    """Per member (in ``groups.members`` order): the recommendation prompt of their history
    before the query (distinct items in order of their last listen, the most recent
    ``max_history``, oldest first) and the continuation, the query item's title."""
    members = groups.members.reset_index(drop=True)
    log = dataset.interactions.frame[["user_id", "item_id", "timestamp"]]
    log = log[log["user_id"].isin(set(members["user_id"]))]
    log = log.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    times = pd.to_datetime(log["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
    items = log["item_id"].to_numpy(dtype=object)
    by_user = log.groupby("user_id", sort=False).indices
    titles = _titles(dataset)
    unit = catalog_unit(dataset.catalog)
    member_times = pd.to_datetime(members["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
    prompts, continuations = [], []
    for user, item, t in zip(members["user_id"], members["item_id"], member_times, strict=True):
        positions = np.asarray(by_user.get(user, []), dtype=np.intp)
        earlier = items[positions[times[positions] < t]]
        distinct = list(dict.fromkeys(earlier[::-1]))[:max_history][::-1]
        history = [str(titles.get(i, i)) for i in distinct]
        prompts.append(recommendation_prompt(history, unit=unit, order="chronological"))
        continuations.append(f"{titles.get(item, item)}\n")
    return prompts, continuations


def _log_likelihoods(
    adapter: GeneratorAdapter,
    groups: PersonalizationGroups,
    dataset: Dataset,
    max_history: int,
    batch_size: int,
) -> np.ndarray:
    prompts, continuations = history_prompts(groups, dataset, max_history=max_history)
    keys = list(dict.fromkeys(zip(prompts, continuations, strict=True)))
    totals: dict[tuple[str, str], float] = {}
    for start in range(0, len(keys), batch_size):
        chunk = keys[start : start + batch_size]
        out = adapter.score([p for p, _ in chunk], [c for _, c in chunk])
        totals.update({key: s.total for key, s in zip(chunk, out, strict=True)})
    return np.array([totals[key] for key in zip(prompts, continuations, strict=True)])


def _positions(
    adapter: GeneratorAdapter, groups: PersonalizationGroups, dataset: Dataset
) -> np.ndarray:
    members = groups.members.reset_index(drop=True)
    frame = dataset.interactions.frame
    pairs = pd.MultiIndex.from_frame(members[["user_id", "item_id"]].drop_duplicates())
    keep = ~pd.MultiIndex.from_frame(frame[["user_id", "item_id"]]).isin(pairs)
    fresh = type(adapter)(adapter.params)
    try:
        fresh.fit(dataset.replace(interactions=Interactions(frame[keep].reset_index(drop=True))))
        users = list(dict.fromkeys(members["user_id"]))
        n_items = len(dataset.catalog)
        ranked = fresh.recommend(users, k=n_items)
    finally:
        fresh.close()
    # The position as a share of the user's own list: a user who has heard more has fewer
    # unseen items, so raw positions would rank heavy listeners first even for a random
    # recommender. Not in the list: last (1).
    listed = ranked.groupby("user_id", sort=False)["rank"].transform("max")
    share = ((ranked["rank"] - 1) / listed.clip(lower=1)).to_numpy(dtype=float)
    position = pd.Series(share, index=pd.MultiIndex.from_frame(ranked[["user_id", "item_id"]]))
    found = position.reindex(pd.MultiIndex.from_frame(members[["user_id", "item_id"]]))
    return -found.fillna(1.0).to_numpy(dtype=float)
