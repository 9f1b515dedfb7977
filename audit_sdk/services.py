"""Services an audit context offers its plugins: generation, auxiliary models by role, and the
subject's live adapter. Each pickles without its live parts (models, database connections) and
re-creates them on first use in the receiving process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit_sdk.errors import AuditSDKError, ConfigError
from audit_sdk.execution import Executor, LocalExecutor, Shard, Task
from audit_sdk.execution_models import AdapterResource
from audit_sdk.generation_cache import CacheKey, CacheRecord, GenerationCache
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.profile_prompts import prompt_sha256

if TYPE_CHECKING:
    from audit_sdk.config import ModelRoleConfig
    from audit_sdk.data.tables import Dataset
    from audit_sdk.interfaces.feature import UserFeature
    from audit_sdk.plugin_host import PluginSettings

__all__ = [
    "AdapterResource",
    "AdapterSpec",
    "AuditServices",
    "GeneratedText",
    "GenerationService",
    "ModelHandle",
    "ModelRoles",
]

logger = logging.getLogger(__name__)

GenerationProgress = Callable[[int, int], None]
"""``progress(done, total)`` after the cache lookup and after each batch."""


@dataclass(frozen=True)
class GeneratedText:
    """One prompt's outcome: its text, or the error that kept it from being generated."""

    text: str | None
    error: str | None = None
    cached: bool = False


