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
from pydantic import Field
from scipy import sparse

from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import Capability, GeneratorAdapter, PluginParams

__all__ = ["ItemKNNRecommender", "PopularityRecommender", "RandomRecommender"]


class _MatrixRecommender(GeneratorAdapter):
    """Shared machinery: a user x item matrix of the training data, scores per user batch,
    training items excluded, top-k by score (ties by item order)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({"recommend"})
    batch_size: ClassVar[int] = 512

    def fit(self, train: Dataset) -> None:
        frame = train.interactions.frame
        items = pd.Index(sorted(train.catalog.frame.index.astype(str)))
        users = pd.Index(sorted(frame["user_id"].unique()))
        agg = frame.groupby(["user_id", "item_id"], as_index=False, sort=False)["plays"].sum()
        rows = users.get_indexer(agg["user_id"])
        cols = items.get_indexer(agg["item_id"])
        ok = cols >= 0
        self.items_ = items
        self.users_ = users
        self.matrix_ = sparse.csr_matrix(
            (agg["plays"].to_numpy(dtype=float)[ok], (rows[ok], cols[ok])),
            shape=(len(users), len(items)),
        )
        self.data_fingerprint_ = train.fingerprint()[:16]
        self._fit_scores()

    def _fit_scores(self) -> None:
        pass

    @abstractmethod
    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        """Scores (len(rows) x items) for one batch of users (row -1: unknown user)."""

    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        if not hasattr(self, "matrix_"):
            raise AdapterError(f"adapter {self.name!r}: call fit(train) before recommend().")
        user_ids = list(user_ids)
        rows = self.users_.get_indexer(pd.Index(user_ids))
        k_eff = min(k, len(self.items_))
        out_users: list[str] = []
        out_ranks: list[int] = []
        out_items: list[str] = []
        out_scores: list[float] = []
        for start in range(0, len(user_ids), self.batch_size):
            batch_rows = rows[start : start + self.batch_size]
            batch_users = user_ids[start : start + self.batch_size]
            scores = np.asarray(self._scores(batch_rows, batch_users), dtype=float).copy()
            known = batch_rows >= 0
            if known.any():
                seen = self.matrix_[batch_rows[known]]
                sub = scores[known]
                sub[seen.nonzero()] = -np.inf
                scores[known] = sub
            top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -top_scores), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            for i, user in enumerate(batch_users):
                valid = np.isfinite(top_scores[i])
                n = int(valid.sum())
                out_users.extend([user] * n)
                out_ranks.extend(range(1, n + 1))
                out_items.extend(self.items_[top[i][valid]])
                out_scores.extend(top_scores[i][valid])
        return pd.DataFrame(
            {"user_id": out_users, "rank": out_ranks, "item_id": out_items, "score": out_scores}
        )

    def fingerprint(self) -> str:
        data = getattr(self, "data_fingerprint_", "unfitted")
        payload = f"{self.name}:{self.params.model_dump_json()}:{data}"
        return hashlib.sha256(payload.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "reference baseline"}


class PopularityRecommender(_MatrixRecommender):
    """Most popular items (by distinct training users) the user has not heard."""

    name = "popularity"
    description = "Reference baseline: the most popular unseen items."

    def _fit_scores(self) -> None:
        counts = np.asarray((self.matrix_ > 0).sum(axis=0)).ravel().astype(float)
        # Tiny decreasing tie-breaker keeps ties in catalog order.
        self.popularity_ = counts - np.arange(len(counts)) * 1e-9

    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_)))


class RandomRecommender(_MatrixRecommender):
    """Uniformly random unseen items, seeded per user (a floor for any metric)."""

    class Params(PluginParams):
        seed: int = 0

    name = "random"
    description = "Reference baseline: random unseen items."

    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        seed = int(self.params.seed)  # type: ignore[attr-defined]
        out = np.empty((len(user_ids), len(self.items_)))
        for i, user in enumerate(user_ids):
            digest = hashlib.sha256(f"{seed}:{user}".encode()).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest[:8], "little")).random(
                len(self.items_)
            )
        return out


class ItemKNNRecommender(_MatrixRecommender):
    """Item-based collaborative filtering with cosine similarity (Sarwar et al. 2001;
    Deshpande & Karypis 2004), over all neighbours.

    score(u, j) = sum_i x_ui * cos(i, j), with x the (binary or log-plays) user x item matrix.
    Computed as ((X_u D) X^T)(X D), D = diag(1/||x_i||), batch by batch, so the item x item
    matrix is never materialised.
    """

    class Params(PluginParams):
        weighting: Literal["binary", "log_plays"] = "binary"
        popularity_tiebreak: float = Field(1e-6, ge=0)

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
        self.xn_ = (x @ sparse.diags(inv)).tocsr()
        counts = np.asarray((x > 0).sum(axis=0)).ravel().astype(float)
        self.tiebreak_ = counts / max(counts.max(), 1.0) * self.params.popularity_tiebreak  # type: ignore[attr-defined]

    def _scores(self, rows: np.ndarray, user_ids: Sequence[str]) -> np.ndarray:
        out = np.tile(self.tiebreak_, (len(rows), 1))
        known = rows >= 0
        if known.any():
            user_sim = self.xn_[rows[known]] @ self.x_.T
            out[known] += np.asarray((user_sim @ self.xn_).todense())
        return out


@hookimpl
def audit_sdk_register_adapters(register: Any) -> None:
    register(PopularityRecommender)
    register(ItemKNNRecommender)
    register(RandomRecommender)
