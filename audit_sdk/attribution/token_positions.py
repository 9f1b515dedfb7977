"""Spans of characters to token positions, through the tokenizer's offsets.

A token belongs to the span it overlaps most (ties: the earlier span); tokens with an empty
character range (special tokens such as ``<|bos|>``) belong to none. A span that no token
belongs to "tokenizes to nothing" and cannot be ablated: that is an error naming the prompt
and the span.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit_sdk.interfaces import Tokenization

from .spans import AttributionInputError, SpannedPrompt

__all__ = ["span_token_positions"]


def span_token_positions(
    prompt: SpannedPrompt, tokenization: Tokenization, *, spans: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """For each span (all, or those named), the sorted token positions it covers."""
    names = [s.name for s in prompt.spans] if spans is None else list(spans)
    chosen = [prompt.span(name) for name in names]
    if not chosen:
        return {}
    if len(tokenization.offsets) != len(tokenization.token_ids):
        raise AttributionInputError(
            f"prompt {prompt.prompt_id!r}: the tokenizer gave no character offsets, so spans "
            f"cannot be mapped to tokens (use an adapter whose tokenize returns offsets)."
        )
    offsets = np.asarray(tokenization.offsets, dtype=np.int64).reshape(-1, 2)
    bounds = np.asarray([(s.start, s.end) for s in chosen], dtype=np.int64).reshape(-1, 2)
    overlap = np.minimum(offsets[:, None, 1], bounds[None, :, 1]) - np.maximum(
        offsets[:, None, 0], bounds[None, :, 0]
    )
    overlap[offsets[:, 1] <= offsets[:, 0]] = 0
    owner = np.where(overlap.max(axis=1, initial=0) > 0, overlap.argmax(axis=1), -1)
    out: dict[str, np.ndarray] = {}
    for index, span in enumerate(chosen):
        positions = np.flatnonzero(owner == index)
        if len(positions) == 0:
            text = prompt.text[span.start : span.end]
            raise AttributionInputError(
                f"prompt {prompt.prompt_id!r}, span {span.name!r} ({text!r}) tokenizes to "
                f"nothing: no token of the prompt lies in it. Give the span some text, or "
                f"leave it out of the template."
            )
        out[span.name] = positions
    return out
