"""Groups of users who rated the same item, for the personalization detector.

PerRecBench (Tang et al., "Can Large Language Models Understand Preferences in Personalized
Recommendation?", arXiv 2501.13391, Sec. 3.1) removes item quality and each user's rating
bias from the test: it takes users who rated the *same* query item at about the same time and
asks a model to rank them by their *relative* rating, the rating minus that user's mean, so a
model that only knows how good the item is, or how generous a rater is, cannot score.

Construction (all thresholds are :class:`GroupSettings` fields):

1. ratings with a timestamp and a rating; for each, the user's history is their ratings
   *strictly earlier* in their sorted timeline; the user's mean is the mean of that history
   and the relative rating is ``rating - mean`` (nothing from the query or the future leaks in);
2. ratings whose history has fewer than ``min_history`` items are dropped;
3. the remaining ratings of each item are binned into windows of ``window_days`` days from the
   earliest timestamp in the data, one rating per user and window (the earliest);
4. in each (item, window), the users are sorted by relative rating and a chain is taken greedily
   from the lowest, each next user at least ``min_gap`` above the last kept one, so any two
   users of the chain differ by at least ``min_gap`` (the true ranking has no near-ties);
5. from each chain with at least ``s`` users, one group of ``s`` users is drawn at random for
   each size ``s`` in 2, 3, 4 (easy, medium, hard), and at most ``max_groups_per_size``
   groups of each size are kept (a random subset).

Each step's kept and dropped counts go into :attr:`PersonalizationGroups.counts`.
Cost: one sort of the ratings, then linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.interfaces import PluginParams

__all__ = [
    "DIFFICULTY_BY_SIZE",
    "GroupSettings",
    "PersonalizationGroups",
    "build_groups",
    "rating_timelines",
]

DIFFICULTY_BY_SIZE: dict[int, str] = {2: "easy", 3: "medium", 4: "hard"}


class GroupSettings(PluginParams):
    """Thresholds of group construction (defaults follow PerRecBench's spirit at the scale of
    a 1-5 rating dataset)."""

    window_days: float = Field(
        30.0,
        gt=0,
        description="users rated the query item within the same window of this many days",
    )
    min_history: int = Field(
        5, ge=1, description="ratings a user must have made before the query rating"
    )
    min_gap: float = Field(
        0.5, ge=0, description="smallest difference of relative ratings between two group members"
    )
    sizes: list[int] = Field(
        default_factory=lambda: [2, 3, 4],
        description="group sizes: 2 easy, 3 medium, 4 hard",
    )
    max_groups_per_size: int = Field(
        200, ge=1, description="keep at most this many groups of each size (a random subset)"
    )


@dataclass(frozen=True)
class PersonalizationGroups:
    """``members``: one row per (group, user): ``group_id, size, difficulty, item_id,
    user_id, timestamp, rating, user_mean, relative, history_n`` (group ids ``g0, g1...``, in
    order of size then item); ``timelines``: every usable rating with its user's history mean
    (see :func:`rating_timelines`), for building prompts; ``counts``: kept and dropped at each
    filter."""

    members: pd.DataFrame
    timelines: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return int(self.members["group_id"].nunique()) if len(self.members) else 0


def rating_timelines(interactions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Ratings with a timestamp, sorted by user and time, with ``history_n`` (ratings strictly
    earlier) and ``user_mean`` (their mean; NaN without history) and ``relative``."""
    frame = interactions[["user_id", "item_id", "timestamp", "rating"]]
    usable = frame["rating"].notna() & frame["timestamp"].notna()
    counts = {"ratings": len(frame), "dropped_no_rating_or_time": int((~usable).sum())}
    frame = frame[usable].copy()
    frame["rating"] = frame["rating"].astype(float)
    frame = frame.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    by_user = frame.groupby("user_id", sort=False)["rating"]
    # Ratings at the same instant are not each other's history: rank by time, not by row.
    earlier_n = frame.groupby("user_id", sort=False)["timestamp"].rank(method="min") - 1
    cum = by_user.cumsum() - frame["rating"]
    first_at = (
        frame.groupby(["user_id", "timestamp"], sort=False)["rating"].cumsum() - frame["rating"]
    )
    earlier_sum = cum - first_at
    frame["history_n"] = earlier_n.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["user_mean"] = np.where(
            frame["history_n"] > 0, earlier_sum / frame["history_n"].replace(0, 1), np.nan
        )
    frame["relative"] = frame["rating"] - frame["user_mean"]
    return frame, counts


