"""What feature-ablation attribution measured: per prompt, per target token, per span.

Attribution of span ``s`` to target token ``y_t`` (arXiv 2510.10978, feature-ablation
attribution of the recommendation prompt; Zeiler & Fergus 2014 occlusion)::

    A_s(t) = log P(y_t | x, y_<t) - log P(y_t | x \\ s, y_<t)

the drop in the token's log-probability when the span is ablated (removed, or replaced by a
baseline). The answer prefix is its own auxiliary group::

    A_prefix(t) = log P(y_t | x, y_<t) - log P(y_t | x)

(zero for the first token, which has no prefix). captum's ``FeatureAblation`` over a
``TextTemplateInput`` gives the same ``A_s(t)`` as its ``token_attr`` (tested to 1e-4); it
cannot ablate the generated prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .spans import SpannedPrompt, SpanRole

__all__ = ["PREFIX_SPAN", "AttributionResult", "PromptAttribution"]

PREFIX_SPAN = "answer_prefix(y<t)"
"""The name the generated answer prefix has among a prompt's attributions."""


@dataclass(frozen=True)
class PromptAttribution:
    """One prompt's attributions to one target.

    ``full[t] = log P(y_t | x, y_<t)``; ``ablated[t, j]`` the same with span ``j`` ablated;
    ``prefix_ablated[t] = log P(y_t | x)``, or None when the adapter cannot give it."""

    prompt: SpannedPrompt
    target: str
    target_token_ids: tuple[int, ...]
    span_names: tuple[str, ...]
    full: np.ndarray
    ablated: np.ndarray
    prefix_ablated: np.ndarray | None

    @property
    def prompt_id(self) -> str:
        return self.prompt.prompt_id

    @property
    def group(self) -> str | None:
        return self.prompt.group

    @property
    def span_roles(self) -> tuple[SpanRole, ...]:
        return tuple(self.prompt.span(name).role for name in self.span_names)

    @property
    def token_attributions(self) -> np.ndarray:
        """``A_s(t)``: (target tokens, spans)."""
        return self.full[:, None] - self.ablated

    @property
    def prefix_attributions(self) -> np.ndarray | None:
        """``A_prefix(t)``: (target tokens,), or None."""
        if self.prefix_ablated is None:
            return None
        return self.full - self.prefix_ablated

    def span_attributions(self) -> dict[str, float]:
        """Each span's attribution summed over the target's tokens (captum's ``seq_attr``),
        with the answer prefix under :data:`PREFIX_SPAN` when known."""
        totals = self.token_attributions.sum(axis=0)
        out = {name: float(v) for name, v in zip(self.span_names, totals, strict=True)}
        prefix = self.prefix_attributions
        if prefix is not None:
            out[PREFIX_SPAN] = float(prefix.sum())
        return out


@dataclass(frozen=True)
class AttributionResult:
    """Attributions of many prompts, in the order given, and how they were made."""

    prompts: tuple[PromptAttribution, ...]
    baseline: str | None
    engine: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.prompts)

    def target_logprobs(self) -> np.ndarray:
        """``log P(target | prompt)`` of each prompt (sum over the target's tokens)."""
        return np.array([p.full.sum() for p in self.prompts])

    def ablated_target_logprobs(self, span: str) -> np.ndarray:
        """``log P(target | prompt without span)`` of each prompt; a prompt without that
        span gives NaN."""
        out = np.full(len(self.prompts), np.nan)
        for i, p in enumerate(self.prompts):
            if span in p.span_names:
                out[i] = p.ablated[:, p.span_names.index(span)].sum()
        return out

    def by_field(
        self, prompts: Sequence[PromptAttribution] | None = None
    ) -> list[dict[str, float]]:
        """Per prompt, attribution summed over the target's tokens and over the spans of each
        template field (``history[0..n]`` -> ``history``), plus the answer prefix."""
        rows: list[dict[str, float]] = []
        for p in prompts if prompts is not None else self.prompts:
            row: dict[str, float] = {}
            for name, value in p.span_attributions().items():
                key = PREFIX_SPAN if name == PREFIX_SPAN else p.prompt.span(name).field
                row[key] = row.get(key, 0.0) + value
            rows.append(row)
        return rows
