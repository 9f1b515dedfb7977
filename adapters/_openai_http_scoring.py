"""Prompt log-probabilities over the OpenAI completions API: ``echo`` + ``logprobs``.

To score a continuation ``c`` after a prompt ``p``, the adapter asks for a completion of the
text ``p + c`` with ``echo: true`` (return the prompt's own tokens), ``logprobs: 0`` (their
log-probabilities), ``max_tokens: 0`` (generate nothing), as vLLM serves it (and
``audit-sdk serve``). The answer's ``choices[0].logprobs`` holds parallel lists
``tokens``, ``token_logprobs`` and ``text_offset`` (each token's first character in the
text); the continuation's tokens are those that start at or after ``len(p)``. With
``return_tokens_as_token_ids`` (a vLLM extension) the tokens read ``token_id:N``.
"""

from __future__ import annotations

from typing import Any

from audit_sdk.errors import AdapterError
from audit_sdk.interfaces import TokenScores

from ._openai_http_errors import _excerpt

__all__ = ["parse_echo_logprobs", "scoring_body"]


def scoring_body(model: str, prompt: str, continuation: str) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt + continuation,
        "echo": True,
        "logprobs": 0,
        "max_tokens": 0,
        "temperature": 0.0,
        "n": 1,
        "stream": False,
        "return_tokens_as_token_ids": True,
    }


def _token_id(token: Any) -> int:
    if isinstance(token, str) and token.startswith("token_id:"):
        tail = token.removeprefix("token_id:")
        if tail.lstrip("-").isdigit():
            return int(tail)
    return -1


def parse_echo_logprobs(
    payload: Any, text: str, url: str, *, prompt: str, continuation: str, index: int
) -> TokenScores:
    """The continuation's :class:`TokenScores` (with character offsets) from an echo answer."""
    where = f"prompt {index + 1}"
    try:
        logprobs = payload["choices"][0]["logprobs"]
    except (KeyError, IndexError, TypeError):
        logprobs = None
    if not isinstance(logprobs, dict) or not logprobs.get("token_logprobs"):
        raise AdapterError(
            f"{url} returned no log-probabilities for {where} (choices[0].logprobs is "
            f"missing or empty): scoring needs a completions endpoint that honours echo and "
            f"logprobs, as vLLM does. Answer: {_excerpt(text)}"
        )
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    offsets = logprobs.get("text_offset") or []
    if not (len(tokens) == len(values) == len(offsets)):
        raise AdapterError(
            f"{url}: for {where}, logprobs.tokens, token_logprobs and text_offset differ in "
            f"length ({len(tokens)}, {len(values)}, {len(offsets)})."
        )
    start, end = len(prompt), len(prompt) + len(continuation)
    ids: list[int] = []
    scores: list[float] = []
    spans: list[tuple[int, int]] = []
    for i, (token, value, offset) in enumerate(zip(tokens, values, offsets, strict=True)):
        following = offsets[i + 1] if i + 1 < len(offsets) else end
        if not isinstance(offset, int) or not isinstance(following, int):
            raise AdapterError(f"{url}: for {where}, logprobs.text_offset holds a non-integer.")
        if offset < start < following:
            raise AdapterError(
                f"{url}: for {where}, one token spans the end of the prompt and the start of "
                f"the continuation (the tokenizer merged them); end the prompt with a "
                f"separator such as a newline."
            )
        if offset < start or offset >= end:
            continue
        if value is None:
            raise AdapterError(f"{url}: for {where}, a continuation token has no logprob.")
        ids.append(_token_id(token))
        scores.append(float(value))
        spans.append((offset - start, min(following, end) - start))
    return TokenScores(ids, scores, spans)
