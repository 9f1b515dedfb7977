"""Stage 3, outputs: fit a model to the training split and obtain its top-k lists.

An adapter that ``recommend``\\ s serves lists directly; one that only ``generate``\\ s text is
asked for recommendations through the generation service (prompt from the history, answer
lines matched to the catalog, a per-user hallucination rate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from audit_sdk.config import AuditConfig
from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError, AuditSDKError
from audit_sdk.interfaces import GenerationParams, GeneratorAdapter, SubjectOutputs
from audit_sdk.plugin_calls import PluginTimeoutError, call_isolated
from audit_sdk.services import GenerationService

T = TypeVar("T")

__all__ = ["fit_adapter", "obtain_outputs"]


def _bounded(
    fn: Callable[[], T],
    *,
    adapter: GeneratorAdapter,
    label: str,
    phase: str,
    timeout_s: float | None,
) -> T:
    """``fn()`` within ``timeout_s`` (a model that hangs must not hang the audit)."""
    record = call_isolated(fn, phase=phase, plugin=label, timeout_s=timeout_s)
    if record.ok:
        return record.result  # type: ignore[return-value]
    error = record.error
    if isinstance(error, AuditSDKError):
        raise error
    if isinstance(error, PluginTimeoutError):
        raise AdapterError(
            f"adapter {adapter.name!r} ({label}): {phase} ran past its time limit of "
            f"{timeout_s:g} s (subject.timeout_s in the config)"
        )
    what = "could not be fitted to the training data" if phase == "fit" else "failed"
    raise AdapterError(
        f"adapter {adapter.name!r} ({label}) {what}: {type(error).__name__}: {error}"
    ) from error


def fit_adapter(
    adapter: GeneratorAdapter, label: str, train: Dataset, *, timeout_s: float | None = None
) -> None:
    _bounded(
        lambda: adapter.fit(train), adapter=adapter, label=label, phase="fit", timeout_s=timeout_s
    )


def obtain_outputs(
    label: str,
    adapter: GeneratorAdapter,
    train: Dataset,
    users: Sequence[str],
    config: AuditConfig,
    generation: GenerationService,
    *,
    notes: list[str],
    fingerprint: str | None = None,
) -> SubjectOutputs:
    """``adapter``'s outputs for ``users`` (fitted on ``train`` first); what the report should
    say about them (users who got no list, failed prompts) is appended to ``notes``."""
    recommendations = None
    user_metrics = None
    k = config.subject.k
    timeout_s = config.subject.timeout_s
    fit_adapter(adapter, label, train, timeout_s=timeout_s)
    generation.remember_fit(adapter, train)  # a distributed worker fits its copy the same way
    try:
        if adapter.supports("recommend"):
            recommendations = _bounded(
                lambda: adapter.recommend(list(users), k=k),
                adapter=adapter,
                label=label,
                phase="recommend",
                timeout_s=timeout_s,
            )
        elif adapter.supports("generate"):
            from audit_sdk.generative_recommendation import recommend_by_generation

            generated = recommend_by_generation(
                adapter,
                train,
                users,
                k=k,
                params=GenerationParams(
                    temperature=config.subject.temperature,
                    max_new_tokens=config.subject.max_new_tokens,
                    seed=config.seed,
                ),
                service=generation,
                label=label,
            )
            recommendations = generated.recommendations
            user_metrics = generated.hallucination_rate.rename("hallucination_rate").to_frame()
            errors = generated.raw["error"].dropna()
            if len(errors) and len(errors) == len(generated.raw):
                raise AdapterError(
                    f"adapter {adapter.name!r} ({label}) failed on every recommendation prompt; "
                    f"first error: {errors.iloc[0]}"
                )
            if len(errors):
                notes.append(
                    f"{label} failed on {len(errors)} of {len(generated.raw)} recommendation "
                    f"prompts (those users count as misses); first error: {errors.iloc[0]}"
                )
        own_fingerprint = adapter.fingerprint()
    except AuditSDKError:
        raise
    except Exception as exc:
        raise AdapterError(
            f"adapter {adapter.name!r} ({label}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    if recommendations is not None:
        covered = recommendations["user_id"].nunique()
        if covered < len(users):
            notes.append(
                f"{label} gave no recommendations for {len(users) - covered} of {len(users)} "
                "audited users; they count as misses (NDCG 0)"
            )
    return SubjectOutputs(
        name=label,
        adapter=adapter.name,
        fingerprint=fingerprint or own_fingerprint,
        recommendations=recommendations,
        description=adapter.describe(),
        user_metrics=user_metrics,
    )
