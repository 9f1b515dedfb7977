"""Seeded next-token sampling with temperature and top-p, one random stream per prompt.

Each prompt gets its own generator, seeded from ``sha256(seed, prompt)``, that draws one
uniform number per generated token. So a prompt's output depends only on the prompt, the
model and the sampling parameters, not on which other prompts share its batch or in which
order a resumed run meets it (the generation cache relies on that), and the ``huggingface``
and ``onnx`` adapters, which share this sampler, write the same text for the same seed.

Temperature then nucleus (top-p) filtering follow transformers' ``TemperatureLogitsWarper``
and ``TopPLogitsWarper`` (Holtzman et al. 2020, "The Curious Case of Neural Text
Degeneration", Sec. 3.1): keep the smallest set of most likely tokens whose probability
reaches ``top_p``; the tests keep transformers' warpers as the reference. ``temperature == 0``
is greedy decoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["prompt_generators", "sample_next_tokens", "top_p_keep_mask"]


def prompt_generators(prompts: Sequence[str], seed: int) -> list[np.random.Generator]:
    """One generator per prompt, seeded by the call's seed and the prompt's text."""
    generators = []
    for prompt in prompts:
        digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
        generators.append(np.random.default_rng(int.from_bytes(digest[:16], "little")))
    return generators


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    peak = logits.max(axis=-1, keepdims=True)
    shifted = logits - peak
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def top_p_keep_mask(logits: np.ndarray, top_p: float) -> np.ndarray:
    """Boolean mask (same shape) of the tokens nucleus sampling keeps, as transformers'
    ``TopPLogitsWarper`` (ascending sort; drop tokens whose cumulative probability is at most
    ``1 - top_p``; the most likely token always stays)."""
    if top_p >= 1.0:
        return np.ones(logits.shape, dtype=bool)
    order = np.argsort(logits, axis=-1, kind="stable")
    sorted_logits = np.take_along_axis(logits, order, axis=-1)
    probs = np.exp(_log_softmax(sorted_logits))
    cumulative = np.cumsum(probs, axis=-1)
    remove_sorted = cumulative <= (1.0 - top_p)
    remove_sorted[..., -1] = False
    keep = np.ones(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, ~remove_sorted, axis=-1)
    return keep


def sample_next_tokens(
    logits: np.ndarray,
    generators: Sequence[np.random.Generator],
    *,
    temperature: float,
    top_p: float,
) -> np.ndarray:
    """The next token of each row of ``logits`` (n, vocab), drawing one uniform number from
    that row's generator (greedy when ``temperature <= 0``, ties to the lowest id)."""
    scores = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        for generator in generators:
            generator.random()  # keep streams aligned whatever the temperature
        return scores.argmax(axis=-1)
    scores = scores / temperature
    if top_p < 1.0:
        scores = np.where(top_p_keep_mask(scores, top_p), scores, -np.inf)
    probs = np.exp(_log_softmax(scores))
    cumulative = np.cumsum(probs, axis=-1)
    choices = np.empty(len(scores), dtype=np.int64)
    for row, generator in enumerate(generators):
        u = generator.random() * cumulative[row, -1]
        index = int(np.searchsorted(cumulative[row], u, side="right"))
        index = min(index, scores.shape[1] - 1)
        while probs[row, index] == 0.0 and index > 0:  # never land on a filtered token
            index -= 1
        choices[row] = index
    return choices
