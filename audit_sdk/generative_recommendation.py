"""Recommendations from a model that only writes text (an LLM behind an API, a callable).

Each audited user's history becomes the recommendation prompt that TinyRec is trained on
(:mod:`audit_sdk.recommendation_prompts`: a task line, then one title per line); the model's answer
is read line by line, numbering and bullets stripped, and each line is matched to the catalog
by its title (case- and whitespace-insensitive; ``Title — Artist`` and ``Title by Artist``
lines also match on the title). Lines that match no catalog item are *hallucinations*; the
user's rate of them is kept beside the list, in the spirit of the hallucination analysis of
LLM recommenders (Sguerra et al., RecSys 2025, arXiv 2507.16708). Items the user already
played and repeats are dropped; the list keeps the model's order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from audit_sdk.data.tables import Dataset
from audit_sdk.features.listening import item_popularity
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.recommendation_prompts import catalog_unit, clean_title, recommendation_prompt
from audit_sdk.services import GenerationService
from audit_sdk.user_histories import history_order_for, user_histories

__all__ = ["GeneratedRecommendations", "parse_recommendation_lines", "recommend_by_generation"]

_BULLET = re.compile(r"^\s*(?:[-*•]+|\(?\d{1,3}[.):]\)?)\s*")
_SPLITS = (" — ", " – ", " - ", " by ")


def _key(text: str) -> str:
    return " ".join(text.lower().split()).strip(" \"'“”‘’.")


def parse_recommendation_lines(text: str) -> list[str]:
    """The item lines of a model's answer: one candidate title per non-empty line."""
    lines = []
    for raw in text.splitlines():
        line = _BULLET.sub("", raw).strip()
        if line:
            lines.append(line)
    return lines


@dataclass(frozen=True)
class GeneratedRecommendations:
    recommendations: pd.DataFrame  # user_id, rank, item_id, score
    hallucination_rate: pd.Series  # per user: share of answer lines that match no item
    raw: pd.DataFrame  # user_id, prompt, text


class _TitleIndex:
    def __init__(self, train: Dataset) -> None:
        catalog = train.catalog.frame
        # a title shared by several items means the most popular of them
        popularity = item_popularity(train.interactions.frame, catalog.index)
        order = popularity.sort_values(ascending=False)
        self.by_title: dict[str, str] = {}
        for item_id in order.index:
            self.by_title.setdefault(_key(clean_title(catalog.at[item_id, "title"])), item_id)

    def match(self, line: str) -> str | None:
        item = self.by_title.get(_key(line))
        if item is not None:
            return item
        for sep in _SPLITS:
            if sep in line:
                item = self.by_title.get(_key(line.split(sep, 1)[0]))
                if item is not None:
                    return item
        return None


def recommend_by_generation(
    adapter: GeneratorAdapter,
    train: Dataset,
    user_ids: Sequence[str],
    *,
    k: int,
    params: GenerationParams,
    max_history: int = 50,
    batch_size: int = 16,
    service: GenerationService | None = None,
    label: str | None = None,
) -> GeneratedRecommendations:
    """Ask ``adapter`` (capability ``generate``) for each user's next items, through the
    generation ``service`` (batched and cached; a user whose prompt failed gets no list and
    a NaN hallucination rate, and the error is in ``raw``)."""
    unit = catalog_unit(train.catalog)
    order = history_order_for(train.interactions)
    histories = user_histories(train.interactions, order=order)
    titles = train.catalog.frame["title"]
    users = [u for u in user_ids if histories.get(u)]
    prompts = []
    for user in users:
        history = histories[user]
        shown = history[-max_history:] if order == "chronological" else history[:max_history]
        prompts.append(
            recommendation_prompt([titles.get(i, i) for i in shown], unit=unit, order=order)
        )
    service = service or GenerationService(batch_size=batch_size)
    results = service.generate(adapter, prompts, params=params, label=label)
    texts = [r.text for r in results]
    index = _TitleIndex(train)
    rows: list[tuple[str, int, str, float]] = []
    rates: dict[str, float] = {}
    for user, text in zip(users, texts, strict=True):
        if text is None:
            rates[user] = float("nan")
            continue
        seen = set(histories[user])
        lines = parse_recommendation_lines(text)
        matched = 0
        rank = 0
        for line in lines:
            item = index.match(line)
            if item is None:
                continue
            matched += 1
            if item in seen or rank >= k:
                continue
            seen.add(item)
            rank += 1
            rows.append((user, rank, item, -float(rank)))
        rates[user] = (len(lines) - matched) / len(lines) if lines else float("nan")
    recommendations = pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"])
    raw = pd.DataFrame(
        {
            "user_id": users,
            "prompt": prompts,
            "text": texts,
            "error": [r.error for r in results],
        }
    )
    return GeneratedRecommendations(recommendations, pd.Series(rates, dtype=float), raw)
