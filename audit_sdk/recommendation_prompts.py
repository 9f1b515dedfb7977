"""The recommendation prompt: a listening history written for an LLM recommender.

Shared by every model that recommends from text: the embedded TinyRec is trained on it, the
adapters that serve a model with an item map rank from it, and generative recommendation
(:mod:`audit_sdk.generative_recommendation`) asks any text model with it.

::

    Recommend the next artist for this listener.
    Listening history, oldest first:
    Radiohead
    Muse
    Coldplay

One item title per line, each followed by a newline, so the next token after the prompt is
the next item's title: with one token per item of the model's item vocabulary, a single
forward pass ranks every item. The header says ``oldest first`` for chronological histories
and nothing about order for histories ordered by plays (datasets without timestamps, where
training shuffles the order). Profile prompts are the SDK's default profile template
(:mod:`audit_sdk.profile_prompts`), unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from audit_sdk.data.tables import Catalog

__all__ = [
    "catalog_unit",
    "clean_title",
    "prompt_history",
    "recommendation_header",
    "recommendation_prompt",
]

_DASH = " — "


def clean_title(value: Any) -> str:
    """A title as prompts print it: whitespace collapsed (no newlines), the em-dash separator
    of profile prompt lines replaced, exactly as :mod:`audit_sdk.profile_prompts` does."""
    return " ".join(str(value).split()).replace(_DASH, " - ")


def catalog_unit(catalog: Catalog) -> Literal["artist", "track"]:
    """``"artist"`` when each artist has one item (artist-level data), else ``"track"``."""
    frame = catalog.frame
    if frame.empty or "artist" not in frame:
        return "track"
    return "artist" if int(frame.groupby("artist", sort=False).size().max()) <= 1 else "track"


def recommendation_header(
    *, unit: Literal["artist", "track"], order: Literal["chronological", "plays"]
) -> str:
    history = (
        "Listening history, oldest first:" if order == "chronological" else "Listening history:"
    )
    return f"Recommend the next {unit} for this listener.\n{history}\n"


def recommendation_prompt(
    titles: Sequence[str],
    *,
    unit: Literal["artist", "track"],
    order: Literal["chronological", "plays"],
) -> str:
    """The prompt for a history given as titles, in history order."""
    lines = "".join(f"{clean_title(title)}\n" for title in titles)
    return recommendation_header(unit=unit, order=order) + lines


def prompt_history(
    history: Sequence[str],
    known_items: Mapping[str, Any],
    *,
    order: Literal["chronological", "plays"],
    max_history: int,
) -> list[str]:
    """The part of a history a prompt shows: items the model has a token for, at most
    ``max_history`` of them, the most recent (chronological) or the most played (plays)."""
    kept = [item for item in history if item in known_items]
    if len(kept) <= max_history:
        return kept
    return kept[-max_history:] if order == "chronological" else kept[:max_history]
