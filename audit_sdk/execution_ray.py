"""The ``ray`` backend: shards on Ray actors, on a running cluster or a local one.

``execution: {backend: ray, workers: N, address: ..., worker_cpus: 1, worker_gpus: 0}``
(``pip install 'audit-sdk[ray]'``; this module, and Ray, are imported only for this backend).

* **Cluster.** ``address`` connects to a running cluster (``host:6379`` or ``auto`` from a node
  of it, ``ray://host:10001`` through Ray Client); without it a local cluster is started with
  the CPUs the workers reserve. An address that does not answer, a cluster too small for one
  worker, or Ray not installed is a :class:`~audit_sdk.errors.ConfigError` raised when the
  executor is made, before any work.
* **Workers.** ``workers`` long-lived actors, each reserving ``worker_cpus`` CPUs and
  ``worker_gpus`` GPUs (``worker_gpus: 1``: one model per GPU; Ray sets the actor's
  ``CUDA_VISIBLE_DEVICES``, so an adapter with ``device: cuda`` finds its own GPU). A map's
  resource (a model) is put in the object store once; each actor loads it on its first shard
  and keeps it (``execution.run_shard``): a model is loaded once per worker, not per shard.
* **Streaming and faults.** Each actor has at most two shards in flight; a finished shard goes
  to ``on_result`` in the driver at once (the generation service stores it in the driver's
  SQLite cache then, so a killed audit resumes from there). An actor that dies costs only the
  shards it held: it is replaced and they are retried, up to ``max_retries`` times each.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from audit_sdk.errors import ConfigError
from audit_sdk.execution import (
    Executor,
    ResultCallback,
    Shard,
    WorkerResource,
    run_shard_in_worker,
)
from audit_sdk.execution_process import died_record
from audit_sdk.plugin_calls import CallRecord

try:
    import ray
    import ray.exceptions
except ImportError as exc:  # pragma: no cover - the extra is part of dev
    raise ConfigError(
        "execution.backend is 'ray' but Ray is not installed: pip install 'audit-sdk[ray]'"
    ) from exc

__all__ = ["RayExecutor", "check_address"]

logger = logging.getLogger(__name__)

_IN_FLIGHT_PER_WORKER = 2
_CONNECT_TIMEOUT_S = 5.0


class _ShardWorker:
    """One actor: runs shards and keeps the resources it loaded (``execution._RESOURCES``)."""

    def run(self, shard: Shard, key: str | None, boxed: list[Any]) -> tuple[int, CallRecord[Any]]:
        from audit_sdk import execution

        resource = None
        if key is not None:
            resource = _Loaded(key) if key in execution._RESOURCES else ray.get(boxed[0])
        return run_shard_in_worker(shard, resource)

    def pid(self) -> int:
        return os.getpid()


class _Loaded(WorkerResource):
    """A resource the actor has already loaded (``run_shard`` finds it by key)."""

    def load(self) -> Any:  # pragma: no cover - never called: the key is cached
        raise RuntimeError(f"resource {self.key!r} is not loaded")


def check_address(address: str) -> None:
    """Raise :class:`ConfigError` unless something listens at ``address``'s host and port."""
    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"execution.address {address!r} is not 'host:port', 'ray://host:port' or 'auto'"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"execution.address: no Ray cluster answers at {address} ({exc}); start one with "
            "`ray start --head` on that machine, fix the address, or leave address unset to "
            "start a local cluster"
        ) from None


