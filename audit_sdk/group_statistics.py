"""Per-group estimates with CIs, and the worst-to-best disparity between groups.

Point estimates are group means (one ``bincount`` pass; fairlearn's ``MetricFrame``, Bird et
al., "Fairlearn", 2020, is the reference in the tests and gives the same numbers). Intervals
come from :mod:`audit_sdk.stats.bootstrap`: one set of Poisson-weight resamples gives every
group's BCa interval and the simultaneous bands of the disparity, in time linear in users x
resamples and memory bounded by the memory budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_sdk.memory_budget import current_memory_budget
from audit_sdk.report_model import GroupEstimate
from audit_sdk.stats.bootstrap import Disparity, bca_mean_interval, disparity_from_replicates
from audit_sdk.stats.resampling_weights import poisson_weight_blocks

__all__ = ["GroupComparison", "compare_groups", "compare_groups_many", "mean_of_true"]


def natural_key(label: str) -> tuple[float, str]:
    """Order group labels by the first number in them ("<25" < "25-34" < "55+", "Q2" < "Q10"),
    then alphabetically."""
    match = re.search(r"\d+(\.\d+)?", label)
    if match is None:
        return (np.inf, label)
    value = float(match.group())
    if label[: match.start()].rstrip().endswith("<"):
        value -= 0.5
    return (value, label)


def mean_of_true(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """A MetricFrame metric: the mean of a per-user quantity passed as ``y_true``."""
    return float(np.mean(y_true))


@dataclass(frozen=True)
class GroupComparison:
    rows: list[GroupEstimate]
    disparity: Disparity | None  # None when fewer than two groups are large enough
    eligible: list[str]
    too_small: list[str]
    by_group: pd.Series  # group mean over all groups (as fairlearn's MetricFrame.by_group)


def compare_groups(
    values: pd.Series,
    groups: pd.Series,
    *,
    min_group_size: int,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> GroupComparison:
    """Group means of ``values`` (one per user) by ``groups``, with CIs and a disparity over
    the groups that have at least ``min_group_size`` users."""
    (comparison,) = compare_groups_many(
        [(values, groups)],
        min_group_size=min_group_size,
        confidence=confidence,
        n_resamples=n_resamples,
        rng=rng,
    )
    return comparison


def compare_groups_many(
    items: Sequence[tuple[pd.Series, pd.Series]],
    *,
    min_group_size: int,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> list[GroupComparison]:
    """:func:`compare_groups` for several (values, groups) pairs over the same users, from one
    stream of resampling weights: the same resamples of the users serve every pair (common
    random numbers), so the weights are drawn once instead of once per pair."""
    index = items[0][0].index
    prepared = [_prepare(values.reindex(index), groups, index) for values, groups in items]
    dtype = np.float32 if len(index) < 2**23 else np.float64
    # Pairs share one weight stream. Their dense designs (users x 2 columns a group) are built
    # in packs that each fit a chunk; each weight block is multiplied by every pack's design in
    # turn, so the weights are drawn only once.
    chunk_bytes = current_memory_budget().chunk_bytes
    packs: list[list[_Prepared]] = [[]]
    for p in prepared:
        width = 2 * sum(len(q.names) for q in packs[-1])
        if packs[-1] and (width + 2 * len(p.names)) * len(index) * 4 > chunk_bytes:
            packs.append([])
        packs[-1].append(p)
    n_users = len(index)
    # Keep every pack's design across weight blocks when together they fit two chunks (half
    # of a cap); beyond that, rebuild each design per block rather than redraw the weights.
    total = sum(2 * sum(len(p.names) for p in pack) for pack in packs) * n_users * 4
    keep = len(packs) == 1 or total <= 2 * chunk_bytes
    designs = [_design(pack, n_users, dtype) for pack in packs] if keep else None
    sums: list[list[np.ndarray]] = [[] for _ in packs]
    for weights in poisson_weight_blocks(n_users, n_resamples, rng, dtype=dtype):
        for i, pack in enumerate(packs):
            design = designs[i] if designs is not None else _design(pack, n_users, dtype)
            sums[i].append(weights @ design)
    out: list[GroupComparison] = []
    for pack, blocks in zip(packs, sums, strict=True):
        out += _finish_pack(pack, np.vstack(blocks), min_group_size, confidence)
    return out


def _design(pack: list[_Prepared], n_users: int, dtype: type) -> np.ndarray:
    """Per (pair, group) a column of centred values and a column of ones, so one product
    ``weights @ design`` gives every group's weighted sums."""
    offsets = np.cumsum([0, *(len(p.names) for p in pack)])
    design = np.zeros((n_users, 2 * offsets[-1]), dtype=dtype)
    for p, offset in zip(pack, offsets, strict=False):
        design[p.positions, 2 * (offset + p.codes)] = p.values - p.means[p.codes]
        design[p.positions, 2 * (offset + p.codes) + 1] = 1.0
    return design


