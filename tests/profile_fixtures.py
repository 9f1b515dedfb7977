"""Small worlds for the profile prompt, writer, cache and pipeline tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
from audit_sdk.data.tables import Catalog, Dataset
from audit_sdk.profile_pipeline import sample_profile_windows

__all__ = ["hand_catalog", "hand_sample", "synthetic_samples", "synthetic_world"]


def hand_catalog() -> Catalog:
    """Six tracks whose metadata the tests reason about by hand."""
    frame = pd.DataFrame(
        {
            "title": ["Creep", "Karma Police", "Hyperballad", "Jóga", "Paranoid", "Untitled"],
            "artist": ["Radiohead", "Radiohead", "Björk", "Björk", "Black Sabbath", "Nobody"],
            "genres": [
                ("alternative rock", "rock"),
                ("alternative rock",),
                ("electronic", "art pop"),
                ("electronic",),
                ("heavy metal",),
                (),
            ],
            "country": ["GB", "GB", "IS", "IS", "GB", None],
            "release_year": [1992, 1997, 1995, 1997, 1970, np.nan],
        },
        index=pd.Index(["t1", "t2", "t3", "t4", "t5", "t6"], name="item_id"),
    )
    return Catalog(frame)


def hand_sample(plays: list[float], *, user_id: str = "u1") -> pd.DataFrame:
    catalog = hand_catalog().frame
    return pd.DataFrame(
        {
            "user_id": user_id,
            "position": range(1, len(catalog) + 1),
            "artist": catalog["artist"].to_numpy(),
            "item_id": catalog.index.to_numpy(),
            "title": catalog["title"].to_numpy(),
            "plays": plays,
        }
    )


@lru_cache(maxsize=4)
def synthetic_world(seed: int = 3, n_users: int = 60) -> Dataset:
    return generate_world(SyntheticWorldParams(seed=seed, n_users=n_users, n_artists=80))


def synthetic_samples(
    seed: int = 3, n_users: int = 60, windows: tuple[int, ...] = (30, 365)
) -> tuple[Dataset, dict[str, pd.DataFrame]]:
    world = synthetic_world(seed, n_users)
    return world, sample_profile_windows(world, windows=list(windows))
