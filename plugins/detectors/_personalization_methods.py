"""How the personalization detector gets a ranking of each group's users.

* **Scorers** (no model call, :mod:`._personalization_scorers`): one score per member, higher
  meaning the user likes the item more relative to their own mean; ranked directly.
* **LLM methods** (PerRecBench, arXiv 2501.13391, Sec. 3.3), through the audit's generation
  service: ``pointwise`` (each member's rating, ranked by prediction minus the user's mean),
  ``pairwise`` (every pair asked in both orders; a pair counts for the user both answers
  prefer, else it is a tie; users ranked by wins, a Copeland count, which is what sorting with
  that comparator gives when the answers are transitive and stays defined when they are not)
  and ``listwise`` (one best-first ranking per group).

Each method returns a :class:`MethodRun`: one row per (group, user) with ``predicted`` (NaN
where the group's answers could not be used) and, for pointwise, ``rating_predicted``, plus
counts of prompts, malformed answers, generation errors and (pairwise) disagreeing orders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ._personalization_prompts import (
    LABELS,
    MemberContext,
    listwise_prompt,
    pairwise_prompt,
    parse_preferred,
    parse_ranking,
    parse_rating,
    pointwise_prompt,
)
from ._personalization_scorers import builtin_rating, resolve_scorer

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset
    from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
    from audit_sdk.services import GeneratedText, GenerationService

    from ._personalization_groups import PersonalizationGroups

__all__ = [
    "LLM_METHODS",
    "LLMMethod",
    "MethodRun",
    "PromptContext",
    "answer_budget",
    "base_frame",
    "run_llm_method",
    "run_scorer",
]

LLMMethod = Literal["pointwise", "pairwise", "listwise"]
LLM_METHODS: tuple[LLMMethod, ...] = ("pointwise", "pairwise", "listwise")
PromptContext = tuple[dict[tuple[str, str], MemberContext], dict[str, str]]
"""each (group, user)'s context and each query item's text (:func:`member_contexts`)"""


@dataclass(frozen=True)
class MethodRun:
    name: str
    predictions: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    """a few malformed answers, to show in the report"""
    seconds: float = 0.0
    """wall time of the method (prompting, generation and parsing; the scorer's call)"""
    kind: str = ""
    """how the report labels it (reference, audited, recommender, logged); empty: by caller"""
    unrankable: str | None = None
    """why this model could not be ranked at all (then no prediction is usable)"""
    cpu_seconds: float = 0.0
    """CPU time of this process over the method, all threads (load-independent, unlike the
    wall time on a shared machine)"""


def _queries(groups: PersonalizationGroups) -> pd.DataFrame:
    return groups.members[
        ["group_id", "user_id", "item_id", "timestamp", "user_mean", "history_n"]
    ].reset_index(drop=True)


def base_frame(groups: PersonalizationGroups) -> pd.DataFrame:
    """One row per (group, user) with the truth: what every method's predictions extend."""
    return groups.members[
        ["group_id", "difficulty", "size", "user_id", "item_id", "rating", "user_mean", "relative"]
    ].reset_index(drop=True)


def run_scorer(
    name: str, groups: PersonalizationGroups, dataset: Dataset, rng: np.random.Generator
) -> MethodRun:
    frame = base_frame(groups)
    scorer = resolve_scorer(name)
    queries = _queries(groups)
    if scorer is None:
        scores = rng.standard_normal(len(frame))
    else:
        scores = np.asarray(scorer(queries, dataset), dtype=float)
        if scores.shape != (len(frame),):
            raise ValueError(
                f"detector 'personalization': scorer {name!r} returned {scores.shape} scores "
                f"for {len(frame)} queries; return one score per row"
            )
    frame["predicted"] = scores
    ratings = builtin_rating(name, queries, scores, dataset)
    if ratings is not None:
        frame["rating_predicted"] = ratings
    bad = ~np.isfinite(scores)
    return MethodRun(name, frame, {"queries": len(frame), "missing_scores": int(bad.sum())})


def answer_budget(
    method: LLMMethod, size: int, adapter: GeneratorAdapter, *, slack: int = 4
) -> int:
    """New tokens a valid answer needs: the longest valid JSON answer of ``method`` for a group
    of ``size`` users, in the adapter's own tokens where it can ``tokenize`` (else two
    characters a token, a generous estimate for BPE vocabularies), plus ``slack``. Capping
    generation here matters for speed: a model that never closes its JSON (TinyRec) otherwise
    decodes to ``max_new_tokens`` on every prompt, and anything longer cannot parse anyway
    beyond the prose the parsers skip."""
    text = _LONGEST_ANSWER[method](size)
    if adapter.supports("tokenize"):
        try:
            return len(adapter.tokenize([text])[0].token_ids) + slack
        except Exception:  # a tokenizer that fails here still generates; estimate instead
            pass
    return len(text) // 2 + slack


_LONGEST_ANSWER = {
    "pointwise": lambda size: '{"rating": 4.5}',
    "pairwise": lambda size: '{"preferred": "A"}',
    "listwise": lambda size: json.dumps({"ranking": list(LABELS[:size])}),
}


class _Answers:
    """Prompts of one method with each one's token budget, generated in one batched service
    call per budget (the service deduplicates identical prompts, e.g. a member's pointwise
    prompt shared by the groups of several sizes drawn from one window, and caches them)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.budgets: list[int] = []

    def add(self, prompt: str, budget: int) -> int:
        self.prompts.append(prompt)
        self.budgets.append(budget)
        return len(self.prompts) - 1

    def generate(
        self,
        service: GenerationService,
        adapter: GeneratorAdapter,
        params: GenerationParams,
        label: str,
    ) -> list[GeneratedText]:
        out: list[GeneratedText | None] = [None] * len(self.prompts)
        budgets = np.asarray(self.budgets, dtype=np.int64)
        for budget in np.unique(budgets):
            index = np.flatnonzero(budgets == budget)
            capped = replace(params, max_new_tokens=min(int(budget), params.max_new_tokens))
            texts = service.generate(
                adapter, [self.prompts[i] for i in index], params=capped, label=label
            )
            for i, text in zip(index, texts, strict=True):
                out[i] = text
        return [o for o in out if o is not None]


def run_llm_method(
    method: LLMMethod,
    groups: PersonalizationGroups,
    prompt_context: PromptContext,
    *,
    service: GenerationService,
    adapter: GeneratorAdapter,
    params: GenerationParams,
    label: str,
    scale: tuple[float, float] = (1.0, 5.0),
    cap_to_answer: bool = True,
) -> MethodRun:
    """Prompts every group with ``method`` and parses the answers. ``cap_to_answer``: generate
    at most :func:`answer_budget` new tokens per prompt (never more than
    ``params.max_new_tokens``)."""
    frame = base_frame(groups)
    budgets: dict[int, int] = {}

    def budget(size: int) -> int:
        if size not in budgets:
            budgets[size] = (
                answer_budget(method, size, adapter) if cap_to_answer else params.max_new_tokens
            )
        return budgets[size]

    contexts, item_texts = prompt_context
    answers = _Answers()
    by_group = list(frame.groupby("group_id", sort=False).indices.items())
    plan: list[Any] = []
    for group_id, rows in by_group:
        users = frame["user_id"].to_numpy()[rows]
        item = str(frame["item_id"].iat[rows[0]])
        members: list[MemberContext] = [contexts[(group_id, u)] for u in users]
        text = item_texts[item]
        if method == "pointwise":
            plan.append(
                [answers.add(pointwise_prompt(m, item, text, scale), budget(1)) for m in members]
            )
        elif method == "pairwise":
            pairs = []
            for i in range(len(members)):
                for j in range(i + 1, len(members)):
                    ij = answers.add(pairwise_prompt(members[i], members[j], item, text), budget(2))
                    ji = answers.add(pairwise_prompt(members[j], members[i], item, text), budget(2))
                    pairs.append((i, j, ij, ji))
            plan.append(pairs)
        else:
            plan.append(answers.add(listwise_prompt(members, item, text), budget(len(members))))
    outcomes = answers.generate(service, adapter, params, f"{label}:{method}")
    counts = {
        "prompts": len(answers.prompts),
        "errors": sum(o.text is None for o in outcomes),
        "malformed": 0,
        "groups_unusable": 0,
        "unique_prompts": len(set(answers.prompts)),
        "max_new_tokens": min(max(budgets.values(), default=0), params.max_new_tokens),
    }
    examples: list[str] = []

    def malformed(text: str | None) -> None:
        if text is not None:
            counts["malformed"] += 1
            if len(examples) < 3:
                examples.append(text[:200])

    predicted = np.full(len(frame), np.nan)
    rating_predicted = np.full(len(frame), np.nan)
    if method == "pairwise":
        counts["pairs_disagreeing"] = 0
    for (_, rows), entry in zip(by_group, plan, strict=True):
        ok = True
        if method == "pointwise":
            for row, index in zip(rows, entry, strict=True):
                rating = parse_rating(outcomes[index].text, low=scale[0], high=scale[1])
                if rating is None:
                    malformed(outcomes[index].text)
                    ok = False
                rating_predicted[row] = np.nan if rating is None else rating
            if ok:
                predicted[rows] = rating_predicted[rows] - frame["user_mean"].to_numpy()[rows]
        elif method == "pairwise":
            wins = np.zeros(len(rows))
            for i, j, ij, ji in entry:
                first = parse_preferred(outcomes[ij].text)
                second = parse_preferred(outcomes[ji].text)
                if first is None:
                    malformed(outcomes[ij].text)
                if second is None:
                    malformed(outcomes[ji].text)
                if first is None or second is None:
                    ok = False
                    continue
                # In the second prompt the labels are swapped: "A" there is user j.
                winner_first = i if first == "A" else j
                winner_second = j if second == "A" else i
                if winner_first == winner_second:
                    wins[winner_first] += 1
                else:
                    counts["pairs_disagreeing"] += 1
            if ok:
                predicted[rows] = wins
        else:
            order = parse_ranking(outcomes[entry].text, LABELS[: len(rows)])
            if order is None:
                malformed(outcomes[entry].text)
                ok = False
            else:
                position = {label: p for p, label in enumerate(order)}
                predicted[rows] = [len(rows) - position[LABELS[i]] for i in range(len(rows))]
        if not ok:
            counts["groups_unusable"] += 1
    frame["predicted"] = predicted
    if method == "pointwise":
        frame["rating_predicted"] = rating_predicted
    return MethodRun(f"{method}", frame, counts, examples)
