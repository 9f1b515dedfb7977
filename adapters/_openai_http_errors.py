"""How the OpenAI HTTP adapter classifies and describes a failed request: the statuses it
retries, the attempt that may be repeated, the ``Retry-After`` wait, the server's own error
message, a short excerpt of an answer and the URL without credentials.
"""

from __future__ import annotations

import email.utils
import json
import time
from urllib.parse import urlsplit, urlunsplit

_EXCERPT = 160
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _public_url(url: str) -> str:
    """The URL without user:password, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _EXCERPT else flat[:_EXCERPT] + "...")


class _Cancelled(Exception):
    """Another prompt of the same call failed; this one was not finished."""


class _Retryable(Exception):
    """One failed attempt that may succeed if repeated."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


def _connect_reason(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    return text or type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(text: str) -> str:
    """The server's own message where it sent an OpenAI-style error body."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return text
