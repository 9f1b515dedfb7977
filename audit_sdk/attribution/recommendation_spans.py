"""The SDK's recommendation prompt (:mod:`audit_sdk.recommendation_prompts`) with named spans.

``task`` is the header (what to recommend and how the history is ordered, auxiliary) and
``history[i]`` the i-th history line, its title and newline (interaction), oldest or most
played first. The text is exactly :func:`~audit_sdk.recommendation_prompts.
recommendation_prompt`'s, so attributions are of the prompt the audited model is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from audit_sdk.recommendation_prompts import clean_title, recommendation_header

from .spans import PromptTemplate, SpannedPrompt

__all__ = ["RECOMMENDATION_TEMPLATE", "spanned_recommendation_prompt"]

RECOMMENDATION_TEMPLATE = PromptTemplate(
    "{task}{history}",
    roles={"task": "auxiliary", "history": "interaction"},
    name="recommendation prompt",
)


def spanned_recommendation_prompt(
    titles: Sequence[str],
    *,
    unit: Literal["artist", "track"],
    order: Literal["chronological", "plays"],
    prompt_id: str = "prompt",
    group: str | None = None,
    task: str | None = None,
) -> SpannedPrompt:
    """The recommendation prompt of a history given as titles, with its spans.

    ``task`` replaces the header (a variant of the task description, e.g. one that names a
    genre); by default it is the SDK's own header for ``unit`` and ``order``."""
    header = task if task is not None else recommendation_header(unit=unit, order=order)
    lines = [f"{clean_title(title)}\n" for title in titles]
    return RECOMMENDATION_TEMPLATE.fill(
        {"task": header, "history": lines}, prompt_id=prompt_id, group=group
    )
