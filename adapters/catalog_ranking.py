"""Recommendations from a causal LM with one token per item.

Given the next-token logits after each user's recommendation prompt, the ranking is the
next-token distribution restricted to item tokens (renormalised over them: ``score`` is the
log-probability of the item among all items), with the user's history excluded. One forward
pass per user ranks the whole item vocabulary. Shared by TinyRec's held-out evaluation and by
every adapter that serves a model directory with a TinyRec item map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from audit_sdk.recommendation_prompts import prompt_history, recommendation_prompt

from .local_model_files import TinyRecManifest

__all__ = ["ItemRanker", "top_k_items"]

RECOMMENDATION_COLUMNS = ["user_id", "rank", "item_id", "score"]


def top_k_items(
    logits: np.ndarray,
    item_token_ids: np.ndarray,
    item_ids: Sequence[str],
    excluded: Sequence[set[int]],
    *,
    k: int,
) -> list[list[tuple[str, float]]]:
    """Per row of ``logits`` (n, vocab): the top-``k`` items as (item id, log-probability
    among items), skipping the column indices (into ``item_token_ids``) in ``excluded``.

    Ties break by item order (the item vocabulary is ordered by training popularity)."""
    item_logits = np.asarray(logits, dtype=np.float64)[:, item_token_ids]
    peak = item_logits.max(axis=1, keepdims=True)
    log_norm = peak + np.log(np.exp(item_logits - peak).sum(axis=1, keepdims=True))
    scores = item_logits - log_norm
    results: list[list[tuple[str, float]]] = []
    n_items = scores.shape[1]
    for row, skip in zip(scores, excluded, strict=True):
        row = row.copy()
        if skip:
            row[list(skip)] = -np.inf
        k_eff = min(k, n_items - len(skip))
        if k_eff <= 0:
            results.append([])
            continue
        top = np.argpartition(-row, k_eff - 1)[:k_eff]
        top = top[np.lexsort((top, -row[top]))]
        results.append([(item_ids[i], float(row[i])) for i in top])
    return results


class ItemRanker:
    """Builds recommendation prompts from histories and ranks items from next-token logits.

    :param manifest: the model directory's TinyRec item map.
    :param token_texts: token id -> token text (the item's title and a newline), from the
        tokenizer.
    :param allowed_items: when given, only these items are recommended (e.g. the catalog of
        the dataset being audited).
    """

    def __init__(
        self,
        manifest: TinyRecManifest,
        token_texts: Mapping[int, str],
        *,
        allowed_items: set[str] | None = None,
    ) -> None:
        pairs = sorted(manifest.item_tokens.items())
        if allowed_items is not None:
            pairs = [(t, item) for t, item in pairs if item in allowed_items]
        self.manifest = manifest
        self.item_token_ids = np.array([t for t, _ in pairs], dtype=np.int64)
        self.item_ids = [item for _, item in pairs]
        self.column_of_item = {item: i for i, item in enumerate(self.item_ids)}
        self.title_of_item = {item: token_texts[t].removesuffix("\n") for t, item in pairs}

    def prompt(self, history: Sequence[str]) -> str:
        shown = prompt_history(
            history,
            self.title_of_item,
            order=self.manifest.history_order,
            max_history=self.manifest.max_history,
        )
        return recommendation_prompt(
            [self.title_of_item[item] for item in shown],
            unit=self.manifest.unit,
            order=self.manifest.history_order,
        )

    def recommend(
        self,
        user_ids: Sequence[str],
        histories: Mapping[str, Sequence[str]],
        next_token_logits: Callable[[list[str]], np.ndarray],
        *,
        k: int,
        batch_size: int = 64,
    ) -> pd.DataFrame:
        """Top-``k`` unseen items per user (``user_id, rank, item_id, score``).

        ``next_token_logits(prompts)`` returns the (n, vocab) logits after each prompt. A user
        without a history gets the model's unconditional ranking."""
        rows: list[tuple[str, int, str, float]] = []
        users = [str(u) for u in user_ids]
        for start in range(0, len(users), batch_size):
            batch = users[start : start + batch_size]
            batch_histories = [list(histories.get(user, ())) for user in batch]
            logits = next_token_logits([self.prompt(h) for h in batch_histories])
            excluded = [
                {self.column_of_item[i] for i in h if i in self.column_of_item}
                for h in batch_histories
            ]
            ranked = top_k_items(logits, self.item_token_ids, self.item_ids, excluded, k=k)
            for user, items in zip(batch, ranked, strict=True):
                rows.extend(
                    (user, rank, item, score) for rank, (item, score) in enumerate(items, 1)
                )
        frame = pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)
        return frame.astype({"rank": "int64", "score": "float64"})
