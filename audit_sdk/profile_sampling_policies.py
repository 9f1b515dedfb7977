"""Sampling expansion: larger, more diverse profile samples for generalist listeners.

The seed study (Sguerra et al., RecSys 2025, arXiv 2507.16708, Sec. 3 and 6) writes every
profile from a fixed two-step sample of 15 (artist, track) pairs, and finds that generalists
(low GS-score) get worse profiles; it proposes to give them more, and more diverse, items and to
see whether their profiles improve. This module is that policy.

**Budget.** With ``tau`` the GS threshold (default: the median GS-score of the audited users)
and ``GS(u)`` a user's GS-score (Waller & Anderson, WWW 2019, Eq. 1), a user with
``GS(u) >= tau`` keeps the baseline sample byte for byte; below it the budget grows as GS falls,

    n(u) = min(n_max, ceil(n0 * (tau / GS(u)) ** gamma))        (GS(u) = 0: n_max)

(``n0 = 15``, ``gamma = 1``, ``n_max = 45`` by default). A user without a GS-score (fewer
items than the feature needs) keeps the baseline sample and is counted in a note.

**Selectors** (both deterministic: ties break by plays, then name, then id; no random draw):

* ``two_step``, the study's own form with more artists: the top ``ceil(n / t)`` artists by
  plays and each one's top ``t = sampling.tracks_per_artist`` tracks, cut to ``n`` pairs. The
  baseline's 15 pairs are the first 15 of it (artist-level data: the top ``n`` artists).
* ``diverse``, diversity-aware selection in the manner of PersonaX (Shi et al., Findings of
  ACL 2025, arXiv 2503.02398, Sec. 3.2-3.3: stratify the history into clusters, allocate the
  budget across them by size, pick prototypical yet diverse items in each): the strata are the
  user's genres (an item belongs to its first listed genre); the budget is allocated to genres
  in proportion to their share of the user's plays by the largest-remainder (Hamilton) method,
  at most the items a genre holds, with at least one pair for each of the user's genres while
  the budget lasts; within a genre, greedy maximal marginal relevance (Carbonell & Goldstein,
  SIGIR 1998, Eq. 1) picks ``argmax lambda * rel(i) - (1 - lambda) * max_{j chosen} sim(i, j)``,
  with ``rel`` the item's plays over the user's most played item and ``sim`` 1 for the same
  artist, 0 otherwise (so a genre's slots spread over its artists).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit_sdk.config import SamplingConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions
from audit_sdk.errors import ConfigError
from audit_sdk.interfaces.sampler import ProfileSampler
from audit_sdk.profile_pipeline import TwoStepSampler, window_interactions
from audit_sdk.sampling import two_step_sample

__all__ = [
    "SELECTORS",
    "BudgetPlan",
    "ExpandedSampler",
    "ExpansionPolicy",
    "Selector",
    "diverse_sample",
    "expanded_budget",
    "plan_budgets",
    "two_step_expanded",
]

Selector = Literal["two_step", "diverse"]
SELECTORS: tuple[Selector, ...] = ("two_step", "diverse")
SAMPLE_COLUMNS = ["user_id", "position", "artist", "item_id", "title", "plays"]


@dataclass(frozen=True)
class ExpansionPolicy:
    """The budget rule's parameters (see the module docstring); checked on creation."""

    threshold: float | None = None
    """GS threshold ``tau`` in [0, 1]; ``None``: the median GS-score of the audited users"""
    n0: int = 15
    gamma: float = 1.0
    n_max: int = 45
    selector: Selector = "two_step"
    mmr_lambda: float = 0.7
    """``diverse``: weight of relevance against redundancy in MMR"""
    fixed_n: int | None = None
    """every user below the threshold gets exactly this many pairs (the n = 30 diagnosis)"""

    def __post_init__(self) -> None:
        if self.threshold is not None and not (
            math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0
        ):
            raise ConfigError(
                f"sampling expansion: threshold {self.threshold!r} is outside [0, 1]; the GS-score "
                "lies in [0, 1], so give a threshold in it (or null for the median GS)"
            )
        if self.n0 < 1:
            raise ConfigError(f"sampling expansion: n0 must be at least 1, not {self.n0}")
        if self.n_max < self.n0:
            raise ConfigError(
                f"sampling expansion: n_max ({self.n_max}) is below n0 ({self.n0}); the budget "
                "only grows from n0, so set n_max >= n0"
            )
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise ConfigError(f"sampling expansion: gamma must be > 0, not {self.gamma!r}")
        if self.selector not in SELECTORS:
            raise ConfigError(
                f"sampling expansion: selector {self.selector!r} is unknown; choose one of "
                f"{', '.join(SELECTORS)}"
            )
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(
                f"sampling expansion: mmr_lambda {self.mmr_lambda!r} is outside [0, 1]"
            )
        if self.fixed_n is not None and self.fixed_n < 1:
            raise ConfigError(f"sampling expansion: fixed_n must be at least 1, not {self.fixed_n}")


