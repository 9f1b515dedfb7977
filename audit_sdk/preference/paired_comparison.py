"""Before/after of a tuned profile writer, paired by user: did tuning help, and whom?

For each metric (one value per user before and one after, e.g. downstream NDCG@10, profile
fidelity, hallucination rate), the mean paired difference after - before with a bootstrap CI
that resamples users (BCa, :func:`audit_sdk.stats.bootstrap.mean_ci`). Per group attribute
(GS quintile, activity, age, country...), each group's paired difference with its CI and n
(and a warning below the minimum group size), and the gap between the best and the worst
group before and after, with a percentile-bootstrap CI of its change from the same user
resamples (the groups' gap widens when the change is positive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from audit_sdk.stats.bootstrap import mean_ci

__all__ = ["GroupChange", "MetricChange", "change_table", "paired_change"]


@dataclass(frozen=True)
class GroupChange:
    attribute: str
    group: str
    n: int
    before: float
    after: float
    difference: float
    low: float
    high: float
    warning: str | None = None


@dataclass(frozen=True)
class MetricChange:
    metric: str
    n: int
    before: float
    after: float
    difference: float
    low: float
    high: float
    method: str
    groups: list[GroupChange] = field(default_factory=list)
    gaps: dict[str, dict[str, float]] = field(default_factory=dict)
    """attribute -> gap before, gap after, change and its CI (best minus worst group mean)"""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _gap_change(
    before: np.ndarray,
    after: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    *,
    rng: np.random.Generator,
    n_resamples: int,
    confidence: float,
) -> dict[str, float]:
    def gaps(weights: np.ndarray) -> tuple[float, float]:
        totals = np.bincount(codes, weights=weights, minlength=n_groups)
        ok = totals > 0
        if ok.sum() < 2:
            return float("nan"), float("nan")
        b = np.bincount(codes, weights=weights * before, minlength=n_groups)[ok] / totals[ok]
        a = np.bincount(codes, weights=weights * after, minlength=n_groups)[ok] / totals[ok]
        return float(b.max() - b.min()), float(a.max() - a.min())

    gap_before, gap_after = gaps(np.ones(len(codes)))
    changes = []
    for _ in range(n_resamples):
        b, a = gaps(rng.poisson(1.0, size=len(codes)).astype(float))
        if np.isfinite(b) and np.isfinite(a):
            changes.append(a - b)
    tail = (1 - confidence) / 2
    low, high = (
        (float(np.quantile(changes, tail)), float(np.quantile(changes, 1 - tail)))
        if changes
        else (float("nan"), float("nan"))
    )
    return {
        "gap_before": gap_before,
        "gap_after": gap_after,
        "change": gap_after - gap_before,
        "low": low,
        "high": high,
    }


def paired_change(
    before: pd.Series,
    after: pd.Series,
    *,
    metric: str,
    groups: pd.DataFrame | None = None,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    min_group_size: int = 30,
) -> MetricChange:
    """Paired change of one per-user metric (``before`` and ``after`` indexed by user; users
    with a value in both count). ``groups``: one column per attribute, indexed by user."""
    both = pd.concat({"before": before, "after": after}, axis=1).dropna()
    diff = (both["after"] - both["before"]).to_numpy(dtype=float)
    interval = mean_ci(diff, confidence=confidence, n_resamples=n_resamples, rng=rng)
    result = MetricChange(
        metric=metric,
        n=interval.n,
        before=float(both["before"].mean()) if len(both) else float("nan"),
        after=float(both["after"].mean()) if len(both) else float("nan"),
        difference=interval.estimate,
        low=interval.low,
        high=interval.high,
        method=f"{interval.method}, paired by user, users resampled",
    )
    if groups is None or both.empty:
        return result
    table = groups.reindex(both.index)
    for attribute in table.columns:
        labels = table[attribute]
        known = labels.notna().to_numpy()
        if known.sum() == 0:
            continue
        levels = sorted(labels[known].astype(str).unique())
        codes = pd.Categorical(labels[known].astype(str), categories=levels).codes
        for level in levels:
            members = (labels.astype(str) == level).to_numpy() & known
            d = diff[members]
            gi = mean_ci(d, confidence=confidence, n_resamples=n_resamples, rng=rng)
            result.groups.append(
                GroupChange(
                    attribute=str(attribute),
                    group=level,
                    n=gi.n,
                    before=float(both["before"].to_numpy()[members].mean()),
                    after=float(both["after"].to_numpy()[members].mean()),
                    difference=gi.estimate,
                    low=gi.low,
                    high=gi.high,
                    warning=(
                        f"only {gi.n} users (< {min_group_size})" if gi.n < min_group_size else None
                    ),
                )
            )
        result.gaps[str(attribute)] = _gap_change(
            both["before"].to_numpy()[known],
            both["after"].to_numpy()[known],
            np.asarray(codes, dtype=np.intp),
            len(levels),
            rng=rng,
            n_resamples=n_resamples,
            confidence=confidence,
        )
    return result


def change_table(changes: Mapping[str, MetricChange]) -> pd.DataFrame:
    """One row per (metric, attribute, group): before, after, difference [low, high], n."""
    rows = []
    for change in changes.values():
        rows.append(
            {
                "metric": change.metric,
                "attribute": "(all)",
                "group": "(all)",
                "n": change.n,
                "before": change.before,
                "after": change.after,
                "difference": change.difference,
                "low": change.low,
                "high": change.high,
            }
        )
        rows.extend(
            {
                "metric": change.metric,
                "attribute": g.attribute,
                "group": g.group,
                "n": g.n,
                "before": g.before,
                "after": g.after,
                "difference": g.difference,
                "low": g.low,
                "high": g.high,
            }
            for g in change.groups
        )
    return pd.DataFrame(rows)
