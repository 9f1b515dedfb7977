"""Stage 5, scoring: every per-user column of one model, computed from its outputs alone.

The subject, each baseline and each mitigated subject are scored by the same function, so no
column of one model can survive into another's table.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from audit_sdk.interfaces import ModelRun, SubjectOutputs
from audit_sdk.metrics.ranking import ranking_metrics

__all__ = ["score_run"]


def score_run(
    outputs: SubjectOutputs, test: pd.DataFrame, users: Sequence[str], *, k: int
) -> ModelRun:
    """Ranking metrics against the held-out items (``ndcg@k``, ``recall@k``, ``hit@k``; users
    without a list count as misses) plus the outputs' own per-user measurements."""
    index = pd.Index(list(users), name="user_id")
    scores = pd.DataFrame(index=index)
    metric_columns: tuple[str, ...] = ()
    if outputs.recommendations is not None:
        ranked = ranking_metrics(outputs.recommendations, test, k=k).reindex(index)
        metric_columns = (f"ndcg@{k}", f"recall@{k}")
        scores = scores.join(ranked[[*metric_columns, f"hit@{k}"]])
    if outputs.user_metrics is not None:
        extra = outputs.user_metrics.reindex(index)
        scores = scores.join(extra[[c for c in extra.columns if c not in scores.columns]])
    return ModelRun(outputs, scores, metric_columns)