def expanded_budget(gs: float, tau: float, policy: ExpansionPolicy) -> int:
    """``n(u) = min(n_max, ceil(n0 (tau / GS)^gamma))`` for a user below the threshold."""
    if policy.fixed_n is not None:
        return policy.fixed_n
    if gs <= 0.0:
        return policy.n_max
    raw = policy.n0 * (tau / gs) ** policy.gamma
    # a hair below the next integer so that 15 * (0.6 / 0.3) is 30, not 31 by rounding error
    return int(min(policy.n_max, math.ceil(raw - 1e-9)))


@dataclass(frozen=True)
class BudgetPlan:
    """Who gets a larger sample, and how large."""

    tau: float
    budgets: Mapping[str, int]
    """user -> pairs, for the users below the threshold (the only ones re-sampled)"""
    unchanged: int
    """users at or above the threshold (baseline sample kept)"""
    without_gs: list[str] = field(default_factory=list)
    """users with no GS-score, left as they were"""

    def notes(self) -> list[str]:
        if not self.without_gs:
            return []
        return [
            f"sampling expansion: {len(self.without_gs)} users have no GS-score (too few "
            "items for the feature) and keep the baseline sample"
        ]

    def describe(self) -> dict[str, Any]:
        sizes = np.array(list(self.budgets.values()), dtype=float)
        return {
            "threshold_used": self.tau,
            "users_expanded": len(self.budgets),
            "users_unchanged": self.unchanged,
            "users_without_gs": len(self.without_gs),
            "mean_budget_expanded": float(sizes.mean()) if len(sizes) else None,
            "max_budget": int(sizes.max()) if len(sizes) else None,
        }


def plan_budgets(gs: pd.Series, users: Sequence[Any], policy: ExpansionPolicy) -> BudgetPlan:
    """Each of ``users``' budget from their GS-score (``gs``, index user_id)."""
    values = pd.to_numeric(gs.set_axis(gs.index.astype(str)), errors="coerce")
    values = values.reindex(pd.Index([str(u) for u in users])).astype(float)
    known = values[np.isfinite(values.to_numpy())]
    without = [str(u) for u in values.index[~np.isfinite(values.to_numpy())]]
    if policy.threshold is not None:
        tau = float(policy.threshold)
    elif len(known):
        tau = float(np.median(known.to_numpy()))
    else:
        tau = float("nan")
    below = known[known < tau] if math.isfinite(tau) else known.iloc[:0]
    budgets = {str(u): expanded_budget(float(g), tau, policy) for u, g in below.items()}
    return BudgetPlan(tau, budgets, len(known) - len(below), without)


# -- selectors -------------------------------------------------------------------------------
def _subset(interactions: Interactions, users: Sequence[str]) -> Interactions:
    frame = interactions.frame
    return interactions.with_frame(frame[frame["user_id"].astype(str).isin(set(users))])


def two_step_expanded(
    interactions: Interactions,
    catalog: Catalog,
    budgets: Mapping[str, int],
    *,
    tracks_per_artist: int = 3,
) -> pd.DataFrame:
    """The two-step sample with ``ceil(n / tracks_per_artist)`` artists, cut to ``n`` pairs,
    for each user of ``budgets`` (users grouped by budget, one two-step pass per budget)."""
    parts = []
    by_size: dict[int, list[str]] = {}
    for user, n in budgets.items():
        by_size.setdefault(int(n), []).append(user)
    for n, users in sorted(by_size.items()):
        sample = two_step_sample(
            _subset(interactions, users),
            catalog,
            top_artists=math.ceil(n / tracks_per_artist),
            tracks_per_artist=tracks_per_artist,
        )
        parts.append(sample[sample["position"] <= n])
    if not parts:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def _allocate(shares: np.ndarray, capacity: np.ndarray, n: int) -> np.ndarray:
    """``n`` slots to strata in proportion to ``shares``, at most ``capacity`` each: one slot
    per stratum first (largest share first, while slots last), then each further slot to the
    stratum furthest below its quota ``n * share`` with room left (the largest-remainder
    result when no capacity binds)."""
    alloc = np.zeros(len(shares), dtype=np.int64)
    rank = np.lexsort((np.arange(len(shares)), -shares))
    for s in rank[: min(n, len(rank))]:
        alloc[s] = 1
    quota = shares * n
    for _ in range(max(0, min(n, int(capacity.sum())) - int(alloc.sum()))):
        deficit = np.where(alloc < capacity, quota - alloc, -np.inf)
        alloc[rank[int(np.argmax(deficit[rank]))]] += 1  # ties: the larger share
    return alloc