def error_text(exc: BaseException) -> str:
    if isinstance(exc, AuditSDKError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _check_outputs(label: str, outputs: Any, n_prompts: int) -> list[str]:
    if not isinstance(outputs, list) or len(outputs) != n_prompts:
        got = f"{len(outputs)} outputs" if isinstance(outputs, list) else type(outputs).__name__
        raise AuditSDKError(
            f"generator {label!r} returned {got} for {n_prompts} prompts; "
            f"generate() must return one str per prompt."
        )
    for index, text in enumerate(outputs):
        if not isinstance(text, str):
            raise AuditSDKError(
                f"generator {label!r} returned {type(text).__name__} for prompt "
                f"{index + 1}; generate() must return str."
            )
    return outputs


class GenerationService:
    """Batched, cached, fault-tolerant text generation.

    Identical prompts are generated once; finished generations are looked up in (and stored
    to) the SQLite :class:`~audit_sdk.generation_cache.GenerationCache` batch by batch, so a
    run killed midway resumes; a batch that fails gives its prompts an ``error`` and the run
    goes on; after ``max_consecutive_failures`` failed batches in a row a model is not called
    again for the rest of the request. Every batch runs through the audit's executor.
    """

    def __init__(
        self,
        *,
        cache_path: str | Path | None = None,
        cache: GenerationCache | None = None,
        batch_size: int = 16,
        max_consecutive_failures: int = 3,
        timeout_s: float | None = None,
        executor: Executor | None = None,
        settings: PluginSettings | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be at least 1")
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.batch_size = batch_size
        self.max_consecutive_failures = max_consecutive_failures
        self.timeout_s = timeout_s
        self.executor = executor or LocalExecutor()
        self.settings = settings
        """plugin settings a distributed worker re-creates registered adapters with"""
        self._cache = cache
        self._owns_cache = cache is None
        self._fitted: dict[int, Dataset] = {}

    def remember_fit(self, adapter: GeneratorAdapter, train: Dataset) -> None:
        """``adapter`` was fitted to ``train``: a worker that re-creates it fits it too."""
        self._fitted[id(adapter)] = train

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if not self._owns_cache and self._cache is not None:
            state["cache_path"] = self._cache.path
        state["_cache"] = None
        state["_owns_cache"] = True
        state["_fitted"] = {}
        return state

    @property
    def cache(self) -> GenerationCache | None:
        if self._cache is None and self.cache_path is not None:
            self._cache = GenerationCache(self.cache_path)
        return self._cache

    def close(self) -> None:
        if self._owns_cache and self._cache is not None:
            self._cache.close()
            self._cache = None

    def generate(
        self,
        adapter: GeneratorAdapter,
        prompts: Sequence[str],
        *,
        params: GenerationParams,
        label: str | None = None,
        progress: GenerationProgress | None = None,
    ) -> list[GeneratedText]:
        """One :class:`GeneratedText` per prompt, in order."""
        label = label or adapter.name
        shas = [prompt_sha256(p) for p in prompts]
        unique = dict(zip(shas, prompts, strict=True))
        done: dict[str, GeneratedText] = {}
        try:
            fingerprint = adapter.fingerprint()
        except Exception as exc:  # e.g. a callable target that cannot be imported
            message = f"generator {label!r} could not identify its model: {error_text(exc)}"
            logger.warning("%s", message)
            if progress is not None:
                progress(len(unique), len(unique))
            return [GeneratedText(None, message) for _ in prompts]
        keys = {
            sha: CacheKey.for_prompt(
                adapter=adapter.name,
                model_fingerprint=fingerprint,
                prompt_sha256=sha,
                params=params,
            )
            for sha in unique
        }
        cache = self.cache
        if cache is not None:
            for key, hit in cache.get_many(keys.values()).items():
                done[key.prompt_sha256] = GeneratedText(hit.text, None, cached=True)
        todo = [(sha, prompt) for sha, prompt in unique.items() if sha not in done]
        total, finished = len(unique), len(unique) - len(todo)
        if progress is not None:
            progress(finished, total)
        if self.executor.distributed and todo:
            resource = AdapterResource(
                adapter, settings=self.settings, fitted_on=self._fitted.get(id(adapter))
            )
            self._generate_sharded(
                resource, label, params, todo, keys, done, finished, total, progress
            )
            return [done[sha] for sha in shas]
        failures, last_error = 0, ""
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            if failures >= self.max_consecutive_failures:
                message = (
                    f"not generated: generator {label!r} failed on {failures} batches in a row "
                    f"(last error: {last_error})"
                )
                done.update({sha: GeneratedText(None, message) for sha, _ in batch})
            else:
                began = time.perf_counter()
                texts = [prompt for _, prompt in batch]
                record = self.executor.run_one(
                    Task(
                        lambda t=texts: _check_outputs(  # type: ignore[misc]
                            label, adapter.generate(t, params=params), len(t)
                        ),
                        phase="generate",
                        plugin=label,
                        timeout_s=self.timeout_s,
                    )
                )
                if not record.ok or record.result is None:
                    failures += 1
                    last_error = record.describe_error() if record.error else "no output"
                    if isinstance(record.error, AuditSDKError):
                        last_error = str(record.error)
                    logger.warning(
                        "generator %r failed on a batch of %d: %s", label, len(batch), last_error
                    )
                    done.update({sha: GeneratedText(None, last_error) for sha, _ in batch})
                else:
                    failures = 0
                    seconds = (time.perf_counter() - began) / max(len(batch), 1)
                    outputs: list[str] = record.result
                    for (sha, _), text in zip(batch, outputs, strict=True):
                        done[sha] = GeneratedText(text)
                    if cache is not None:
                        cache.put_many(
                            [
                                CacheRecord(
                                    keys[sha], text, {"model": label, "seconds": round(seconds, 4)}
                                )
                                for (sha, _), text in zip(batch, outputs, strict=True)
                            ]
                        )
            finished += len(batch)
            if progress is not None:
                progress(finished, total)
        return [done[sha] for sha in shas]

    def _generate_sharded(
        self,
        resource: AdapterResource,
        label: str,
        params: GenerationParams,
        todo: list[tuple[str, str]],
        keys: Mapping[str, CacheKey],
        done: dict[str, GeneratedText],
        finished: int,
        total: int,
        progress: GenerationProgress | None,
    ) -> None:
        """Every batch of ``todo`` as a shard on the executor's workers (users are cut into
        the same batches whatever the backend; each prompt's sampler is seeded by the call's
        seed and the prompt, so no output depends on the worker). Each finished shard goes
        into the cache as soon as it is back, so a killed run resumes from there."""
        batches = [todo[s : s + self.batch_size] for s in range(0, len(todo), self.batch_size)]
        shards = [
            Shard(
                _generate_batch,
                (label, [prompt for _, prompt in batch], params),
                phase="generate",
                plugin=label,
                timeout_s=self.timeout_s,
            )
            for batch in batches
        ]
        cache = self.cache
        count = [finished]

        def store(index: int, record: Any) -> None:
            batch = batches[index]
            if not record.ok or record.result is None:
                error = record.describe_error() if record.error else "no output"
                if isinstance(record.error, AuditSDKError):
                    error = str(record.error)
                logger.warning("generator %r failed on a batch of %d: %s", label, len(batch), error)
                done.update({sha: GeneratedText(None, error) for sha, _ in batch})
            else:
                outputs: list[str] = record.result
                seconds = record.duration_s / max(len(batch), 1)
                done.update(
                    {
                        sha: GeneratedText(text)
                        for (sha, _), text in zip(batch, outputs, strict=True)
                    }
                )
                if cache is not None:
                    cache.put_many(
                        [
                            CacheRecord(
                                keys[sha], text, {"model": label, "seconds": round(seconds, 4)}
                            )
                            for (sha, _), text in zip(batch, outputs, strict=True)
                        ]
                    )
            count[0] += len(batch)
            if progress is not None:
                progress(count[0], total)

        self.executor.map_shards(shards, resource=resource, on_result=store)


def _generate_batch(
    adapter: GeneratorAdapter, payload: tuple[str, list[str], GenerationParams]
) -> list[str]:
    """A shard of generation, in a worker: one ``generate`` call on the worker's model."""
    label, texts, params = payload
    return _check_outputs(label, adapter.generate(texts, params=params), len(texts))


@dataclass(frozen=True)
class AdapterSpec:
    """How to make an adapter again: its registered name and validated parameters."""

    adapter: str
    params: Mapping[str, Any]
    where: str
    """the config location, for error messages"""
    base_dir: Path | None = None
    """the config file's folder, against which relative path parameters resolve"""


class ModelHandle:
    """A model by reference: the live adapter in the process that made it, re-created from its
    :class:`AdapterSpec` (and fitted to ``train`` when given) after pickling."""

    def __init__(
        self,
        label: str,
        *,
        spec: AdapterSpec | None,
        settings: PluginSettings | None,
        train: Dataset | None = None,
        live: GeneratorAdapter | None = None,
    ) -> None:
        self.label = label
        self.spec = spec
        self.settings = settings
        self.train = train
        self._live = live

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_live"] = None
        return state

    def get(self) -> GeneratorAdapter:
        if self._live is None:
            if self.spec is None or self.settings is None:
                raise AuditSDKError(
                    f"model {self.label!r} exists only in the process that made it and cannot be "
                    "re-created here; a mitigator that returns a new model should save it to a "
                    "directory and return an adapter whose params point there."
                )
            from audit_sdk.plugin_host import get_plugin_host
            from audit_sdk.plugin_instances import validate_params

            registration = get_plugin_host(self.settings).get("adapter", self.spec.adapter)
            adapter = registration.cls(
                validate_params(
                    registration,
                    dict(self.spec.params),
                    where=self.spec.where,
                    base_dir=self.spec.base_dir,
                )
            )
            if self.train is not None:
                adapter.fit(self.train)
            self._live = adapter
        return self._live

    def close(self) -> None:
        if self._live is not None:
            self._live.close()


class ModelRoles:
    """Auxiliary models by role (an embedder, a scorer...) from the config's ``models:``
    section, each made on first use and kept for the audit."""

    def __init__(
        self,
        roles: Mapping[str, ModelRoleConfig],
        *,
        settings: PluginSettings | None = None,
        where: str = "config",
        base_dir: Path | None = None,
    ) -> None:
        self._handles = {
            role: ModelHandle(
                role,
                spec=AdapterSpec(
                    cfg.adapter, dict(cfg.params), f"{where}: models.{role}.params", base_dir
                ),
                settings=settings,
            )
            for role, cfg in roles.items()
        }

    def roles(self) -> list[str]:
        return sorted(self._handles)

    def has(self, role: str) -> bool:
        return role in self._handles

    def get(self, role: str) -> GeneratorAdapter:
        if role not in self._handles:
            configured = ", ".join(self.roles()) or "none"
            raise ConfigError(
                f"no model for role {role!r}; add it to the config's models: section, e.g. "
                f"models: {{{role}: {{adapter: NAME, params: {{...}}}}}} (configured: {configured})"
            )
        return self._handles[role].get()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()


class AuditServices:
    """What a context offers beyond data: generation, auxiliary models, the subject's adapter,
    the executor and the registered features."""

    def __init__(
        self,
        *,
        generation: GenerationService,
        models: ModelRoles,
        subject: ModelHandle | None,
        executor: Executor,
        features: Mapping[str, UserFeature] | None = None,
    ) -> None:
        self.generation = generation
        self.models = models
        self.subject = subject
        self.executor = executor
        self.features = dict(features or {})

    def subject_adapter(self) -> GeneratorAdapter | None:
        return self.subject.get() if self.subject is not None else None

    def with_subject(self, subject: ModelHandle) -> AuditServices:
        return AuditServices(
            generation=self.generation,
            models=self.models,
            subject=subject,
            executor=self.executor,
            features=self.features,
        )

    def close(self) -> None:
        self.generation.close()
        self.models.close()
