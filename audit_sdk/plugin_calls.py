"""Calling plugin code in isolation: results or exceptions captured as records.

Like pytest's ``CallInfo.from_call``: a detector that raises, or runs past its time limit,
becomes a record the runner turns into an ``error`` finding; the audit goes on.

Time limits run the call in a daemon thread. Python cannot kill a thread, so a call that
times out is abandoned: it stops mattering to the audit, and ends with the process.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CallRecord", "PluginTimeoutError", "call_isolated"]

T = TypeVar("T")


class PluginTimeoutError(Exception):
    """A plugin call ran past its time limit."""


@dataclass
class CallRecord(Generic[T]):
    phase: str
    plugin: str
    result: T | None
    error: BaseException | None
    traceback: str | None
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe_error(self) -> str:
        if self.error is None:
            return ""
        if isinstance(self.error, PluginTimeoutError):
            return str(self.error)
        return f"{type(self.error).__name__}: {self.error}"


def call_isolated(
    fn: Callable[[], T], *, phase: str, plugin: str, timeout_s: float | None = None
) -> CallRecord[T]:
    """Run ``fn``; capture its result, or its exception and traceback, and its duration."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
            box["traceback"] = traceback.format_exc()

    start = time.perf_counter()
    if timeout_s is None:
        target()
    else:
        thread = threading.Thread(target=target, name=f"audit-sdk:{phase}:{plugin}", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            return CallRecord(
                phase=phase,
                plugin=plugin,
                result=None,
                error=PluginTimeoutError(
                    f"{phase} of {plugin!r} ran past its time limit of {timeout_s:g} s and was "
                    f"abandoned (raise timeout_s in the config if it needs longer)"
                ),
                traceback=None,
                duration_s=time.perf_counter() - start,
            )
    duration = time.perf_counter() - start
    error = box.get("error")
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise error
    return CallRecord(
        phase=phase,
        plugin=plugin,
        result=box.get("result"),  # type: ignore[arg-type]
        error=error if isinstance(error, BaseException) else None,
        traceback=box.get("traceback"),  # type: ignore[arg-type]
        duration_s=duration,
    )
