"""Reading an OpenAI completion request's fields: the generation parameters and the chat
messages' prompt, each refused with an HTTP 400 naming the field when it is invalid.
"""

from __future__ import annotations

from typing import Any

from audit_sdk.interfaces.adapter import GenerationParams
from audit_sdk.serving.request_limits import (
    HTTPRequestError,
    number_field,
)


def _generation_params(body: dict[str, Any]) -> GenerationParams:
    temperature = number_field(body, "temperature", 0.8)
    top_p = number_field(body, "top_p", 1.0)
    max_tokens = number_field(body, "max_tokens", 96)
    seed = number_field(body, "seed", 0)
    if not 0 <= temperature <= 2 or not 0 < top_p <= 1 or max_tokens < 1:
        raise HTTPRequestError(
            400, "temperature must be in [0, 2], top_p in (0, 1], max_tokens >= 1."
        )
    return GenerationParams(
        temperature=temperature, top_p=top_p, max_new_tokens=int(max_tokens), seed=int(seed)
    )


def _chat_prompt(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise HTTPRequestError(400, "'messages' must be a non-empty list.")
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            raise HTTPRequestError(400, "each message must be an object with 'role' and 'content'.")
        content = message.get("content")
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise HTTPRequestError(400, "each message needs a string 'content'.")
        parts.append(content)
    return "\n\n".join(parts)