def _mmr(relevance: np.ndarray, artists: np.ndarray, k: int, weight: float) -> list[int]:
    """Greedy MMR (Carbonell & Goldstein 1998, Eq. 1) with same-artist similarity."""
    chosen: list[int] = []
    redundancy = np.zeros(len(relevance))
    available = np.ones(len(relevance), dtype=bool)
    for _ in range(min(k, len(relevance))):
        score = np.where(available, weight * relevance - (1 - weight) * redundancy, -np.inf)
        best = int(np.argmax(score))  # first of the ties: candidates come in rank order
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, (artists == artists[best]).astype(float))
    return chosen


def diverse_sample(
    interactions: Interactions,
    catalog: Catalog,
    budgets: Mapping[str, int],
    *,
    mmr_lambda: float = 0.7,
) -> pd.DataFrame:
    """Genre-stratified allocation with greedy MMR inside each genre (module docstring), for
    each user of ``budgets``; pairs ordered by genre share, then selection order."""
    frame = _subset(interactions, list(budgets)).frame
    if frame.empty:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    plays = frame.groupby(["user_id", "item_id"], as_index=False, sort=False)["plays"].sum()
    meta = catalog.frame[["title", "artist", "genres"]]
    plays = plays.join(meta, on="item_id")
    plays["artist"] = plays["artist"].fillna(plays["item_id"])
    plays["title"] = plays["title"].fillna(plays["item_id"])
    plays["genre"] = [
        g[0] if isinstance(g, (list, tuple)) and len(g) else "" for g in plays["genres"]
    ]
    plays = plays.sort_values(
        ["user_id", "plays", "artist", "title", "item_id"],
        ascending=[True, False, True, True, True],
        kind="mergesort",
    )
    rows = []
    for user, part in plays.groupby("user_id", sort=True):
        n = int(budgets[str(user)])
        genre_plays = part.groupby("genre", sort=True)["plays"].sum()
        genre_size = part.groupby("genre", sort=True).size()
        shares = (genre_plays / genre_plays.sum()).to_numpy(dtype=float)
        alloc = _allocate(shares, genre_size.to_numpy(), n)
        top = float(part["plays"].max()) or 1.0
        order = np.lexsort((np.arange(len(shares)), -shares))
        for g in order:
            if alloc[g] == 0:
                continue
            members = part[part["genre"] == genre_plays.index[g]]
            picks = _mmr(
                members["plays"].to_numpy(dtype=float) / top,
                members["artist"].astype(str).to_numpy(),
                int(alloc[g]),
                mmr_lambda,
            )
            rows.append(members.iloc[picks])
    out = pd.concat(rows, ignore_index=True)
    out["position"] = out.groupby("user_id", sort=False).cumcount() + 1
    return out[SAMPLE_COLUMNS]


# -- the sampler -----------------------------------------------------------------------------
class ExpandedSampler(ProfileSampler):
    """The baseline two-step sample for everyone, with the users of ``budgets`` re-sampled by
    the policy's selector (in the windows of ``windows``, default all)."""

    name = "sampling_expansion"

    def __init__(
        self,
        budgets: Mapping[str, int],
        policy: ExpansionPolicy,
        *,
        windows: Sequence[str] | None = None,
        baseline: ProfileSampler | None = None,
    ) -> None:
        self.budgets = {str(u): int(n) for u, n in budgets.items()}
        self.policy = policy
        self.windows = list(windows) if windows is not None else None
        self.baseline = baseline or TwoStepSampler()

    def sample(self, train: Dataset, settings: SamplingConfig) -> dict[str, pd.DataFrame]:
        base = self.baseline.sample(train, settings)
        per_window = window_interactions(
            train, windows=settings.windows, reference=settings.reference_date
        )
        out: dict[str, pd.DataFrame] = {}
        for label, sample in base.items():
            users = sample["user_id"].astype(str)
            budgets = {u: n for u, n in self.budgets.items() if u in set(users)}
            if not budgets or (self.windows is not None and label not in self.windows):
                out[label] = sample
                continue
            if self.policy.selector == "diverse":
                expanded = diverse_sample(
                    per_window[label], train.catalog, budgets, mmr_lambda=self.policy.mmr_lambda
                )
            else:
                expanded = two_step_expanded(
                    per_window[label],
                    train.catalog,
                    budgets,
                    tracks_per_artist=settings.tracks_per_artist,
                )
            kept = sample[~users.isin(set(budgets))]
            expanded = expanded.astype(sample.dtypes.to_dict()) if len(expanded) else expanded
            merged = pd.concat([kept, expanded], ignore_index=True)
            out[label] = merged.sort_values(
                ["user_id", "position"], kind="mergesort", ignore_index=True
            )
        return out

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps(sorted(self.budgets.items())).encode()).hexdigest()
        return {
            "sampler": self.name,
            "selector": self.policy.selector,
            "n0": self.policy.n0,
            "gamma": self.policy.gamma,
            "n_max": self.policy.n_max,
            "fixed_n": self.policy.fixed_n,
            "mmr_lambda": self.policy.mmr_lambda if self.policy.selector == "diverse" else None,
            "windows": self.windows,
            "budgets_sha256": digest,
        }
