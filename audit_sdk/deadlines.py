"""Overall deadlines: a bound on wall-clock time that no slow peer can stretch.

A per-read timeout does not bound a call: a server that sends one byte every half second
never lets a read time out. :func:`deadline` sets a deadline for the calling thread;
:class:`DeadlineNetworkBackend` is an httpcore network backend whose every read, write and
connect is given at most the time left, and fails once it is spent, so an HTTP call made
under a deadline ends by then, headers included.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "DeadlineExceeded",
    "DeadlineNetworkBackend",
    "deadline",
    "deadline_passed",
    "remaining_s",
]

_local = threading.local()


class DeadlineExceeded(Exception):
    """The calling thread's deadline has passed."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Run the block under a deadline ``seconds`` from now (nested deadlines keep the
    earlier one; ``None`` adds none)."""
    previous: float | None = getattr(_local, "at", None)
    if seconds is not None:
        at = time.monotonic() + max(0.0, seconds)
        _local.at = at if previous is None else min(previous, at)
    try:
        yield
    finally:
        _local.at = previous


def remaining_s() -> float | None:
    """Seconds left before the calling thread's deadline (None: no deadline)."""
    at: float | None = getattr(_local, "at", None)
    return None if at is None else at - time.monotonic()


def deadline_passed() -> bool:
    left = remaining_s()
    return left is not None and left <= 0


def _bounded(timeout: float | None) -> float | None:
    left = remaining_s()
    if left is None:
        return timeout
    if left <= 0:
        raise DeadlineExceeded
    return left if timeout is None else min(timeout, left)


def _network_classes() -> tuple[Any, Any]:
    import httpcore

    return httpcore.NetworkStream, httpcore.SyncBackend


def _timeout_error(kind: str) -> Exception:
    import httpcore

    error = {"read": httpcore.ReadTimeout, "write": httpcore.WriteTimeout}.get(
        kind, httpcore.ConnectTimeout
    )
    return error("the call's overall deadline passed")


class _DeadlineStream:
    """Wraps an httpcore network stream; each operation gets at most the time left."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            bounded = _bounded(timeout)
        except DeadlineExceeded:
            raise _timeout_error("read") from None
        data: bytes = self._inner.read(max_bytes, bounded)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            bounded = _bounded(timeout)
        except DeadlineExceeded:
            raise _timeout_error("write") from None
        self._inner.write(buffer, bounded)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        try:
            bounded = _bounded(timeout)
        except DeadlineExceeded:
            raise _timeout_error("connect") from None
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineNetworkBackend:
    """An httpcore ``NetworkBackend`` (sync) that honours :func:`deadline`."""

    def __init__(self) -> None:
        _, sync_backend = _network_classes()
        self._inner = sync_backend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _DeadlineStream:
        try:
            bounded = _bounded(timeout)
        except DeadlineExceeded:
            raise _timeout_error("connect") from None
        return _DeadlineStream(
            self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _DeadlineStream:
        try:
            bounded = _bounded(timeout)
        except DeadlineExceeded:
            raise _timeout_error("connect") from None
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
