"""Per-user ranking quality of top-k lists against held-out items.

NDCG@k with binary relevance (Järvelin & Kekäläinen 2002): DCG = sum_{r<=k} rel_r / log2(r+1),
normalised by the ideal DCG of min(|relevant|, k) hits. Recall@k = hits / |relevant|.
Users with held-out items but no recommendations score 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ranking_metrics"]


def ranking_metrics(
    recommendations: pd.DataFrame, test: pd.DataFrame, *, k: int = 10
) -> pd.DataFrame:
    """One row per user in ``test``: ``ndcg@k``, ``recall@k``, ``hit@k``, ``n_relevant``.

    :param recommendations: columns ``user_id, rank, item_id`` (rank 1 = top).
    :param test: held-out interactions, columns ``user_id, item_id`` (duplicates ignored).
    """
    relevant = test[["user_id", "item_id"]].drop_duplicates()
    n_relevant = relevant.groupby("user_id").size().rename("n_relevant")
    top = recommendations.loc[recommendations["rank"] <= k, ["user_id", "item_id", "rank"]]
    hits = top.merge(relevant, on=["user_id", "item_id"], how="inner")
    hits = hits.assign(gain=1.0 / np.log2(hits["rank"].to_numpy(dtype=float) + 1.0))
    per_user = hits.groupby("user_id").agg(dcg=("gain", "sum"), n_hits=("gain", "size"))
    out = pd.DataFrame(n_relevant).join(per_user, how="left").fillna({"dcg": 0.0, "n_hits": 0})
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    ideal = discounts[np.minimum(out["n_relevant"].to_numpy(), k) - 1]
    result = pd.DataFrame(index=out.index)
    result[f"ndcg@{k}"] = out["dcg"].to_numpy() / ideal
    result[f"recall@{k}"] = out["n_hits"].to_numpy() / out["n_relevant"].to_numpy()
    result[f"hit@{k}"] = (out["n_hits"].to_numpy() > 0).astype(float)
    result["n_relevant"] = out["n_relevant"].astype(int)
    result.index.name = "user_id"
    return result
