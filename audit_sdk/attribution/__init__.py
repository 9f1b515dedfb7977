"""Feature-ablation attribution (FAA) of prompts: which named parts of a prompt a model's
output depends on (arXiv 2510.10978).

* :class:`PromptTemplate`, :class:`SpannedPrompt`, :class:`Span`: prompts with named spans;
  :func:`spanned_recommendation_prompt` for the SDK's own recommendation prompt.
* :func:`attribute`: the batched engine, model + prompts + targets -> :class:`AttributionResult`.
* :func:`summarize_attribution`: the auxiliary share and ratio with bootstrap CIs over prompts,
  attribution by history position and per user group.
"""

from __future__ import annotations

from .engine import attribute
from .recommendation_spans import RECOMMENDATION_TEMPLATE, spanned_recommendation_prompt
from .results import PREFIX_SPAN, AttributionResult, PromptAttribution
from .spans import (
    DEFAULT_ROLES,
    AttributionInputError,
    PromptTemplate,
    Span,
    SpannedPrompt,
    SpanRole,
)
from .summary import AttributionSummary, PromptMagnitudes, prompt_magnitudes, summarize_attribution
from .token_positions import span_token_positions
from .token_scoring import TargetLogprobs, TokenScorer

__all__ = [
    "DEFAULT_ROLES",
    "PREFIX_SPAN",
    "RECOMMENDATION_TEMPLATE",
    "AttributionInputError",
    "AttributionResult",
    "AttributionSummary",
    "PromptAttribution",
    "PromptMagnitudes",
    "PromptTemplate",
    "Span",
    "SpanRole",
    "SpannedPrompt",
    "TargetLogprobs",
    "TokenScorer",
    "attribute",
    "prompt_magnitudes",
    "span_token_positions",
    "spanned_recommendation_prompt",
    "summarize_attribution",
]
