"""What the batched attribution engine asks of a model: target log-probabilities of token
sequences, scored in shared padded batches.

An adapter that runs the model in this process (the ``huggingface``, ``tinyrec`` and ``onnx``
adapters) implements :class:`TokenScorer`; the engine then ablates spans at the token level
and never re-tokenizes. Any other adapter with the ``score`` capability (an OpenAI-compatible
endpoint) is scored on ablated texts instead (:mod:`audit_sdk.attribution.engine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["TargetLogprobs", "TokenScorer"]


@dataclass(frozen=True)
class TargetLogprobs:
    """Log-probabilities of one target ``y_1..y_T`` after one prompt ``x``.

    ``in_context[t] = log P(y_t | x, y_<t)``: the usual teacher-forced score.
    ``from_prompt[t] = log P(y_t | x)``: the same token read off the distribution after the
    prompt's last token, i.e. with the answer prefix ``y_<t`` removed (one forward pass gives
    both)."""

    in_context: np.ndarray
    from_prompt: np.ndarray


@runtime_checkable
class TokenScorer(Protocol):
    def score_token_ids(
        self,
        prompts: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int]],
        *,
        max_batch_tokens: int = 8192,
    ) -> list[TargetLogprobs]:
        """One :class:`TargetLogprobs` per (prompt ids, target ids) pair; prompts are given
        complete (special tokens included) and are scored in batches of at most
        ``max_batch_tokens`` padded tokens."""
        ...

    def context_length(self) -> int | None:
        """The most tokens one sequence may have (None: unlimited or unknown)."""
        ...
