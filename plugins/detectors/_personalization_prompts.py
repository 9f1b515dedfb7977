"""User context, prompts and answer parsing for the personalization detector's LLM methods.

User context (PerRecBench, arXiv 2501.13391, Sec. 3.2): the ``k`` items of a user's earlier
history most relevant to the query item by BM25 (Robertson & Zaragoza 2009, Eq. 3.30;
``rank_bm25.BM25Okapi`` over the history's item texts, title + artist + genres, the query
item's text as the query; ties go to the more recent item), each with the user's rating
relative to their mean.

Three prompt kinds: pointwise (predict one user's rating, JSON ``{"rating": x}``), pairwise
(which of users A and B likes the item more relative to their own mean, JSON
``{"preferred": "A"}``) and listwise (order all users, JSON ``{"ranking": ["B", "A", ...]}``).
Parsers accept the JSON anywhere in the answer (code fences, prose around it), then a few
plain spellings (``rating: 4``, ``preferred: B``, ``B > A > C``); anything else is
``None``: malformed, counted by the caller.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "LABELS",
    "MemberContext",
    "listwise_prompt",
    "member_contexts",
    "pairwise_prompt",
    "parse_preferred",
    "parse_ranking",
    "parse_rating",
    "pointwise_prompt",
    "with_profiles",
]

LABELS = "ABCDEFGH"
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class MemberContext:
    """One group member as a prompt shows them."""

    user_id: str
    user_mean: float
    history: tuple[tuple[str, float], ...]
    """(item text, rating relative to the user's mean), most relevant first"""
    profile: str | None = None
    """the user's taste profile from the profile pipeline, when the detector is asked to show
    it (:func:`with_profiles`)"""


def _item_texts(catalog: pd.DataFrame) -> pd.Series:
    def text(row: Any) -> str:
        genres = ", ".join(row.genres) if len(row.genres) else "unknown genre"
        return f"{row.title} by {row.artist} ({genres})"

    frame = catalog.reindex(columns=["title", "artist", "genres"])
    frame["title"] = frame["title"].fillna(pd.Series(frame.index, index=frame.index))
    frame["artist"] = frame["artist"].fillna("unknown artist")
    frame["genres"] = frame["genres"].map(
        lambda g: tuple(g) if isinstance(g, (list, tuple)) else ()
    )
    return pd.Series([text(r) for r in frame.itertuples()], index=frame.index, dtype=object)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def member_contexts(
    members: pd.DataFrame, timelines: pd.DataFrame, catalog: pd.DataFrame, *, k: int
) -> tuple[dict[tuple[str, str], MemberContext], dict[str, str]]:
    """Each (group, user)'s context, and each query item's text."""
    from rank_bm25 import BM25Okapi

    texts = _item_texts(catalog)

    def text_of(item: str) -> str:
        return str(texts.get(item, item))

    ordered = timelines.reset_index(drop=True)
    item_ids = ordered["item_id"].to_numpy(dtype=object)
    times = pd.to_datetime(ordered["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
    ratings = ordered["rating"].to_numpy(dtype=float)
    by_user = ordered.groupby("user_id", sort=False).indices
    member_times = pd.to_datetime(members["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
    contexts: dict[tuple[str, str], MemberContext] = {}
    for row, t in zip(members.itertuples(index=False), member_times, strict=True):
        positions = np.asarray(by_user[row.user_id])
        earlier = positions[times[positions] < t][::-1]  # most recent first
        items = item_ids[earlier]
        relative = ratings[earlier] - row.user_mean
        docs = [text_of(i) for i in items]
        if len(docs) > k:
            scores = BM25Okapi([_tokens(d) for d in docs]).get_scores(_tokens(text_of(row.item_id)))
            top = np.argsort(-np.asarray(scores), kind="stable")[:k]
        else:
            top = np.arange(len(docs))
        contexts[(row.group_id, row.user_id)] = MemberContext(
            str(row.user_id),
            float(row.user_mean),
            tuple((docs[i], float(relative[i])) for i in top),
        )
    queries = {str(i): text_of(i) for i in members["item_id"].unique()}
    return contexts, queries


PROFILE_CHARS = 400
"""a profile is cut to this many characters in a prompt"""


def with_profiles(
    contexts: dict[tuple[str, str], MemberContext], profiles: pd.DataFrame | None
) -> tuple[dict[tuple[str, str], MemberContext], int]:
    """``contexts`` with each member's profile text (the user's last profile row in
    ``profiles``: ``user_id, text``, as the profile pipeline writes them), and how many
    members got one. A profile summarises the user's whole sampled history, which may
    include listening after the query rating: the prompt says it is a profile, not history."""
    if profiles is None or profiles.empty or not {"user_id", "text"} <= set(profiles):
        return contexts, 0
    usable = profiles[profiles["text"].notna()]
    last = usable.drop_duplicates("user_id", keep="last").set_index("user_id")["text"]
    out, found = {}, 0
    for key, member in contexts.items():
        text = last.get(member.user_id)
        if isinstance(text, str) and text.strip():
            found += 1
            member = replace(member, profile=" ".join(text.split())[:PROFILE_CHARS])
        out[key] = member
    return out, found


def _history_lines(member: MemberContext) -> str:
    lines = (
        "\n".join(f"- {text}: {rel:+.2f}" for text, rel in member.history)
        if member.history
        else "- (no related items)"
    )
    if member.profile:
        lines += f"\n  taste profile: {member.profile}"
    return lines


def _query_line(item_id: str, text: str) -> str:
    return f"query item (id {item_id}): {text}"


def pointwise_prompt(
    member: MemberContext, item_id: str, item_text: str, scale: tuple[float, float] = (1, 5)
) -> str:
    low, high = scale
    return (
        f"You predict how a user rates an item on a {low:g}-{high:g} scale.\n"
        f"user id: {member.user_id}\n"
        f"The user's mean rating is {member.user_mean:.3f}. Items from their history most "
        "related to the query, with the user's rating relative to that mean:\n"
        f"{_history_lines(member)}\n"
        f"{_query_line(item_id, item_text)}\n"
        f'Answer with JSON only: {{"rating": <a number from {low:g} to {high:g}>}}'
    )


def _blocks(members: list[MemberContext]) -> str:
    return "\n".join(
        f"[{LABELS[i]}] user {m.user_id} (mean rating {m.user_mean:.3f}); related history, "
        f"rating relative to the mean:\n{_history_lines(m)}"
        for i, m in enumerate(members)
    )


def pairwise_prompt(first: MemberContext, second: MemberContext, item_id: str, text: str) -> str:
    return (
        "Two users rated the same item. Which of them likes it more, relative to their own "
        "mean rating?\n"
        f"{_query_line(item_id, text)}\n"
        f"{_blocks([first, second])}\n"
        'Answer with JSON only: {"preferred": "A"} or {"preferred": "B"}'
    )


def listwise_prompt(members: list[MemberContext], item_id: str, text: str) -> str:
    labels = ", ".join(f'"{LABELS[i]}"' for i in range(len(members)))
    return (
        f"{len(members)} users rated the same item. Order them from the one who likes it most "
        "to the one who likes it least, relative to each user's own mean rating.\n"
        f"{_query_line(item_id, text)}\n"
        f"{_blocks(members)}\n"
        f'Answer with JSON only: {{"ranking": [...]}} listing each of {labels} once, best first'
    )


# -- parsing ------------------------------------------------------------------------------
_OBJECT = re.compile(r"\{[^{}]*\}", re.S)


def _json_field(text: str, key: str) -> Any:
    for match in _OBJECT.finditer(text):
        try:
            value = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            for name, item in value.items():
                if str(name).strip().lower() == key:
                    return item
    return None


_RATING = re.compile(r"rating\W{0,3}[:=]\s*\"?(-?\d+(?:\.\d+)?)", re.I)
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*5)?\s*\.?\s*$")


def parse_rating(text: str | None, *, low: float = 1.0, high: float = 5.0) -> float | None:
    """A rating in [low, high], or None."""
    if text is None:
        return None
    value: Any = _json_field(text, "rating")
    if value is None:
        match = _RATING.search(text) or _NUMBER.match(text)
        value = match.group(1) if match else None
    try:
        rating = float(value)
    except (TypeError, ValueError):
        return None
    return rating if np.isfinite(rating) and low <= rating <= high else None


_PREFERRED = re.compile(r"preferred\W{0,3}[:=]\s*\"?\[?([A-H])\b", re.I)


def parse_preferred(text: str | None, labels: str = "AB") -> str | None:
    """``"A"`` or ``"B"`` (any of ``labels``), or None."""
    if text is None:
        return None
    value: Any = _json_field(text, "preferred")
    if value is None:
        match = _PREFERRED.search(text)
        value = match.group(1) if match else text.strip().strip(".\"'")
    label = str(value).strip().strip("[]\"' ").upper()
    return label if len(label) == 1 and label in labels else None


_CHAIN = re.compile(r"\b([A-H])(?:\s*>\s*([A-H])\b)+")


def parse_ranking(text: str | None, labels: str) -> list[str] | None:
    """A best-first permutation of ``labels``, or None."""
    if text is None:
        return None
    value: Any = _json_field(text, "ranking")
    if isinstance(value, list):
        order = [str(v).strip().strip("[]\"' ").upper() for v in value]
    else:
        match = _CHAIN.search(text)
        order = re.findall(r"[A-H]", match.group(0)) if match else []
    return order if sorted(order) == sorted(labels) else None
