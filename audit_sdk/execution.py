"""The execution seam: every plugin call and every batch of model calls runs through an
:class:`Executor`.

Two kinds of work go through it:

* :class:`Task` values (a zero-argument callable, the phase, the plugin's name, a time limit):
  plugin calls (detect, mitigate). :meth:`Executor.run` returns one
  :class:`~audit_sdk.plugin_calls.CallRecord` per task, in order. Every backend runs them in
  the driver (this process), isolated with ``plugin_calls.call_isolated``: a detector sees the
  whole audit context.
* :class:`Shard` values: embarrassingly parallel work cut by user (a batch of prompts) or by
  task (one treatment's cross-fitted nuisance models). A shard is a picklable module-level
  function and its payload, plus an optional :class:`WorkerResource` (a model) that a worker
  loads once and keeps for every later shard. :meth:`Executor.map_shards` runs them: in turn
  here for ``local``; on a pool of processes for ``process``
  (:mod:`audit_sdk.execution_process`); on Ray actors for ``ray``
  (:mod:`audit_sdk.execution_ray`). Each finished shard is handed to ``on_result`` as soon as
  it is back (the generation service stores it in the SQLite cache then), and a shard whose
  worker died is retried on another.

Shards are cut the same way whatever the backend and the number of workers, and whatever seed
a shard uses is derived from the audit's seed and the shard's own content (the per-prompt
sampler seeds of ``adapters/token_sampling.py``, a treatment's fold plan), never from the
worker or the order of completion: the report is the same on every backend.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from audit_sdk.config import ExecutionConfig
from audit_sdk.plugin_calls import CallRecord, call_isolated

__all__ = [
    "Executor",
    "LocalExecutor",
    "ResultCallback",
    "Shard",
    "Task",
    "WorkerResource",
    "current_executor",
    "default_workers",
    "executor_for",
    "run_shard",
    "run_shard_in_worker",
    "use_executor",
]


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn()`` for ``plugin`` during ``phase`` (detect, mitigate, generate)."""

    fn: Callable[[], Any]
    phase: str
    plugin: str
    timeout_s: float | None = None


class WorkerResource(ABC):
    """Something a worker loads once and keeps (a model): ``key`` names it among the worker's
    resources; :meth:`load` makes it in the worker. In the process that made it, ``live``
    holds the object itself, and pickling drops it."""

    def __init__(self, key: str, live: Any = None) -> None:
        self.key = key
        self.live = live

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["live"] = None
        return state

    @abstractmethod
    def load(self) -> Any:
        """Make the resource (in a worker)."""

    def get(self) -> Any:
        if self.live is None:
            self.live = self.load()
        return self.live


@dataclass(frozen=True)
class Shard:
    """``fn(resource, payload)``: ``fn`` a module-level function (picklable by reference),
    ``resource`` the loaded :class:`WorkerResource` of the map (or ``None``)."""

    fn: Callable[[Any, Any], Any]
    payload: Any
    phase: str
    plugin: str
    timeout_s: float | None = None


ResultCallback = Callable[[int, CallRecord[Any]], None]
"""``on_result(index, record)`` in the driver as each shard comes back (any order)."""


_RESOURCES: dict[str, Any] = {}
"""A worker's loaded resources by key (in the driver for ``local``)."""


def run_shard(shard: Shard, resource: WorkerResource | None) -> CallRecord[Any]:
    """Run one shard where this is called (a worker), isolated with its time limit; the
    resource is loaded on the first shard that needs it and kept."""

    def call() -> Any:
        loaded = None
        if resource is not None:
            loaded = _RESOURCES.get(resource.key)
            if loaded is None:
                loaded = _RESOURCES[resource.key] = resource.get()
        return shard.fn(loaded, shard.payload)

    return call_isolated(call, phase=shard.phase, plugin=shard.plugin, timeout_s=shard.timeout_s)


def run_shard_in_worker(
    shard: Shard, resource: WorkerResource | None
) -> tuple[int, CallRecord[Any]]:
    """:func:`run_shard` and the id of the worker process that ran it."""
    return os.getpid(), run_shard(shard, resource)


class Executor(ABC):
    """Runs tasks and shards and returns their records in the order given."""

    name: str = "executor"
    distributed: bool = False
    """whether shards leave this process (then they must pickle)"""
    workers: int = 1
    shards_run: Counter[tuple[str, int]]
    """shards finished per (phase, worker process id): where the work went"""

    workers_lost: int
    """workers that died (their shards were retried)"""

    def __init__(self) -> None:
        self.shards_run = Counter()
        self.workers_lost = 0

    def run(self, tasks: Sequence[Task]) -> list[CallRecord[Any]]:
        """Every plugin call in turn, in this process, isolated with its time limit; a task
        that raises or times out gives a failed record, never an exception here."""
        return [
            call_isolated(t.fn, phase=t.phase, plugin=t.plugin, timeout_s=t.timeout_s)
            for t in tasks
        ]

    def run_one(self, task: Task) -> CallRecord[Any]:
        return self.run([task])[0]

    @abstractmethod
    def map_shards(
        self,
        shards: Sequence[Shard],
        *,
        resource: WorkerResource | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[CallRecord[Any]]:
        """Run every shard (``fn(resource, payload)``); one record per shard, in order. A
        shard that raises gives a failed record; one whose worker died is retried."""

    def close(self) -> None:  # noqa: B027 - nothing to release for most backends
        """Release the workers."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "workers": self.workers}


class LocalExecutor(Executor):
    """Each task and shard in turn, in this process, isolated with its time limit; a shard's
    resource is the live object of the process that made it."""

    name = "local"

    def map_shards(
        self,
        shards: Sequence[Shard],
        *,
        resource: WorkerResource | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[CallRecord[Any]]:
        records = []
        for index, shard in enumerate(shards):
            loaded = resource.get() if resource is not None else None
            record = call_isolated(
                lambda s=shard, r=loaded: s.fn(r, s.payload),  # type: ignore[misc]
                phase=shard.phase,
                plugin=shard.plugin,
                timeout_s=shard.timeout_s,
            )
            self.shards_run[shard.phase, os.getpid()] += 1
            if on_result is not None:
                on_result(index, record)
            records.append(record)
        return records


def default_workers() -> int:
    """The CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


@dataclass
class _Active:
    executor: Executor = field(default_factory=LocalExecutor)


_active = _Active()


def current_executor() -> Executor:
    """The executor of the audit running now (statistics map their shards through it)."""
    return _active.executor


@contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Make ``executor`` the active one for the duration of the block."""
    previous, _active.executor = _active.executor, executor
    try:
        yield executor
    finally:
        _active.executor = previous


def executor_for(config: ExecutionConfig) -> Executor:
    """The executor an audit's ``execution:`` section asks for; a distributed backend starts
    (or connects to) its workers here, so a bad setting fails before any work."""
    if config.backend == "local":
        return LocalExecutor()
    if config.backend == "process":
        from audit_sdk.execution_process import ProcessExecutor

        return ProcessExecutor(
            workers=config.workers or default_workers(), max_retries=config.max_retries
        )
    if config.backend == "ray":
        from audit_sdk.execution_ray import RayExecutor

        return RayExecutor(
            workers=config.workers or default_workers(),
            address=config.address,
            worker_cpus=config.worker_cpus,
            worker_gpus=config.worker_gpus,
            max_retries=config.max_retries,
        )
    raise ValueError(f"unknown execution backend {config.backend!r}")  # pragma: no cover
