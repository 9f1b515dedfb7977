"""``echo`` + ``logprobs`` on the completions API: each prompt token's log-probability.

For a prompt the served adapter tokenizes (with character offsets) into ``t_0..t_n``, the
answer's ``choices[i].logprobs`` lists every token with ``log P(t_j | t_<j)`` (None for the
first, which nothing predicts) and its first character, the legacy OpenAI / vLLM format::

    {"tokens": [...], "token_logprobs": [null, -3.2, ...], "text_offset": [0, 0, 9, ...],
     "top_logprobs": null}

Tokens are their text, or ``token_id:N`` when the request sets ``return_tokens_as_token_ids``
(as vLLM). Needs an adapter that scores token ids in-process (the attribution engine's
:class:`~audit_sdk.attribution.TokenScorer`: ``huggingface``, ``tinyrec``, ``onnx``).
"""

from __future__ import annotations

from typing import Any

from audit_sdk.attribution.token_scoring import TokenScorer
from audit_sdk.interfaces.adapter import GeneratorAdapter
from audit_sdk.serving.request_limits import HTTPRequestError

__all__ = ["can_echo_logprobs", "prompt_logprobs"]


def can_echo_logprobs(adapter: GeneratorAdapter) -> bool:
    return isinstance(adapter, TokenScorer) and adapter.supports("tokenize")


def prompt_logprobs(
    adapter: GeneratorAdapter, prompts: list[str], *, token_ids: bool
) -> list[dict[str, Any]]:
    """The ``logprobs`` object of each prompt, echoed."""
    if not can_echo_logprobs(adapter):
        raise HTTPRequestError(
            400,
            f"the served adapter {adapter.name!r} cannot score prompt tokens, so echo with "
            f"logprobs is not available; serve a huggingface, tinyrec or onnx model.",
        )
    assert isinstance(adapter, TokenScorer)
    tokenized = adapter.tokenize(prompts) if prompts else []
    for index, tokens in enumerate(tokenized):
        if len(tokens.token_ids) < 2:
            raise HTTPRequestError(400, f"prompt {index + 1} has fewer than two tokens to score.")
    context = adapter.context_length()
    for index, tokens in enumerate(tokenized):
        if context is not None and len(tokens.token_ids) > context:
            raise HTTPRequestError(
                400,
                f"prompt {index + 1} has {len(tokens.token_ids)} tokens; the model's context "
                f"is {context}.",
            )
    scores = adapter.score_token_ids(
        [t.token_ids[:1] for t in tokenized], [t.token_ids[1:] for t in tokenized]
    )
    out = []
    for prompt, tokens, score in zip(prompts, tokenized, scores, strict=True):
        if token_ids:
            names = [f"token_id:{t}" for t in tokens.token_ids]
        else:
            names = [prompt[a:b] for a, b in tokens.offsets]
        out.append(
            {
                "tokens": names,
                "token_logprobs": [None, *(float(v) for v in score.in_context)],
                "text_offset": [int(a) for a, _ in tokens.offsets],
                "top_logprobs": None,
            }
        )
    return out
