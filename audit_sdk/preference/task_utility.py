"""Task-driven evaluation (LettinGo, arXiv 2506.18309, Sec. 3.2): a downstream recommender
reads a profile and the user's recent interactions and ranks candidates for the held-out
target; the profile's utility is how high the target lands.

Candidates per task user: the target and ``negatives`` items the user never played, drawn once
per user with a seeded generator, so every profile of a user faces the same list (the
profiles of one user are compared on equal terms). Two recommenders:

* :func:`score_with_encoder`, a bi-encoder (default all-MiniLM-L6-v2; any object with
  ``embed(texts)``): the query text is the profile followed by the recent items' texts,
  candidates are ranked by cosine similarity to it;
* :func:`score_with_model`, any adapter with ``score``: candidates are ranked by the
  log-probability of their text after a prompt holding the profile and the recent items.

Utility of one profile: ``hit@k`` (target in the top k) and ``ndcg@k`` = 1 / log2(rank + 1)
when rank <= k, else 0 (binary gains with one relevant item, Järvelin & Kekäläinen, TOIS
2002); rank counts the candidates scored strictly above the target, plus one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from audit_sdk.interfaces.adapter import TokenScores
from audit_sdk.preference.exploration import TaskSplit

__all__ = [
    "TaskCandidates",
    "TextEncoder",
    "TokenScorer",
    "draw_task_candidates",
    "score_with_encoder",
    "score_with_model",
    "task_query",
]


class TextEncoder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class TokenScorer(Protocol):
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]: ...


TaskCandidates = dict[str, np.ndarray]
"""user_id -> candidate item ids, the target first"""


def draw_task_candidates(
    split: TaskSplit,
    *,
    items: pd.Index,
    played: pd.DataFrame,
    rng: np.random.Generator,
    negatives: int = 50,
) -> TaskCandidates:
    """The target and ``negatives`` distinct items each task user never played (``played``:
    ``user_id, item_id`` of every known event), per user in the split's order."""
    seen = played.groupby(played["user_id"].astype(str))["item_id"].agg(
        lambda s: set(s.astype(str))
    )
    pool = items.astype(str).to_numpy()
    out: TaskCandidates = {}
    for user, target in split.targets.items():
        excluded = seen.get(user, set()) | {target}
        available = len(pool) - len(excluded & set(pool))
        wanted = min(negatives, max(available, 0))
        chosen: list[str] = []
        taken: set[str] = set()
        while len(chosen) < wanted:
            for code in rng.integers(len(pool), size=2 * (wanted - len(chosen)) + 8):
                item = pool[int(code)]
                if item not in excluded and item not in taken:
                    taken.add(item)
                    chosen.append(item)
                    if len(chosen) == wanted:
                        break
        out[str(user)] = np.array([target, *chosen], dtype=object)
    return out


def task_query(profile: str, recent_texts: Sequence[str]) -> str:
    """The downstream recommender's view of a user: the profile, then the recent items."""
    recent = "; ".join(recent_texts)
    return f"{profile.strip()}\nRecently played: {recent}" if recent else profile.strip()


def _recent_texts(split: TaskSplit, item_text: pd.Series) -> dict[str, list[str]]:
    ordered = split.recent.sort_values(["user_id", "position"], kind="stable")
    return {
        str(user): [str(item_text.get(i, i)) for i in part["item_id"]]
        for user, part in ordered.groupby("user_id", sort=False)
    }


def _utility(scores: np.ndarray, k: int) -> tuple[float, float, int]:
    rank = int((scores[1:] > scores[0]).sum()) + 1
    hit = 1.0 if rank <= k else 0.0
    return hit, (1.0 / np.log2(rank + 1.0) if rank <= k else 0.0), rank


def _frame(
    explored: pd.DataFrame, values: dict[int, tuple[float, float, int]], k: int
) -> pd.DataFrame:
    out = explored.copy()
    hit = np.full(len(out), np.nan)
    ndcg = np.full(len(out), np.nan)
    rank = np.full(len(out), np.nan)
    for row, (h, n, r) in values.items():
        hit[row], ndcg[row], rank[row] = h, n, r
    out[f"hit@{k}"] = hit
    out[f"ndcg@{k}"] = ndcg
    out["target_rank"] = rank
    return out


def _scorable(explored: pd.DataFrame, candidates: TaskCandidates) -> list[int]:
    users = explored["user_id"].astype(str).to_numpy()
    texts = explored["text"].to_numpy()
    return [
        row
        for row in range(len(explored))
        if users[row] in candidates and isinstance(texts[row], str) and texts[row].strip()
    ]


def score_with_encoder(
    explored: pd.DataFrame,
    split: TaskSplit,
    candidates: TaskCandidates,
    *,
    item_text: pd.Series,
    encoder: TextEncoder,
    k: int = 10,
) -> pd.DataFrame:
    """``explored`` (``user_id, text`` per profile) with ``hit@k``, ``ndcg@k`` and
    ``target_rank`` added (NaN where the profile has no text or the user no task); each
    query and each candidate item is encoded once."""
    rows = _scorable(explored, candidates)
    if not rows:
        return _frame(explored, {}, k)
    recent = _recent_texts(split, item_text)
    users = explored["user_id"].astype(str).to_numpy()
    texts = explored["text"].to_numpy()
    queries = [task_query(str(texts[r]), recent.get(users[r], [])) for r in rows]
    unique_queries = list(dict.fromkeys(queries))
    query_vectors = dict(zip(unique_queries, encoder.embed(unique_queries), strict=True))
    needed = list(dict.fromkeys(i for u in {users[r] for r in rows} for i in candidates[u]))
    item_vectors = dict(
        zip(needed, encoder.embed([str(item_text.get(i, i)) for i in needed]), strict=True)
    )
    matrices = {
        u: np.stack([item_vectors[i] for i in candidates[u]]) for u in {users[r] for r in rows}
    }
    values = {}
    for row, query in zip(rows, queries, strict=True):
        vector = np.asarray(query_vectors[query], dtype=np.float64)
        matrix = matrices[users[row]].astype(np.float64)
        norms = np.linalg.norm(matrix, axis=1) * max(np.linalg.norm(vector), 1e-12)
        values[row] = _utility(matrix @ vector / np.maximum(norms, 1e-12), k)
    return _frame(explored, values, k)


def score_with_model(
    explored: pd.DataFrame,
    split: TaskSplit,
    candidates: TaskCandidates,
    *,
    item_text: pd.Series,
    scorer: TokenScorer,
    k: int = 10,
) -> pd.DataFrame:
    """As :func:`score_with_encoder`, ranking each candidate by the total log-probability of
    its text after ``"<query>\\nNext: "``, from any adapter with ``score``."""
    rows = _scorable(explored, candidates)
    recent = _recent_texts(split, item_text)
    users = explored["user_id"].astype(str).to_numpy()
    texts = explored["text"].to_numpy()
    values = {}
    for row in rows:
        prompt = task_query(str(texts[row]), recent.get(users[row], [])) + "\nNext: "
        options = [str(item_text.get(i, i)) for i in candidates[users[row]]]
        scored = scorer.score([prompt] * len(options), options)
        values[row] = _utility(np.array([s.total for s in scored], dtype=np.float64), k)
    return _frame(explored, values, k)
