"""The ``process`` backend: shards on a pool of worker processes on this machine.

``execution: {backend: process, workers: N}``. Workers are started with the ``spawn`` method
(no forked copy of the driver's threads, models or database connections) the first time an
audit has shards to run, and kept for the audit. A map's resource (a model) is pickled once to
a temporary file; each worker loads it on its first shard and keeps it for the rest
(``execution.run_shard``), so a model is loaded once per worker, not per shard.

At most ``workers`` shards are in flight at once. A worker that dies breaks the pool
(``BrokenProcessPool``): the shards that were in flight are retried on a fresh pool, up to
``max_retries`` times each, and every shard that had finished stays finished (its result was
already handed to ``on_result``, which is where the generation service stores it in the
cache). The Ray backend isolates workers from each other; this one loses the in-flight shards
of the whole pool with one worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import tempfile
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from audit_sdk.execution import (
    Executor,
    ResultCallback,
    Shard,
    WorkerResource,
    run_shard_in_worker,
)
from audit_sdk.plugin_calls import CallRecord

__all__ = ["ProcessExecutor", "WorkerDiedError"]

logger = logging.getLogger(__name__)


class WorkerDiedError(RuntimeError):
    """A shard's worker died every time the shard was tried."""


class _FileResource(WorkerResource):
    """A resource pickled to a file once per map; the worker reads it on its first shard."""

    def __init__(self, key: str, path: Path) -> None:
        super().__init__(key)
        self.path = path

    def load(self) -> Any:
        with self.path.open("rb") as handle:
            inner: WorkerResource = pickle.load(handle)
        return inner.get()


def died_record(shard: Shard, attempts: int) -> CallRecord[Any]:
    return CallRecord(
        phase=shard.phase,
        plugin=shard.plugin,
        result=None,
        error=WorkerDiedError(
            f"the worker running this {shard.phase} shard of {shard.plugin!r} died on each of "
            f"{attempts} tries (raise execution.max_retries, or look for the worker running out "
            "of memory)"
        ),
        traceback=None,
        duration_s=0.0,
    )


class ProcessExecutor(Executor):
    """``workers`` spawned processes; shards stream back in completion order."""

    name = "process"
    distributed = True

    def __init__(self, *, workers: int, max_retries: int = 2) -> None:
        if workers < 1:
            raise ValueError("execution.workers must be at least 1")
        super().__init__()
        self.workers = workers
        self.max_retries = max_retries
        self._pool: ProcessPoolExecutor | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._maps = 0

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
        )
        return self._pool

    def _ship(self, resource: WorkerResource | None) -> WorkerResource | None:
        if resource is None:
            return None
        self._maps += 1
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="audit-sdk-shards-")
        path = Path(self._tmp.name) / f"resource-{self._maps}.pickle"
        with path.open("wb") as handle:
            pickle.dump(resource, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return _FileResource(resource.key, path)

    def map_shards(
        self,
        shards: Sequence[Shard],
        *,
        resource: WorkerResource | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[CallRecord[Any]]:
        shipped = self._ship(resource)
        records: list[CallRecord[Any] | None] = [None] * len(shards)
        attempts = [0] * len(shards)
        queue = list(range(len(shards)))
        pool = self._pool or self._fresh_pool()
        running: dict[Future[tuple[int, CallRecord[Any]]], int] = {}

        def finish(index: int, record: CallRecord[Any]) -> None:
            records[index] = record
            if on_result is not None:
                on_result(index, record)

        while queue or running:
            while queue and len(running) < self.workers:
                index = queue.pop(0)
                attempts[index] += 1
                try:
                    running[pool.submit(run_shard_in_worker, shards[index], shipped)] = index
                except BrokenProcessPool:
                    queue.insert(0, index)
                    attempts[index] -= 1
                    pool = self._fresh_pool()
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                index = running.pop(future)
                try:
                    pid, record = future.result()
                except BrokenProcessPool:
                    broken = True
                    if attempts[index] > self.max_retries:
                        finish(index, died_record(shards[index], attempts[index]))
                    else:
                        queue.insert(0, index)
                except Exception as exc:  # the shard could not be pickled or unpickled
                    finish(
                        index,
                        CallRecord(shards[index].phase, shards[index].plugin, None, exc, None, 0.0),
                    )
                else:
                    self.shards_run[shards[index].phase, pid] += 1
                    finish(index, record)
            if broken:
                self.workers_lost += 1
                logger.warning("a worker process died; retrying its shards on a fresh pool")
                for future, index in list(running.items()):
                    future.cancel()
                    queue.insert(0, index)
                    attempts[index] -= 1  # it never got to run (or was not to blame)
                running.clear()
                pool = self._fresh_pool()
        return [r for r in records if r is not None]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