class RayExecutor(Executor):
    """``workers`` Ray actors; shards stream back in completion order."""

    name = "ray"
    distributed = True

    def __init__(
        self,
        *,
        workers: int,
        address: str | None = None,
        worker_cpus: float = 1.0,
        worker_gpus: float = 0.0,
        max_retries: int = 2,
    ) -> None:
        if workers < 1:
            raise ConfigError("execution.workers must be at least 1")
        super().__init__()
        self.workers = workers
        self.address = address
        self.worker_cpus = worker_cpus
        self.worker_gpus = worker_gpus
        self.max_retries = max_retries
        self._owns_cluster = False
        if address is not None:
            check_address(address)
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address,
                    num_cpus=None if address else max(1, round(workers * worker_cpus)),
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except Exception as exc:
                raise ConfigError(
                    f"execution: could not start or join a Ray cluster "
                    f"(address {address or 'local'}): {type(exc).__name__}: {exc}"
                ) from None
            self._owns_cluster = True
        self._check_fits()
        self._actor_cls = ray.remote(_ShardWorker).options(
            num_cpus=worker_cpus, num_gpus=worker_gpus, max_restarts=0, max_task_retries=0
        )
        self._actors: list[Any] = []

    def _check_fits(self) -> None:
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        if cpus < self.worker_cpus or gpus < self.worker_gpus:
            raise ConfigError(
                f"execution: the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; one worker "
                f"needs worker_cpus={self.worker_cpus:g} and worker_gpus={self.worker_gpus:g}. "
                "Lower them or add nodes."
            )
        if cpus < self.workers * self.worker_cpus or gpus < self.workers * self.worker_gpus:
            logger.warning(
                "the Ray cluster fits fewer than %d workers (%g CPUs, %g GPUs); the others wait",
                self.workers,
                cpus,
                gpus,
            )

    def actors(self) -> list[Any]:
        """The live actor handles (started on first use)."""
        while len(self._actors) < self.workers:
            self._actors.append(self._actor_cls.remote())
        return list(self._actors)

    def worker_pids(self) -> list[int]:
        return [int(pid) for pid in ray.get([a.pid.remote() for a in self.actors()])]

    def _replace(self, actor: Any) -> Any:
        fresh = self._actor_cls.remote()
        self._actors = [fresh if a is actor else a for a in self._actors]
        with contextlib.suppress(Exception):  # already gone
            ray.kill(actor, no_restart=True)
        return fresh

    def map_shards(
        self,
        shards: Sequence[Shard],
        *,
        resource: WorkerResource | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[CallRecord[Any]]:
        key = resource.key if resource is not None else None
        boxed = [ray.put(resource)] if resource is not None else []
        records: list[CallRecord[Any] | None] = [None] * len(shards)
        attempts = [0] * len(shards)
        queue = list(range(len(shards)))
        load: dict[int, int] = {}
        flying: dict[Any, tuple[int, Any]] = {}

        def finish(index: int, record: CallRecord[Any]) -> None:
            records[index] = record
            if on_result is not None:
                on_result(index, record)

        while queue or flying:
            for depth in range(1, _IN_FLIGHT_PER_WORKER + 1):  # one per worker, then a second
                for actor in self.actors():
                    if not queue or load.get(id(actor), 0) >= depth:
                        continue
                    index = queue.pop(0)
                    attempts[index] += 1
                    try:
                        ref = actor.run.remote(shards[index], key, boxed)
                    except Exception as exc:  # the shard could not be serialised
                        finish(index, _failed(shards[index], exc))
                        continue
                    flying[ref] = (index, actor)
                    load[id(actor)] = load.get(id(actor), 0) + 1
            if not flying:
                continue
            ready, _ = ray.wait(list(flying), num_returns=1)
            for ref in ready:
                index, actor = flying.pop(ref)
                load[id(actor)] -= 1
                try:
                    pid, record = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    self._lost(actor, index, shards[index], attempts, queue, finish, exc, flying)
                else:
                    self.shards_run[shards[index].phase, pid] += 1
                    finish(index, record)
        return [r for r in records if r is not None]

    def _lost(
        self,
        actor: Any,
        index: int,
        shard: Shard,
        attempts: list[int],
        queue: list[int],
        finish: Any,
        exc: BaseException,
        flying: dict[Any, tuple[int, Any]],
    ) -> None:
        """A shard came back with a system error: its actor died (or could not be reached)."""
        if actor in self._actors:
            self.workers_lost += 1
            logger.warning("a Ray worker died (%s); retrying its shards", type(exc).__name__)
            self._replace(actor)
        if attempts[index] > self.max_retries:
            finish(index, died_record(shard, attempts[index]))
        else:
            queue.insert(0, index)

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._actors = []
        if self._owns_cluster and ray.is_initialized():
            ray.shutdown()
            self._owns_cluster = False

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "workers": self.workers,
            "worker_cpus": self.worker_cpus,
            "worker_gpus": self.worker_gpus,
            "address": self.address or "local",
        }


def _failed(shard: Shard, exc: BaseException) -> CallRecord[Any]:
    return CallRecord(shard.phase, shard.plugin, None, exc, None, 0.0)