def _separated_chain(relative: np.ndarray, min_gap: float) -> np.ndarray:
    """Positions (into the ascending ``relative``) of a greedy chain, each at least
    ``min_gap`` above the previous; with ``min_gap == 0`` exact ties are still excluded."""
    keep = [0]
    for i in range(1, len(relative)):
        gap = relative[i] - relative[keep[-1]]
        if gap >= min_gap and gap > 0:
            keep.append(i)
    return np.asarray(keep, dtype=np.intp)


def build_groups(
    interactions: pd.DataFrame, settings: GroupSettings, rng: np.random.Generator
) -> PersonalizationGroups:
    """Groups of users who rated the same item in the same window (see the module docstring)."""
    timelines, counts = rating_timelines(interactions)
    eligible = timelines[timelines["history_n"] >= settings.min_history]
    counts["dropped_short_history"] = int(len(timelines) - len(eligible))
    counts["eligible_ratings"] = len(eligible)
    sizes = sorted(set(settings.sizes))
    empty = pd.DataFrame(
        columns=[
            "group_id",
            "size",
            "difficulty",
            "item_id",
            "user_id",
            "timestamp",
            "rating",
            "user_mean",
            "relative",
            "history_n",
        ]
    )
    if eligible.empty:
        counts.update({"windows": 0, "groups": 0})
        return PersonalizationGroups(empty, timelines, counts)
    t = pd.to_datetime(eligible["timestamp"], utc=True)
    origin = t.min()
    window = ((t - origin) / pd.Timedelta(days=settings.window_days)).astype(np.int64)
    cells = eligible.assign(window=window.to_numpy())
    before = len(cells)
    cells = cells.drop_duplicates(["item_id", "window", "user_id"], keep="first")
    counts["dropped_repeat_in_window"] = int(before - len(cells))
    cells = cells.sort_values(["item_id", "window", "relative"], kind="stable")
    counts["windows"] = int(cells.groupby(["item_id", "window"], sort=False).ngroups)

    candidates: dict[int, list[np.ndarray]] = {s: [] for s in sizes}
    single = 0
    chain_short = dict.fromkeys(sizes, 0)
    gap_dropped = 0
    relative = cells["relative"].to_numpy(dtype=float)
    keys = cells[["item_id", "window"]].to_numpy(dtype=object)
    boundaries = np.flatnonzero((keys[1:, 0] != keys[:-1, 0]) | (keys[1:, 1] != keys[:-1, 1])) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(cells)]])
    for start, end in zip(starts, ends, strict=True):
        if end - start < 2:
            single += 1
            continue
        chain = start + _separated_chain(relative[start:end], settings.min_gap)
        gap_dropped += (end - start) - len(chain)
        for s in sizes:
            if len(chain) < s:
                chain_short[s] += 1
                continue
            candidates[s].append(np.sort(rng.choice(chain, size=s, replace=False)))
    counts["windows_with_one_user"] = single
    counts["users_dropped_by_gap"] = int(gap_dropped)

    rows = cells.reset_index(drop=True)
    parts = []
    next_id = 0
    for s in sizes:
        found = candidates[s]
        counts[f"size_{s}_chain_too_short"] = chain_short[s]
        counts[f"size_{s}_candidates"] = len(found)
        if len(found) > settings.max_groups_per_size:
            chosen = np.sort(rng.choice(len(found), settings.max_groups_per_size, replace=False))
            found = [found[i] for i in chosen]
        counts[f"size_{s}_kept"] = len(found)
        counts[f"size_{s}_dropped_by_cap"] = counts[f"size_{s}_candidates"] - len(found)
        if not found:
            continue
        positions = np.concatenate(found)
        ids = np.repeat([f"g{next_id + j}" for j in range(len(found))], s)
        next_id += len(found)
        part = rows.iloc[positions].copy()
        part.insert(0, "group_id", ids)
        part.insert(1, "size", s)
        part.insert(2, "difficulty", DIFFICULTY_BY_SIZE.get(s, f"size_{s}"))
        parts.append(part.drop(columns=["window"]))
    counts["groups"] = next_id
    members = pd.concat(parts, ignore_index=True) if parts else empty
    return PersonalizationGroups(members[list(empty.columns)], timelines, counts)