def _finish_pack(
    pack: list[_Prepared], sums: np.ndarray, min_group_size: int, confidence: float
) -> list[GroupComparison]:
    offsets = np.cumsum([0, *(len(p.names) for p in pack)])
    out = []
    for p, offset in zip(pack, offsets, strict=False):
        block = sums[:, 2 * offset : 2 * (offset + len(p.names))].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates = p.means + block[:, 0::2] / block[:, 1::2]
        out.append(_comparison(p, replicates, min_group_size, confidence))
    return out


@dataclass(frozen=True)
class _Prepared:
    names: list[str]  # groups in natural order
    positions: np.ndarray  # row of each kept user in the shared index
    values: np.ndarray
    codes: np.ndarray  # group of each kept user, into names
    counts: np.ndarray
    means: np.ndarray


def _prepare(values: pd.Series, groups: pd.Series, index: pd.Index) -> _Prepared:
    if not groups.index.equals(index):
        groups = groups.reindex(index)
    v = np.asarray(values, dtype=float)
    labels = groups.astype("string").to_numpy(dtype=object, na_value=None)
    keep = np.flatnonzero(np.isfinite(v) & pd.notna(labels))
    codes, uniques = pd.factorize(labels[keep])
    names = sorted((str(u) for u in uniques), key=natural_key)
    position = {name: g for g, name in enumerate(names)}
    codes = np.array([position[str(u)] for u in uniques], dtype=np.intp)[codes]
    counts = np.bincount(codes, minlength=len(names))
    means = np.bincount(codes, weights=v[keep], minlength=len(names)) / np.maximum(counts, 1)
    return _Prepared(names, keep, v[keep], codes, counts, means)


def _comparison(
    p: _Prepared, replicates: np.ndarray, min_group_size: int, confidence: float
) -> GroupComparison:
    order = np.argsort(p.codes, kind="stable")
    arrays = np.split(p.values[order], np.cumsum(p.counts)[:-1])
    rows: list[GroupEstimate] = []
    eligible: list[int] = []
    too_small: list[str] = []
    for g, name in enumerate(p.names):
        interval = bca_mean_interval(arrays[g], replicates[:, g], confidence=confidence)
        warning = None
        if p.counts[g] < min_group_size:
            warning = (
                f"only {p.counts[g]} users (< {min_group_size}): too few to judge; "
                "left out of the disparity"
            )
            too_small.append(name)
        else:
            eligible.append(g)
        rows.append(
            GroupEstimate(
                group=name,
                n=int(p.counts[g]),
                estimate=float(p.means[g]),
                ci_low=interval.low,
                ci_high=interval.high,
                warning=warning,
            )
        )
    disparity = None
    if len(eligible) >= 2:
        disparity = disparity_from_replicates(
            [p.names[g] for g in eligible],
            [arrays[g] for g in eligible],
            replicates[:, eligible],
            confidence=confidence,
        )
        for row in rows:
            if row.group == disparity.worst:
                row.extra["role"] = "worst"
            elif row.group == disparity.best:
                row.extra["role"] = "best"
    by_group = pd.Series(p.means, index=pd.Index(p.names, name="sensitive_feature_0"))
    return GroupComparison(rows, disparity, [p.names[g] for g in eligible], too_small, by_group)
