"""Calibrated re-ranking (Steck, "Calibrated recommendations", RecSys 2018).

Re-ranks a longer candidate list from the subject so that each user's top-k list reflects the
genre mix of their history. Greedy maximisation of Steck's Eq. 6,

    I* = argmax_I  (1 - lambda) * sum_{i in I} s(u, i)  -  lambda * KL(p || q~(I)),

with s the subject's scores rescaled to [0, 1] per user, p the user's genre distribution, q~
the smoothed genre distribution of the list (Eq. 5). The runner re-runs every detector on the
re-ranked lists, so the report shows what calibration bought (miscalibration, popularity) and
what it cost (NDCG) side by side.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import (
    AuditContext,
    MitigationResult,
    Mitigator,
    PluginParams,
    SubjectOutputs,
)
from audit_sdk.interfaces.requirements import Needs, Requirement

__all__ = ["CalibratedReranking", "calibrated_rerank"]


class CalibratedRerankingParams(PluginParams):
    weight: float = Field(0.5, ge=0.0, le=1.0, description="lambda: 0 = original order")
    candidates: int = Field(100, ge=1, description="candidate list length per user")
    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="KL smoothing (Steck 2018, Eq. 5)")


def calibrated_rerank(
    scores: np.ndarray,
    item_genres: np.ndarray,
    target: np.ndarray,
    *,
    k: int,
    weight: float,
    alpha: float,
) -> np.ndarray:
    """Greedy calibrated selection for one user: indices into the candidates, best first.

    ``scores`` (n,) in [0, 1]; ``item_genres`` (n, g) rows summing to 1 (or 0); ``target``
    (g,) the user's genre distribution p.
    """
    chosen: list[int] = []
    available = np.ones(len(scores), dtype=bool)
    genre_sum = np.zeros(item_genres.shape[1])
    relevance = 0.0
    mask = target > 0
    for _ in range(min(k, len(scores))):
        n = len(chosen) + 1
        q = (genre_sum[None, :] + item_genres) / n
        q_tilde = (1 - alpha) * q + alpha * target[None, :]
        kl = (target[mask] * np.log(target[mask] / q_tilde[:, mask])).sum(axis=1)
        objective = (1 - weight) * (relevance + scores) - weight * kl
        objective[~available] = -np.inf
        best = int(np.argmax(objective))
        chosen.append(best)
        available[best] = False
        genre_sum += item_genres[best]
        relevance += scores[best]
    return np.array(chosen, dtype=int)


class CalibratedReranking(Mitigator[CalibratedRerankingParams]):
    name = "calibrated_reranking"
    description = "Re-rank the subject's candidates to match each user's genre mix (Steck 2018)."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.RECOMMENDATIONS})
    Params = CalibratedRerankingParams

    def mitigate(self, context: AuditContext) -> MitigationResult:
        params = self.params
        adapter = context.adapter
        if adapter is None or not adapter.supports("recommend"):
            raise ValueError("calibrated re-ranking needs an adapter that can recommend")
        users = list(context.user_table.index)
        candidates = adapter.recommend(users, k=max(params.candidates, context.k))
        genres = context.dataset.catalog.genre_matrix()
        if genres.shape[1] == 0:
            raise ValueError("the catalog has no genres to calibrate on")
        # p(g | u), the one definition of a user's genre shares (audit_sdk.features)
        target = context.features.genre_shares.reindex(columns=genres.columns, fill_value=0.0)

        rows = []
        for user, part in candidates.groupby("user_id", sort=False):
            part = part.sort_values("rank")
            s = np.nan_to_num(part["score"].to_numpy(dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
            span = s.max() - s.min()
            scaled = (s - s.min()) / span if span > 0 else np.ones_like(s)
            item_genres = genres.reindex(part["item_id"]).fillna(0.0).to_numpy()
            p = target.loc[user].to_numpy() if user in target.index else np.zeros(genres.shape[1])
            if p.sum() == 0:
                order = np.arange(min(context.k, len(part)))
            else:
                order = calibrated_rerank(
                    scaled, item_genres, p, k=context.k, weight=params.weight, alpha=params.alpha
                )
            picked = part.iloc[order]
            rows.append(
                pd.DataFrame(
                    {
                        "user_id": user,
                        "rank": np.arange(1, len(picked) + 1),
                        "item_id": picked["item_id"].to_numpy(),
                        "score": scaled[order],
                    }
                )
            )
        recommendations = pd.concat(rows, ignore_index=True)
        # the host names the mitigated subject and gives it a fingerprint of its own
        outputs = SubjectOutputs(
            name=context.subject.name,
            adapter=context.subject.adapter,
            fingerprint=context.subject.fingerprint,
            recommendations=recommendations,
            description={
                **context.subject.description,
                "mitigation": self.name,
                "params": params.model_dump(),
            },
        )
        return MitigationResult(
            outputs=outputs,
            summary=(
                f"re-ranked the top {params.candidates} candidates of {context.subject.name} "
                f"with lambda={params.weight}"
            ),
            details={"weight": params.weight, "candidates": params.candidates},
        )


@hookimpl
def audit_sdk_register_mitigators(register: Any) -> None:
    register(CalibratedReranking)
