"""Exposure of users to genres and artist countries, and the treatments made from it.

:func:`binarize_exposure` turns shares into the treatment the analyst chose (see
:mod:`._causal_treatments` for the definitions). Shares from history come from the audit's
shared features (``context.features.genre_shares`` / ``country_shares``, the one definition);
:func:`exposure_from_history` is an independent pandas computation of the same shares, kept as
the reference the tests hold that definition to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ._causal_treatments import Binarization, Family

__all__ = ["binarize_exposure", "exposure_from_history"]


class DesignError(Exception):
    """The design cannot be built (missing outcome, no exposure data); the message says why."""


def exposure_from_history(
    interactions: pd.DataFrame, catalog_frame: pd.DataFrame, family: Family
) -> pd.DataFrame:
    """Users x levels: each user's share of plays on each genre or artist country.

    Shares are over the plays whose item has a known genre (country); a user with none has a
    row of zeros.
    """
    plays = interactions.groupby(["user_id", "item_id"], as_index=False, sort=False)["plays"].sum()
    if family == "genre":
        if "genres" not in catalog_frame.columns:
            raise DesignError("the catalog has no 'genres' column")
        genres = catalog_frame["genres"].map(
            lambda g: tuple(g) if isinstance(g, (list, tuple)) else ()
        )
        weight = 1.0 / genres.map(len).replace(0, np.nan)
        long = (
            pd.DataFrame({"level": genres, "weight": weight}, index=catalog_frame.index)
            .explode("level")
            .dropna(subset=["level"])
        )
    else:
        if "country" not in catalog_frame.columns:
            raise DesignError("the catalog has no 'country' column")
        country = catalog_frame["country"]
        known = country.notna() & (country.astype(str).str.strip() != "")
        long = pd.DataFrame(
            {"level": country[known].astype(str), "weight": 1.0}, index=country[known].index
        )
    long.index.name = "item_id"
    merged = plays.merge(long.reset_index(), on="item_id", how="inner")
    users = pd.Index(interactions["user_id"].unique(), name="user_id")
    if merged.empty:
        return pd.DataFrame(index=users)
    merged["mass"] = merged["plays"] * merged["weight"]
    table = merged.pivot_table(
        index="user_id", columns="level", values="mass", aggfunc="sum", fill_value=0.0
    )
    totals = table.sum(axis=1).replace(0.0, 1.0)
    shares = table.div(totals, axis=0).reindex(users, fill_value=0.0)
    shares.columns = shares.columns.astype(str)
    shares.columns.name = None
    return shares


def binarize_exposure(
    shares: pd.DataFrame, *, method: Binarization, k: int = 3, threshold: float | None = None
) -> pd.DataFrame:
    """Treatments from shares (see the module docstring for the methods): 0/1, or the shares
    themselves for ``"continuous"``."""
    values = shares.to_numpy(dtype=float)
    if method == "continuous":
        return shares.astype(float)
    if method == "median_all":
        treated = values > np.median(values, axis=0) if len(values) else values > 0
    elif method == "threshold":
        if threshold is None:
            raise ValueError("binarization 'threshold' needs a threshold (e.g. 0.2).")
        treated = values > threshold
    elif method == "median":
        masked = np.where(values > 0, values, np.nan)
        with np.errstate(all="ignore"):
            listeners = np.isfinite(masked).any(axis=0)
            thresholds = np.full(values.shape[1], np.inf)
            if listeners.any():
                thresholds[listeners] = np.nanmedian(masked[:, listeners], axis=0)
        treated = values > thresholds
    elif method == "top_k":
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        ranks = shares.rank(axis=1, ascending=False, method="min").to_numpy()
        treated = (ranks <= k) & (values > 0)
    else:  # pragma: no cover - guarded by Literal and pydantic
        raise ValueError(f"unknown binarization {method!r}")
    return pd.DataFrame(treated.astype(np.int8), index=shares.index, columns=shares.columns)
