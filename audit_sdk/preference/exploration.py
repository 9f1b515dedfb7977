"""Exploration (LettinGo, arXiv 2506.18309, Sec. 3.1): many profiles per user, sampled at a
high temperature from one or more writers, each written from the user's older history while
the most recent interactions are kept apart for the downstream task.

:func:`hold_out_recent` splits each user's training history (by timestamp; a seeded shuffle
where the data has none): the latest ``targets`` events are the task's targets, the
``recent`` events before them are the recent interactions the downstream recommender also
sees, and profiles are written from the events before those. The paper holds out one target
after the recent interactions (``targets=1, recent=4``). The defaults (``targets=5,
recent=0``) are what steadies the pairs for a bi-encoder, measured on the demo world: with
several targets a profile's utility is an average over items rather than the luck of one, and
the recent items, which add the same to every profile of a user, drown the profile out (the
template writer's profile beat the median TinyRec profile of the same user for 91% of users
with ``targets=5, recent=0``, for 34% with the paper's setting, where 62% tied).

:func:`explore_profiles` writes ``n_profiles`` per user and writer through the audit's
:class:`~audit_sdk.services.GenerationService`: each draw has its own sampling seed, so the
generation cache keeps every draw (and a rerun finds them all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Dataset
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.profile_pipeline import profile_prompt_table, sample_profile_windows
from audit_sdk.services import GenerationService

__all__ = ["EXPLORATION_COLUMNS", "TaskSplit", "draw_seed", "explore_profiles", "hold_out_recent"]

EXPLORATION_COLUMNS = ("user_id", "writer", "draw", "seed", "prompt", "text", "error", "cached")


@dataclass(frozen=True)
class TaskSplit:
    """Each task user's older history (what profiles are written from), recent interactions
    and held-out target."""

    older: Dataset
    recent: pd.DataFrame
    """``user_id, item_id, position`` (1 = oldest), the ``recent`` events before the targets"""
    held_out: pd.DataFrame
    """``user_id, item_id, position`` (1 = oldest) of every target, the latest events"""

    @property
    def users(self) -> list[str]:
        return list(dict.fromkeys(self.held_out["user_id"].astype(str)))

    @property
    def targets(self) -> pd.Series:
        """user_id -> the user's latest held-out item (the paper's single target)"""
        latest = self.held_out.sort_values("position").groupby("user_id", sort=False).last()
        return latest["item_id"].astype(str).reindex(self.users).rename("item_id")

    def target_items(self) -> dict[str, list[str]]:
        """user_id -> every target, oldest first"""
        ordered = self.held_out.sort_values(["user_id", "position"], kind="stable")
        return {
            str(user): part["item_id"].astype(str).tolist()
            for user, part in ordered.groupby("user_id", sort=False)
        }


def hold_out_recent(
    train: Dataset,
    *,
    targets: int = 5,
    recent: int = 0,
    min_older: int = 5,
    users: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
) -> TaskSplit:
    """Hold the latest ``targets`` events of each user apart as targets and the ``recent``
    events before them as the recent interactions (users with fewer than
    ``targets + recent + min_older`` events take no part). Without timestamps the order is a
    seeded shuffle (``rng``)."""
    if targets < 1:
        raise ValueError(f"targets must be >= 1 (the latest events), not {targets}")
    if recent < 0:
        raise ValueError(f"recent must be >= 0, not {recent}")
    frame = train.interactions.frame
    if users is not None:
        frame = frame[frame["user_id"].astype(str).isin(set(map(str, users)))]
    if train.interactions.has_timestamps:
        frame = frame.sort_values(["user_id", "timestamp"], kind="stable")
    else:
        generator = rng if rng is not None else np.random.default_rng(0)
        frame = frame.iloc[generator.permutation(len(frame))].sort_values("user_id", kind="stable")
    position_from_end = frame.groupby("user_id", sort=False).cumcount(ascending=False)
    sizes = frame.groupby("user_id", sort=False)["item_id"].transform("size")
    apart_count = targets + recent
    eligible = sizes >= apart_count + min_older
    held = eligible & (position_from_end < apart_count)
    older = train.replace(
        interactions=train.interactions.with_frame(frame.loc[eligible & ~held].sort_index())
    )
    apart = frame.loc[held].assign(_from_end=position_from_end[held])
    apart["position"] = apart_count - apart["_from_end"]
    apart["user_id"] = apart["user_id"].astype(str)
    apart["item_id"] = apart["item_id"].astype(str)
    is_target = apart["_from_end"] < targets
    columns = ["user_id", "item_id", "position"]
    context = apart.loc[~is_target, columns].reset_index(drop=True)
    held_out = apart.loc[is_target, columns].reset_index(drop=True)
    held_out["position"] -= recent
    return TaskSplit(older=older, recent=context, held_out=held_out)


def draw_seed(seed: int, draw: int) -> int:
    """The sampling seed of exploration draw ``draw`` (distinct per draw, so each is its own
    cache entry)."""
    return int(seed) * 1_000 + int(draw)


def explore_profiles(
    split: TaskSplit,
    writers: Mapping[str, GeneratorAdapter],
    *,
    service: GenerationService,
    n_profiles: int = 10,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 96,
    seed: int = 0,
    top_artists: int = 5,
    tracks_per_artist: int = 3,
    template: str | Path | None = None,
) -> pd.DataFrame:
    """``n_profiles`` profiles per task user and writer, from the older history's two-step
    sample (the whole older history, one prompt per user): columns
    :data:`EXPLORATION_COLUMNS`, one row per (writer, draw, user)."""
    if n_profiles < 1:
        raise ValueError("n_profiles must be >= 1")
    samples = sample_profile_windows(
        split.older,
        windows=None,
        top_artists=top_artists,
        tracks_per_artist=tracks_per_artist,
    )
    prompts = profile_prompt_table(samples, split.older.catalog, template=template)
    prompts = prompts[prompts["user_id"].astype(str).isin(set(split.users))]
    frames = []
    for label, writer in writers.items():
        for draw in range(n_profiles):
            params = GenerationParams(
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=draw_seed(seed, draw),
            )
            results = service.generate(
                writer, prompts["prompt"].tolist(), params=params, label=f"{label}:explore"
            )
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": prompts["user_id"].astype(str).to_numpy(),
                        "writer": label,
                        "draw": draw,
                        "seed": params.seed,
                        "prompt": prompts["prompt"].to_numpy(),
                        "text": [r.text for r in results],
                        "error": [r.error for r in results],
                        "cached": [r.cached for r in results],
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=list(EXPLORATION_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(EXPLORATION_COLUMNS)]
