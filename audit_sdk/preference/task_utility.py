"""Task-driven evaluation (LettinGo, arXiv 2506.18309, Sec. 3.2): a downstream recommender
reads a profile and the user's recent interactions and ranks candidates for the held-out
targets; the profile's utility is how high the targets land.

Candidates per task user: the targets and ``negatives`` items the user never played, drawn once
per user with a seeded generator, so every profile of a user faces the same list (the
profiles of one user are compared on equal terms). Each target is ranked against the
negatives only, and a profile's utility is the mean over its user's targets. Two recommenders:

* :func:`score_with_encoder`, a bi-encoder (default all-MiniLM-L6-v2; any object with
  ``embed(texts)``). With ``fusion="scores"`` (the default) a candidate's score is its cosine
  to the profile plus its cosine to the recent items (their mean unit vector): the recent
  interactions weigh the same for every profile of a user, so profiles are compared by what
  they add. With ``fusion="text"`` the query is the profile's text followed by the recent
  items' texts, as an LLM recommender would read them; a bi-encoder then favours short
  profiles, which leave the recent items to dominate the query's vector (measured on the demo
  world: length and utility correlate at -0.16 within users), so DPO learns to write less.
* :func:`score_with_model`, any adapter with ``score``: candidates are ranked by the
  log-probability of their text after a prompt holding the profile and the recent items.

Utility against one target: ``hit@k`` (the target in the top k) and ``ndcg@k`` =
1 / log2(rank + 1) when rank <= k, else 0 (binary gains with one relevant item, Järvelin &
Kekäläinen, TOIS 2002); rank counts the negatives scored strictly above the target, plus one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from audit_sdk.interfaces.adapter import TokenScores
from audit_sdk.preference.exploration import TaskSplit
from audit_sdk.vectors import unit_rows

__all__ = [
    "Fusion",
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
"""user_id -> candidate item ids, the user's targets first (oldest first), then negatives"""

Fusion = Literal["scores", "text"]


def draw_task_candidates(
    split: TaskSplit,
    *,
    items: pd.Index,
    played: pd.DataFrame,
    rng: np.random.Generator,
    negatives: int = 50,
) -> TaskCandidates:
    """The targets and ``negatives`` distinct items each task user never played (``played``:
    ``user_id, item_id`` of every known event), per user in the split's order."""
    seen = played.groupby(played["user_id"].astype(str))["item_id"].agg(
        lambda s: set(s.astype(str))
    )
    pool = items.astype(str).to_numpy()
    out: TaskCandidates = {}
    for user, targets in split.target_items().items():
        excluded = seen.get(user, set()) | set(targets)
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
        out[str(user)] = np.array([*targets, *chosen], dtype=object)
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


def _utility(scores: np.ndarray, n_targets: int, k: int) -> tuple[float, float, float]:
    """Mean hit@k, NDCG@k and rank over the targets (the first ``n_targets`` scores), each
    ranked against the negatives (the rest)."""
    negatives = scores[n_targets:]
    ranks = np.array([int((negatives > t).sum()) + 1 for t in scores[:n_targets]])
    hits = ranks <= k
    ndcg = np.where(hits, 1.0 / np.log2(ranks + 1.0), 0.0)
    return float(hits.mean()), float(ndcg.mean()), float(ranks.mean())


def _frame(
    explored: pd.DataFrame, values: dict[int, tuple[float, float, float]], k: int
) -> pd.DataFrame:
    out = explored.copy()
    hit = np.full(len(out), np.nan)
    ndcg = np.full(len(out), np.nan)
    rank = np.full(len(out), np.nan)
    for row, (h, n, r) in values.items():
        hit[row], ndcg[row], rank[row] = h, n, r
    out[f"hit@{k}"] = hit
    out[f"ndcg@{k}"] = ndcg
    out["target_rank"] = rank  # the mean over the user's targets
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
    fusion: Fusion = "scores",
) -> pd.DataFrame:
    """``explored`` (``user_id, text`` per profile) with ``hit@k``, ``ndcg@k`` and
    ``target_rank`` added (NaN where the profile has no text or the user no task); each
    query and each candidate item is encoded once. ``fusion``: how the profile and the recent
    items meet (module docstring)."""
    if fusion not in ("scores", "text"):
        raise ValueError(f"fusion must be 'scores' or 'text', not {fusion!r}")
    rows = _scorable(explored, candidates)
    if not rows:
        return _frame(explored, {}, k)
    recent = _recent_texts(split, item_text)
    users = explored["user_id"].astype(str).to_numpy()
    texts = explored["text"].to_numpy()
    if fusion == "text":
        queries = [task_query(str(texts[r]), recent.get(users[r], [])) for r in rows]
    else:
        queries = [str(texts[r]).strip() for r in rows]
    unique_queries = list(dict.fromkeys(queries))
    query_vectors = dict(zip(unique_queries, unit_rows(encoder.embed(unique_queries)), strict=True))
    task_users = list(dict.fromkeys(users[r] for r in rows))
    item_lines = {u: [str(item_text.get(i, i)) for i in candidates[u]] for u in task_users}
    needed = list(dict.fromkeys(t for u in task_users for t in item_lines[u]))
    if fusion == "scores":
        needed = list(dict.fromkeys([*needed, *(t for u in task_users for t in recent.get(u, []))]))
    text_vectors = dict(zip(needed, unit_rows(encoder.embed(needed)), strict=True))
    matrices = {u: np.stack([text_vectors[t] for t in item_lines[u]]) for u in task_users}
    n_targets = {u: len(items) for u, items in split.target_items().items()}
    recent_scores = {u: np.zeros(len(candidates[u])) for u in task_users}
    if fusion == "scores":
        for u in task_users:
            if recent.get(u):
                centre = unit_rows(np.mean([text_vectors[t] for t in recent[u]], axis=0))
                recent_scores[u] = matrices[u] @ centre
    values = {}
    for row, query in zip(rows, queries, strict=True):
        user = users[row]
        scores = matrices[user] @ query_vectors[query] + recent_scores[user]
        values[row] = _utility(scores, n_targets[user], k)
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
    n_targets = {u: len(items) for u, items in split.target_items().items()}
    users = explored["user_id"].astype(str).to_numpy()
    texts = explored["text"].to_numpy()
    values = {}
    for row in rows:
        prompt = task_query(str(texts[row]), recent.get(users[row], [])) + "\nNext: "
        options = [str(item_text.get(i, i)) for i in candidates[users[row]]]
        scored = scorer.score([prompt] * len(options), options)
        totals = np.array([s.total for s in scored], dtype=np.float64)
        values[row] = _utility(totals, n_targets[users[row]], k)
    return _frame(explored, values, k)
