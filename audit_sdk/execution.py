"""The execution seam: every plugin call and every batch of model calls runs through an
:class:`Executor`.

An executor takes :class:`Task` values (a zero-argument callable, the phase, the plugin's name,
a time limit) and returns one :class:`~audit_sdk.plugin_calls.CallRecord` per task, in order:
the result, or the exception, traceback and duration. :class:`LocalExecutor`, today's only
backend, runs each task isolated in this process (``plugin_calls.call_isolated``). A
distributed backend is another implementation of :meth:`Executor.run`: tasks carry their own
seeds through the (picklable) audit context, so the report is the same on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from audit_sdk.config import ExecutionConfig
from audit_sdk.plugin_calls import CallRecord, call_isolated

__all__ = ["Executor", "LocalExecutor", "Task", "executor_for"]


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn()`` for ``plugin`` during ``phase`` (detect, mitigate, generate)."""

    fn: Callable[[], Any]
    phase: str
    plugin: str
    timeout_s: float | None = None


class Executor(ABC):
    """Runs tasks and returns their records in the order given."""

    name: str = "executor"

    @abstractmethod
    def run(self, tasks: Sequence[Task]) -> list[CallRecord[Any]]:
        """Run every task; a task that raises or times out gives a failed record, never an
        exception here."""

    def run_one(self, task: Task) -> CallRecord[Any]:
        return self.run([task])[0]


class LocalExecutor(Executor):
    """Each task in turn, in this process, isolated with its time limit."""

    name = "local"

    def run(self, tasks: Sequence[Task]) -> list[CallRecord[Any]]:
        return [
            call_isolated(t.fn, phase=t.phase, plugin=t.plugin, timeout_s=t.timeout_s)
            for t in tasks
        ]


def executor_for(config: ExecutionConfig) -> Executor:
    """The executor an audit's ``execution:`` section asks for."""
    if config.backend == "local":
        return LocalExecutor()
    raise ValueError(f"unknown execution backend {config.backend!r}")  # pragma: no cover
