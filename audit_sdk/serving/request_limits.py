"""Limits that keep ``audit-sdk serve`` bounded against hostile or broken clients.

At most ``MAX_CONNECTIONS`` connections at once (the next gets HTTP 503); bodies of at most
``MAX_BODY_BYTES`` arriving within ``REQUEST_DEADLINE_S``; idle connections closed after
``IDLE_TIMEOUT_S``; JSON that nests deeper than ``MAX_JSON_DEPTH`` or holds a non-finite number
is a 400 (clients retry a 500, so a bad request must never look like a server error).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

__all__ = [
    "IDLE_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_JSON_DEPTH",
    "REQUEST_DEADLINE_S",
    "BoundedHTTPServer",
    "HTTPRequestError",
    "finite_float",
    "json_depth_exceeds",
    "number_field",
    "reject_constant",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_CONNECTIONS = 64
IDLE_TIMEOUT_S = 30.0
REQUEST_DEADLINE_S = 60.0


class HTTPRequestError(Exception):
    """A request the server answers with ``status`` and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading server that serves at most ``MAX_CONNECTIONS`` connections at once."""

    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                body = b'{"error": {"message": "too many connections", "type": "server_busy", "code": 503}}'
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or stalls is routine: log it, print no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("connection from %s ended: %r", client_address, error)
        else:
            logger.exception("request from %s failed", client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def number_field(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HTTPRequestError(400, f"{name!r} must be a number, not {type(value).__name__}.")
    try:
        number = float(value)
    except OverflowError:
        raise HTTPRequestError(400, f"{name!r} is too large.") from None
    if not math.isfinite(number):
        raise HTTPRequestError(400, f"{name!r} must be a finite number.")
    return number


def reject_constant(name: str) -> Any:
    raise HTTPRequestError(400, f"the request body holds {name}, which is not a JSON number.")


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise HTTPRequestError(400, f"the number {text[:40]} is out of range.")
    return value


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit`` (strings skipped); linear, no recursion."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
