"""Stream filtering, time windows and the two-step sampler.

The two-step sampler follows the seed study (Sguerra et al., RecSys 2025, arXiv 2507.16708,
Sec. 3): take a user's top-``top_artists`` artists by plays, then each artist's
top-``tracks_per_artist`` tracks, giving ``top_artists * tracks_per_artist`` (artist, track)
pairs (15 by default) that summarise a listening history for a profile prompt.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from audit_sdk.data.tables import Catalog, Dataset, Interactions
from audit_sdk.errors import DataValidationError

__all__ = ["filter_streams", "reference_time", "time_window", "two_step_sample", "window_label"]


def filter_streams(dataset: Dataset, *, min_play_seconds: float | None = 30.0) -> Dataset:
    """Keep streams longer than ``min_play_seconds`` where durations are known.

    Rows without a duration are kept (aggregated data such as HetRec has none).
    """
    interactions = dataset.interactions
    if min_play_seconds is None or not interactions.has_durations:
        return dataset
    frame = interactions.frame
    keep = frame["duration_s"].isna() | (frame["duration_s"] > min_play_seconds)
    return dataset.replace(interactions=interactions.with_frame(frame.loc[keep]))


def reference_time(
    interactions: Interactions, reference: date | datetime | None = None
) -> pd.Timestamp:
    """The end of every window: ``reference`` (end of that day, UTC) or the latest event."""
    if reference is not None:
        ts = pd.Timestamp(reference)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        if isinstance(reference, date) and not isinstance(reference, datetime):
            ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        return ts
    if not interactions.has_timestamps:
        raise DataValidationError("time windows need timestamps, and the interactions have none.")
    return pd.Timestamp(interactions.frame["timestamp"].max())


def window_label(days: int | None) -> str:
    return "all" if days is None else f"{days}d"


def time_window(
    dataset: Dataset, *, days: int, reference: date | datetime | None = None
) -> Dataset:
    """Events in the ``days`` days up to and including the reference time."""
    interactions = dataset.interactions
    end = reference_time(interactions, reference)
    start = end - timedelta(days=days)
    ts = interactions.frame["timestamp"]
    keep = (ts > start) & (ts <= end)
    return dataset.replace(interactions=interactions.with_frame(interactions.frame.loc[keep]))


def two_step_sample(
    interactions: Interactions,
    catalog: Catalog,
    *,
    top_artists: int = 5,
    tracks_per_artist: int = 3,
) -> pd.DataFrame:
    """The two-step sample of each user: columns ``user_id, position, artist, item_id, title,
    plays``, ``position`` 1..n ordered by artist rank, then track rank.

    Ties break by name, then id, so the sample is deterministic. In artist-level data (each
    artist has one item, as in HetRec Last.fm) the sample is the top
    ``top_artists * tracks_per_artist`` artists, so prompts keep the same size.
    """
    columns = ["user_id", "position", "artist", "item_id", "title", "plays"]
    if len(interactions) == 0:
        return pd.DataFrame(columns=columns)
    plays = interactions.frame.groupby(["user_id", "item_id"], as_index=False, sort=False)[
        "plays"
    ].sum()
    meta = catalog.frame[["title", "artist"]]
    plays = plays.join(meta, on="item_id")
    plays["artist"] = plays["artist"].fillna(plays["item_id"])
    plays["title"] = plays["title"].fillna(plays["item_id"])
    artist_level = bool(catalog.frame.groupby("artist", sort=False).size().max() <= 1)
    if artist_level:
        n_artists, n_tracks = top_artists * tracks_per_artist, 1
    else:
        n_artists, n_tracks = top_artists, tracks_per_artist

    by_artist = plays.groupby(["user_id", "artist"], as_index=False, sort=False)["plays"].sum()
    by_artist = by_artist.sort_values(
        ["user_id", "plays", "artist"], ascending=[True, False, True], kind="mergesort"
    )
    by_artist["artist_rank"] = by_artist.groupby("user_id", sort=False).cumcount()
    top = by_artist.loc[by_artist["artist_rank"] < n_artists, ["user_id", "artist", "artist_rank"]]

    tracks = plays.merge(top, on=["user_id", "artist"], how="inner")
    tracks = tracks.sort_values(
        ["user_id", "artist_rank", "plays", "title", "item_id"],
        ascending=[True, True, False, True, True],
        kind="mergesort",
    )
    tracks["track_rank"] = tracks.groupby(["user_id", "artist_rank"], sort=False).cumcount()
    tracks = tracks.loc[tracks["track_rank"] < n_tracks]
    tracks["position"] = tracks.groupby("user_id", sort=False).cumcount() + 1
    return tracks[columns].reset_index(drop=True)
