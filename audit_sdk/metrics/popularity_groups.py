"""Item-popularity group unfairness of top-K lists: GU, MGU@K and DGU@K, with paired CIs.

Items are split into ``n_groups`` popularity groups (default five, as in Jiang et al.,
"Item-side Fairness of Large Language Model-based Recommendation System", WWW 2024, and GDRT,
arXiv 2510.10978): sorted by their number of training users (ties by item id) and cut where
the cumulative share of (user, item) pairs crosses ``1/n, 2/n, ...``, so each group holds
about the same share of the interactions (group 0, the head, the fewest and most popular
items). Groups of equal item counts put every recommended item in the head group on a
long-tailed catalog, so MGU could not tell two models apart. For a set of users,

    GU_g = share of group g among the items of the users' top-K lists
           - share of group g among the items of the users' histories,
    MGU@K = mean_g |GU_g|,        DGU@K = max_g GU_g - min_g GU_g,

both 0 when the lists mirror the histories' popularity mix (lower is fairer). Shares pool the
users' items (a ratio of sums), so CIs resample users: Poisson(1) weights per user
(:func:`audit_sdk.stats.resampling_weights.poisson_weight_blocks`) reweight every user's
counts, and :func:`paired_unfairness` applies the same weights to two models' lists, so the
difference keeps the pairing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_sdk.stats.bootstrap import Interval, statistic_ci
from audit_sdk.stats.resampling_weights import poisson_weight_blocks

__all__ = [
    "GroupUnfairness",
    "group_counts",
    "group_unfairness",
    "paired_unfairness",
    "popularity_groups",
]


def popularity_groups(interactions: pd.DataFrame, *, n_groups: int = 5) -> pd.Series:
    """item id -> popularity group (0 = most popular) from ``user_id, item_id`` rows."""
    if n_groups < 1:
        raise ValueError("n_groups must be at least 1")
    users = interactions.groupby("item_id", sort=False)["user_id"].nunique()
    ranked = sorted(users.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    counts = np.array([int(c) for _, c in ranked], dtype=float)
    before = np.concatenate([[0.0], np.cumsum(counts)[:-1]]) / max(counts.sum(), 1.0)
    labels = np.minimum((before * n_groups).astype(np.int64), n_groups - 1)
    return pd.Series(labels, index=[str(item) for item, _ in ranked], name="popularity_group")


def group_counts(
    frame: pd.DataFrame, groups: pd.Series, users: pd.Index, *, n_groups: int
) -> np.ndarray:
    """(users, n_groups) counts of each user's rows of ``frame`` (``user_id, item_id``) per
    popularity group; items without a group are not counted."""
    g = groups.reindex(frame["item_id"].astype(str)).to_numpy()
    keep = ~pd.isna(g)
    rows = users.get_indexer(frame["user_id"].astype(str))
    keep &= rows >= 0
    out = np.zeros((len(users), n_groups))
    np.add.at(out, (rows[keep], g[keep].astype(np.int64)), 1.0)
    return out


@dataclass(frozen=True)
class GroupUnfairness:
    """GU per group and MGU / DGU with 95% CIs (resampling users)."""

    gu: tuple[float, ...]
    mgu: Interval
    dgu: Interval


def _shares(weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    totals = weights @ counts
    return totals / np.maximum(totals.sum(axis=-1, keepdims=True), 1e-12)


def _mgu_dgu(gu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.abs(gu).mean(axis=-1), gu.max(axis=-1) - gu.min(axis=-1)


def group_unfairness(
    recommended: np.ndarray,
    history: np.ndarray,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> GroupUnfairness:
    """GU, MGU and DGU of one model from the per-user counts of :func:`group_counts`."""
    ones = np.ones((1, len(recommended)))
    gu = (_shares(ones, recommended) - _shares(ones, history))[0]
    mgu, dgu = _mgu_dgu(gu[None, :])
    m_rep, d_rep = [], []
    for w in poisson_weight_blocks(len(recommended), n_resamples, rng, dtype=np.float64):
        m, d = _mgu_dgu(_shares(w, recommended) - _shares(w, history))
        m_rep.append(m)
        d_rep.append(d)
    n = len(recommended)
    return GroupUnfairness(
        tuple(float(v) for v in gu),
        statistic_ci(
            np.concatenate(m_rep),
            float(mgu[0]),
            confidence=confidence,
            n=n,
            method="bootstrap-users",
        ),
        statistic_ci(
            np.concatenate(d_rep),
            float(dgu[0]),
            confidence=confidence,
            n=n,
            method="bootstrap-users",
        ),
    )


def paired_unfairness(
    after: np.ndarray,
    before: np.ndarray,
    history: np.ndarray,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """After minus before of MGU and DGU, each resample weighting both models' users alike."""
    ones = np.ones((1, len(after)))
    point = {}
    for name, value in zip(
        ("mgu", "dgu"),
        (
            np.subtract(
                _mgu_dgu(_shares(ones, after) - _shares(ones, history)),
                _mgu_dgu(_shares(ones, before) - _shares(ones, history)),
            )
        ),
        strict=True,
    ):
        point[name] = float(value[0])
    reps: dict[str, list[np.ndarray]] = {"mgu": [], "dgu": []}
    for w in poisson_weight_blocks(len(after), n_resamples, rng, dtype=np.float64):
        h = _shares(w, history)
        a_m, a_d = _mgu_dgu(_shares(w, after) - h)
        b_m, b_d = _mgu_dgu(_shares(w, before) - h)
        reps["mgu"].append(a_m - b_m)
        reps["dgu"].append(a_d - b_d)
    return {
        name: statistic_ci(
            np.concatenate(reps[name]),
            point[name],
            confidence=confidence,
            n=len(after),
            method="paired-bootstrap-users",
        )
        for name in ("mgu", "dgu")
    }
