"""Reference baselines: popularity, item-kNN and random recommenders.

Every report compares the audited model against these, so a reader can tell whether a gap
is the model's or the data's. They are ordinary adapters with the ``recommend`` capability.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from audit_sdk.adapters.sparse_top_k import (
    hash_uniform,
    rows_to_csr,
    select_top_k,
    select_top_k_sparse,
    user_hashes,
)
from pydantic import Field
from scipy import sparse

from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import Capability, GeneratorAdapter, PluginParams
from audit_sdk.memory_budget import current_memory_budget

__all__ = ["ItemKNNRecommender", "PopularityRecommender", "RandomRecommender"]


class _MatrixRecommender(GeneratorAdapter):
    """Shared machinery: a user x item matrix of the training data, users recommended in
    chunks that follow the memory budget, training items excluded, top-k by score (ties by
    item order).

    Each baseline names a few candidates per user that surely hold its k best unseen items
    (:meth:`_candidates`), so ranking costs users x candidates, not users x catalog; a user
    whose candidates run short (one who has heard most of the catalog) is scored against the
    whole catalog (:meth:`_scores`).
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset({"recommend"})

    def fit(self, train: Dataset) -> None:
        frame = train.interactions.frame
        items = pd.Index(sorted(train.catalog.frame.index.astype(str)))
        users = pd.Index(np.sort(pd.unique(frame["user_id"].to_numpy(dtype=object))))
        rows = users.get_indexer(frame["user_id"])
        cols = items.get_indexer(frame["item_id"])
        ok = cols >= 0
        self.items_ = items
        self.users_ = users
        # Duplicate (user, item) rows add up, as a groupby-sum would.
        matrix = sparse.csr_matrix(
            (frame["plays"].to_numpy(dtype=float)[ok], (rows[ok], cols[ok])),
            shape=(len(users), len(items)),
        )
        matrix.sum_duplicates()
        self.matrix_ = matrix
        self.data_fingerprint_ = train.fingerprint()[:16]
        counts = np.diff(matrix.tocsc().indptr).astype(float)  # distinct users per item
        self.item_users_ = counts
        self.by_popularity_ = np.argsort(-counts, kind="stable")
        self._fit_scores()

    def _fit_scores(self) -> None:
        pass

    @abstractmethod
    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        """Scores (len(rows) x items) for one batch of users (row -1: unknown user)."""

    @abstractmethod
    def _candidates(
        self, rows: np.ndarray, user_ids: Sequence[str], seen: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded candidate items and scores (len(rows) x L) excluding ``seen`` items (a
        len(rows) x items boolean mask), and per row whether the candidates surely hold the
        row's k best unseen items."""

    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        if not hasattr(self, "matrix_"):
            raise AdapterError(f"adapter {self.name!r}: call fit(train) before recommend().")
        user_ids = list(user_ids)
        rows = self.users_.get_indexer(pd.Index(user_ids))
        n_items = len(self.items_)
        k_eff = min(k, n_items)
        # A chunk holds a seen mask (1 byte an item) and, at worst, full score rows (24).
        chunk = current_memory_budget().chunk_rows(
            25 * n_items,
            total_rows=min(len(user_ids), 4096),
            what=f"{self.name}: scoring one user against {n_items:,} items",
        )
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for start in range(0, len(user_ids), chunk):
            batch_rows = rows[start : start + chunk]
            batch_users = user_ids[start : start + chunk]
            seen = np.zeros((len(batch_rows), n_items), dtype=bool)
            known = np.flatnonzero(batch_rows >= 0)
            if len(known):
                hit_rows, hit_cols = self.matrix_[batch_rows[known]].nonzero()
                seen[known[hit_rows], hit_cols] = True
            items, scores, complete = self._candidates(batch_rows, batch_users, seen, k_eff)
            top_items, top_scores = select_top_k(items, scores, k_eff)
            short = np.flatnonzero(~complete)
            if len(short):
                full = np.asarray(
                    self._scores(batch_rows[short], [batch_users[i] for i in short]), dtype=float
                ).copy()
                full[seen[short]] = -np.inf
                grid = np.broadcast_to(np.arange(n_items), full.shape)
                fi, fs = select_top_k(grid, full, k_eff)
                top_items = _pad_to(top_items, k_eff, -1)
                top_scores = _pad_to(top_scores, k_eff, -np.inf)
                top_items[short], top_scores[short] = fi, fs
            valid = np.isfinite(top_scores)
            user_index = np.broadcast_to(
                np.arange(start, start + len(batch_rows))[:, None], valid.shape
            )
            ranks = np.cumsum(valid, axis=1)
            parts.append((user_index[valid], ranks[valid], top_items[valid], top_scores[valid]))
        if parts:
            user_pos, ranks, item_codes, scores = (
                np.concatenate(c) for c in zip(*parts, strict=True)
            )
        else:
            user_pos = ranks = item_codes = np.empty(0, dtype=np.int64)
            scores = np.empty(0)
        return pd.DataFrame(
            {
                "user_id": np.asarray(user_ids, dtype=object)[user_pos],
                "rank": ranks.astype(np.int64),
                "item_id": self.items_.to_numpy(dtype=object)[item_codes],
                "score": scores.astype(float),
            }
        )

    def _popular_unseen(
        self, seen: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The most popular items per row (as padded candidates, ``k + 64`` deep) that are not
        seen (nor in ``exclude``, a mask like ``seen``), and whether each row got k of them or
        the list covers the catalog."""
        depth = min(len(self.by_popularity_), k + 64)
        head = self.by_popularity_[:depth]
        blocked = seen[:, head]
        if exclude is not None:
            blocked |= exclude[:, head]
        items = np.where(blocked, -1, head[None, :])
        enough = ((~blocked).sum(axis=1) >= k) | (depth == len(self.by_popularity_))
        return items, enough

    def fingerprint(self) -> str:
        data = getattr(self, "data_fingerprint_", "unfitted")
        payload = f"{self.name}:{self.params.model_dump_json()}:{data}"
        return hashlib.sha256(payload.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "reference baseline"}


def _pad_to(a: np.ndarray, width: int, fill: float) -> np.ndarray:
    if a.shape[1] >= width:
        return a.copy()
    out = np.full((a.shape[0], width), fill, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


class PopularityRecommender(_MatrixRecommender):
    """Most popular items (by distinct training users) the user has not heard."""

    name = "popularity"
    description = "Reference baseline: the most popular unseen items."

    def _fit_scores(self) -> None:
        # Tiny decreasing tie-breaker keeps ties in catalog order.
        self.popularity_ = self.item_users_ - np.arange(len(self.item_users_)) * 1e-9

    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_)))

    def _candidates(
        self, rows: np.ndarray, user_ids: Sequence[str], seen: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        items, enough = self._popular_unseen(seen, k)
        scores = np.where(items >= 0, self.popularity_[np.maximum(items, 0)], -np.inf)
        return items, scores, enough


class RandomRecommender(_MatrixRecommender):
    """Uniformly random unseen items, seeded per user (a floor for any metric): each user's
    items are the first distinct unseen ones among hashed draws of (seed, user id, counter),
    the same whichever batch or chunk size the user is recommended in."""

    class Params(PluginParams):
        seed: int = 0

    name = "random"
    description = "Reference baseline: random unseen items."
    draws: ClassVar[int] = 48  # candidates per user beyond k

    def _keys(self, user_ids: Sequence[str]) -> np.ndarray:
        return user_hashes(list(user_ids), int(self.params.seed))  # type: ignore[attr-defined]

    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        n_items = len(self.items_)
        bits = hash_uniform(self._keys(user_ids)[:, None], np.arange(n_items)[None, :] + 2**40)
        return (bits >> np.uint64(11)).astype(float) / 2.0**53

    def _candidates(
        self, rows: np.ndarray, user_ids: Sequence[str], seen: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_items = len(self.items_)
        width = k + self.draws
        bits = hash_uniform(self._keys(user_ids)[:, None], np.arange(width)[None, :])
        items = (bits % np.uint64(n_items)).astype(np.int64)
        # Keep the first draw of each item, and only unseen items; earlier draws rank higher.
        order = np.argsort(items, axis=1, kind="stable")
        sorted_items = np.take_along_axis(items, order, axis=1)
        repeat = np.zeros_like(sorted_items, dtype=bool)
        repeat[:, 1:] = sorted_items[:, 1:] == sorted_items[:, :-1]
        duplicate = np.empty_like(repeat)
        np.put_along_axis(duplicate, order, repeat, axis=1)
        blocked = duplicate | np.take_along_axis(seen, items, axis=1)
        scores = np.where(blocked, -np.inf, 1.0 - np.arange(width)[None, :] / width)
        enough = (~blocked).sum(axis=1) >= k
        return items, scores, enough


class ItemKNNRecommender(_MatrixRecommender):
    """Item-based collaborative filtering with cosine similarity (Sarwar et al. 2001;
    Deshpande & Karypis 2004), over all neighbours or each item's ``neighbours`` most similar.

    score(u, j) = sum_i x_ui * s(i, j), with x the (binary or log-plays) user x item matrix and
    s the cosine similarity, kept sparse: S = (X D)^T (X D), D = diag(1/||x_i||), built in
    chunks of items, each row cut to its ``neighbours`` largest entries when that is set. A
    user's candidates are the items its history reaches through S and the most popular items
    (every score carries a popularity tie-breaker), so recommending is linear in users.
    """

    class Params(PluginParams):
        weighting: Literal["binary", "log_plays"] = "binary"
        popularity_tiebreak: float = Field(1e-6, ge=0)
        neighbours: int | None = Field(
            None,
            ge=1,
            description="keep each item's most similar items only (None: all); set it "
            "(e.g. 200) for large catalogs, where all pairs of items would not fit in memory",
        )

    name = "item_knn"
    description = "Reference baseline: item-kNN with cosine similarity."

    def _fit_scores(self) -> None:
        weighting = self.params.weighting  # type: ignore[attr-defined]
        x = self.matrix_.copy().astype(float)
        if weighting == "binary":
            x.data = np.ones_like(x.data)
        else:
            x.data = np.log1p(x.data)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.x_ = x.tocsr()
        self.similarity_ = self._similarity((x @ sparse.diags(inv)).tocsc())
        counts = self.item_users_
        self.tiebreak_ = counts / max(counts.max(), 1.0) * self.params.popularity_tiebreak  # type: ignore[attr-defined]

    def _similarity(self, xn: sparse.csc_matrix) -> sparse.csr_matrix:
        neighbours = self.params.neighbours  # type: ignore[attr-defined]
        n_items = xn.shape[1]
        xn_t = xn.T.tocsr()
        if neighbours is None:
            return (xn_t @ xn).tocsr()
        chunk = current_memory_budget().chunk_rows(
            16 * n_items, total_rows=n_items, what="item_knn: similarities of one item"
        )
        parts = []
        for start in range(0, n_items, chunk):
            block = (xn_t[start : start + chunk] @ xn).tocoo()
            other = (block.data > 0) & (block.row + start != block.col)  # no self-similarity
            rows = block.row[other]
            block = rows_to_csr(
                rows, block.col[other], block.data[other], shape=(block.shape[0], n_items)
            )
            top_items, top_scores = select_top_k_sparse(block, neighbours)
            keep = top_items >= 0
            rows = np.broadcast_to(np.arange(block.shape[0])[:, None], keep.shape)[keep]
            parts.append(
                sparse.csr_matrix(
                    (top_scores[keep], (rows, top_items[keep])), shape=(block.shape[0], n_items)
                )
            )
        return sparse.vstack(parts).tocsr()

    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        out = np.tile(self.tiebreak_, (len(rows), 1))
        known = rows >= 0
        if known.any():
            out[known] += (self.x_[rows[known]] @ self.similarity_).toarray()
        return out

    def _candidates(
        self, rows: np.ndarray, user_ids: Sequence[str], seen: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_items = len(self.items_)
        reached = sparse.csr_matrix((len(rows), n_items))
        known = np.flatnonzero(rows >= 0)
        if len(known):
            part = (self.x_[rows[known]] @ self.similarity_).tocoo()
            reached = sparse.coo_matrix(
                (part.data, (known[part.row], part.col)), shape=reached.shape
            )
        if reached.nnz > 0.25 * seen.size:
            # Histories reach most of the catalog: score it whole.
            scores = self._scores(rows, user_ids)
            scores[seen] = -np.inf
            items = np.broadcast_to(np.arange(n_items), scores.shape)
            return items, scores, np.ones(len(rows), dtype=bool)
        r, c = reached.row, reached.col
        flat = r.astype(np.int64) * n_items + c
        in_reach = np.zeros_like(seen)
        in_reach.ravel()[flat] = True
        keep = ~seen.ravel()[flat]
        popular, enough = self._popular_unseen(seen, k, exclude=in_reach)
        pr, pcol = np.nonzero(popular >= 0)
        pc = popular[pr, pcol]
        candidates = rows_to_csr(
            np.concatenate([r[keep], pr]),
            np.concatenate([c[keep], pc]),
            np.concatenate([reached.data[keep] + self.tiebreak_[c[keep]], self.tiebreak_[pc]]),
            shape=reached.shape,
        )
        # An item neither reached nor in the popular list scores its tie-breaker alone, at
        # most that of the first item past the list: the row is complete when k candidates
        # score above it.
        depth = popular.shape[1]
        outside = (
            self.tiebreak_[self.by_popularity_[depth]]
            if depth < len(self.by_popularity_)
            else -np.inf
        )
        row_of = np.repeat(np.arange(len(rows)), np.diff(candidates.indptr))
        above = np.bincount(row_of[candidates.data > outside], minlength=len(rows))
        items, scores = select_top_k_sparse(candidates, k)
        return items, scores, enough | (above >= k)


@hookimpl
def audit_sdk_register_adapters(register: Any) -> None:
    register(PopularityRecommender)
    register(ItemKNNRecommender)
    register(RandomRecommender)
