"""The physical floor for the scale benchmark: the numbers of the recommendation detectors,
computed by a minimal vectorised script on the same audit context.

No findings, no thresholds, no report: per detector, one pass over the top-k lists on integer
codes and one block of Poisson(1) bootstrap weights shared by every statistic of that detector
(``W @ values``). What the detectors do beyond this (one resampling per statistic, findings,
explanations) is their overhead; ``bench_scale`` prints the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from audit_sdk.stats.resampling_weights import poisson_weight_blocks

__all__ = ["reference_metrics"]


def _boot_means(columns: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """(n_resamples, columns) Poisson-bootstrap means of each column (NaN entries weigh 0)."""
    finite = np.isfinite(columns)
    values = np.where(finite, columns, 0.0).astype(np.float32)
    design = np.hstack([values, finite.astype(np.float32)])
    sums = np.vstack([w @ design for w in poisson_weight_blocks(len(values), n_resamples, rng)])
    m = columns.shape[1]
    return sums[:, :m] / sums[:, m:]


def _group_columns(values: np.ndarray, labels: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(labels)
    out = np.full((len(values), codes.max() + 1), np.nan)
    ok = codes >= 0
    out[np.flatnonzero(ok), codes[ok]] = values[ok]
    return out


def _popularity_columns(context: Any, recs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    users = context.user_table.index
    items = context.dataset.catalog.frame.index
    pop = context.item_popularity.reindex(items, fill_value=0.0).to_numpy()
    top = recs[recs["rank"].to_numpy() <= context.k]
    u = users.get_indexer(top["user_id"])
    i = items.get_indexer(top["item_id"])
    ok = (u >= 0) & (i >= 0)
    u, i = u[ok], i[ok]
    head = np.zeros(len(items), dtype=bool)
    head[np.argsort(-pop, kind="stable")[: max(1, round(0.2 * len(items)))]] = True
    n = np.bincount(u, minlength=len(users))
    with np.errstate(invalid="ignore", divide="ignore"):
        arp = np.bincount(u, pop[i], minlength=len(users)) / n
        aplt = np.bincount(u, ~head[i], minlength=len(users)) / n
    train = context.train.interactions.frame
    hu, hi = users.get_indexer(train["user_id"]), items.get_indexer(train["item_id"])
    ok = (hu >= 0) & (hi >= 0)
    hist = sparse.csr_matrix(
        (np.ones(int(ok.sum())), (hu[ok], hi[ok])), shape=(len(users), len(items))
    )
    hist.data[:] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = arp / ((hist @ pop) / np.diff(hist.indptr)) - 1.0
    genres = sparse.csr_matrix(context.dataset.catalog.genre_matrix().to_numpy())
    plays = train["plays"].to_numpy(float)[ok]
    p = np.asarray(
        (sparse.csr_matrix((plays, (hu[ok], hi[ok])), shape=hist.shape) @ genres).todense()
    )
    q = np.asarray(
        (sparse.csr_matrix((np.ones(len(u)), (u, i)), shape=hist.shape) @ genres).todense()
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
        kl = np.where(p > 0, p * np.log(p / (0.99 * q + 0.01 * p)), 0.0).sum(axis=1)
    exposure = sparse.csr_matrix(
        (np.ones(len(u), np.float32), (i, u)), shape=(len(items), len(users))
    )
    return np.column_stack([arp, aplt, lift, kl]), exposure


def _gini_rows(x: np.ndarray) -> np.ndarray:
    x = np.sort(x, axis=-1)
    n = x.shape[-1]
    return 2.0 * (x * np.arange(1, n + 1)).sum(axis=-1) / (n * x.sum(axis=-1)) - (n + 1.0) / n


def reference_metrics(
    context: Any, *, recorder_factory: Callable[[str], AbstractContextManager[None]]
) -> dict[str, Any]:
    """Seconds per detector for the minimal computation of its numbers."""
    seconds: dict[str, float] = {}
    rng = np.random.default_rng(0)
    b = context.bootstrap.n_resamples
    table = context.user_table
    metrics = context.metric_columns
    models = {context.subject.name: context.user_table, **context.baseline_user_tables}

    @_timed(seconds, "baseline_comparison", recorder_factory)
    def _() -> None:
        cols = [t[m].reindex(table.index).to_numpy(float) for t in models.values() for m in metrics]
        if "popularity" in models:
            cols += [
                table[m].to_numpy(float) - models["popularity"][m].to_numpy(float) for m in metrics
            ]
        boots = _boot_means(np.column_stack(cols), rng, b)
        np.nanquantile(boots, [0.025, 0.975], axis=0)

    @_timed(seconds, "group_fairness", recorder_factory)
    def _() -> None:
        cols = [
            _group_columns(table[m].to_numpy(float), table[a])
            for m in metrics
            for a in context.group_columns
        ]
        boots = _boot_means(np.hstack(cols), rng, b)
        np.nanquantile(boots, [0.025, 0.975], axis=0)

    @_timed(seconds, "popularity_bias", recorder_factory)
    def _() -> None:
        outputs = {context.subject.name: context.subject, **context.baselines}
        per_user, ginis = [], []
        for out in outputs.values():
            values, exposure = _popularity_columns(context, out.recommendations)
            per_user.append(values)
            for w in poisson_weight_blocks(len(table), min(b, 400), rng):
                ginis.append(_gini_rows((exposure @ np.ascontiguousarray(w.T)).T))
        own = per_user[0]
        grouped = [
            _group_columns(own[:, j], table[a]) for j in (1, 2, 3) for a in context.group_columns
        ]
        boots = _boot_means(np.hstack([*per_user, *grouped]), rng, b)
        np.nanquantile(boots, [0.025, 0.975], axis=0)

    return {"seconds": seconds}


def _timed(
    seconds: dict[str, float],
    name: str,
    recorder_factory: Callable[[str], AbstractContextManager[None]],
) -> Callable[[Callable[[], None]], None]:
    def run(fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        with recorder_factory(f"reference {name}"):
            fn()
        seconds[name] = time.perf_counter() - start

    return run
