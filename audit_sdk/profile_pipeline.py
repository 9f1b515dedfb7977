"""Taste profiles from listening history: sample, prompt, generate, cache.

The seed method (Sguerra et al., RecSys 2025, arXiv 2507.16708): for each user and time
window, the two-step sample of (artist, track) pairs (:mod:`audit_sdk.sampling`) fills the
profile prompt (:mod:`audit_sdk.profile_prompts`) and a generator writes a natural-language
taste profile. Several generators can be compared in one run; every output keeps its user,
window, model, prompt hash and sampling parameters.

Generation goes through the :class:`~audit_sdk.generation_cache.GenerationCache` in batches,
each stored as soon as it is done, so a run killed midway resumes without regenerating what
finished. A generator that fails on a batch yields rows with ``error`` set (the runner turns
them into ``error`` findings), not a crash; after ``max_consecutive_failures`` failed batches
in a row it is not called again in that run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from audit_sdk.data.tables import Catalog, Dataset
from audit_sdk.errors import AuditSDKError, MissingCapabilityError
from audit_sdk.generation_cache import CacheKey, CacheRecord, GenerationCache
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.profile_prompts import prompt_sha256, render_profile_prompts
from audit_sdk.sampling import time_window, two_step_sample, window_label

__all__ = [
    "PROFILE_COLUMNS",
    "ProgressCallback",
    "generate_profiles",
    "profile_prompt_table",
    "sample_profile_windows",
]

logger = logging.getLogger(__name__)

PROFILE_COLUMNS = (
    "user_id",
    "window",
    "model",
    "adapter",
    "model_fingerprint",
    "prompt",
    "prompt_sha256",
    "text",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "cached",
    "error",
)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(model_label, done, total)`` after each batch (and cache lookup)."""


def sample_profile_windows(
    dataset: Dataset,
    *,
    windows: Sequence[int] | None = (30, 90, 180, 365),
    reference: date | datetime | None = None,
    top_artists: int = 5,
    tracks_per_artist: int = 3,
) -> dict[str, pd.DataFrame]:
    """The two-step sample per time window, keyed by window label (``"30d"``...).

    Data without timestamps (HetRec Last.fm) has no windows: the result is one sample of the
    whole history under ``"all"``, as it is when ``windows`` is ``None``.
    """
    if windows is None or not dataset.interactions.has_timestamps:
        sample = two_step_sample(
            dataset.interactions,
            dataset.catalog,
            top_artists=top_artists,
            tracks_per_artist=tracks_per_artist,
        )
        return {window_label(None): sample}
    samples: dict[str, pd.DataFrame] = {}
    for days in sorted(set(windows)):
        windowed = time_window(dataset, days=days, reference=reference)
        samples[window_label(days)] = two_step_sample(
            windowed.interactions,
            dataset.catalog,
            top_artists=top_artists,
            tracks_per_artist=tracks_per_artist,
        )
    return samples


def profile_prompt_table(
    samples_by_window: Mapping[str, pd.DataFrame],
    catalog: Catalog,
    *,
    template: str | Path | jinja2.Template | None = None,
) -> pd.DataFrame:
    """One row per (user, window) with a non-empty sample: ``user_id, window, prompt,
    prompt_sha256``, windows in the given order, users in sample order."""
    rows: list[tuple[Any, str, str, str]] = []
    for window, sample in samples_by_window.items():
        if sample is None or len(sample) == 0:
            continue
        for user_id, prompt in render_profile_prompts(sample, catalog, template=template).items():
            rows.append((user_id, window, prompt, prompt_sha256(prompt)))
    return pd.DataFrame(rows, columns=["user_id", "window", "prompt", "prompt_sha256"])


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, AuditSDKError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _check_outputs(adapter_label: str, outputs: Any, n_prompts: int) -> list[str]:
    if not isinstance(outputs, list) or len(outputs) != n_prompts:
        got = f"{len(outputs)} outputs" if isinstance(outputs, list) else type(outputs).__name__
        raise AuditSDKError(
            f"generator {adapter_label!r} returned {got} for {n_prompts} prompts; "
            f"generate() must return one str per prompt."
        )
    for index, text in enumerate(outputs):
        if not isinstance(text, str):
            raise AuditSDKError(
                f"generator {adapter_label!r} returned {type(text).__name__} for prompt "
                f"{index + 1}; generate() must return str."
            )
    return outputs


def _generate_one_model(
    label: str,
    adapter: GeneratorAdapter,
    prompts: pd.DataFrame,
    *,
    params: GenerationParams,
    cache: GenerationCache | None,
    batch_size: int,
    max_consecutive_failures: int,
    progress: ProgressCallback | None,
) -> pd.DataFrame:
    if not adapter.supports("generate"):
        raise MissingCapabilityError(
            f"generator {label!r} (adapter {adapter.name!r}) cannot generate text; "
            f"profiles need an adapter with the 'generate' capability."
        )
    unique = prompts.drop_duplicates("prompt_sha256")
    text_by_sha: dict[str, str] = {}
    error_by_sha: dict[str, str] = {}
    cached_shas: set[str] = set()
    try:
        fingerprint = adapter.fingerprint()
    except Exception as exc:  # e.g. a callable target that cannot be imported
        message = f"generator {label!r} could not identify its model: {_error_text(exc)}"
        logger.warning("%s", message)
        error_by_sha = dict.fromkeys(unique["prompt_sha256"], message)
        if progress is not None:
            progress(label, len(unique), len(unique))
        return _profile_frame(
            prompts, label, adapter.name, "", params, text_by_sha, error_by_sha, cached_shas
        )
    keys = {
        sha: CacheKey.for_prompt(
            adapter=adapter.name, model_fingerprint=fingerprint, prompt_sha256=sha, params=params
        )
        for sha in unique["prompt_sha256"]
    }
    if cache is not None:
        for key, record in cache.get_many(keys.values()).items():
            text_by_sha[key.prompt_sha256] = record.text
            cached_shas.add(key.prompt_sha256)
    todo = [
        (sha, prompt)
        for sha, prompt in unique[["prompt_sha256", "prompt"]].itertuples(index=False)
        if sha not in text_by_sha
    ]
    total = len(unique)
    done = total - len(todo)
    if progress is not None:
        progress(label, done, total)

    failures = 0
    last_error = ""
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        if failures >= max_consecutive_failures:
            message = (
                f"not generated: generator {label!r} failed on {failures} batches in a row "
                f"(last error: {last_error})"
            )
            for sha, _ in batch:
                error_by_sha[sha] = message
            done += len(batch)
            continue
        began = time.perf_counter()
        try:
            outputs = _check_outputs(
                label, adapter.generate([prompt for _, prompt in batch], params=params), len(batch)
            )
        except Exception as exc:
            failures += 1
            last_error = _error_text(exc)
            logger.warning(
                "generator %r failed on a batch of %d: %s", label, len(batch), last_error
            )
            for sha, _ in batch:
                error_by_sha[sha] = last_error
        else:
            failures = 0
            seconds = (time.perf_counter() - began) / max(len(batch), 1)
            for (sha, _), text in zip(batch, outputs, strict=True):
                text_by_sha[sha] = text
            if cache is not None:
                cache.put_many(
                    [
                        CacheRecord(keys[sha], text, {"model": label, "seconds": round(seconds, 4)})
                        for (sha, _), text in zip(batch, outputs, strict=True)
                    ]
                )
        done += len(batch)
        if progress is not None:
            progress(label, done, total)

    return _profile_frame(
        prompts, label, adapter.name, fingerprint, params, text_by_sha, error_by_sha, cached_shas
    )


def _profile_frame(
    prompts: pd.DataFrame,
    label: str,
    adapter_name: str,
    fingerprint: str,
    params: GenerationParams,
    text_by_sha: dict[str, str],
    error_by_sha: dict[str, str],
    cached_shas: set[str],
) -> pd.DataFrame:
    frame = prompts.copy()
    frame["model"] = label
    frame["adapter"] = adapter_name
    frame["model_fingerprint"] = fingerprint
    frame["text"] = frame["prompt_sha256"].map(text_by_sha).astype(object)
    frame["temperature"] = float(params.temperature)
    frame["top_p"] = float(params.top_p)
    frame["max_new_tokens"] = int(params.max_new_tokens)
    frame["seed"] = int(params.seed)
    frame["cached"] = frame["prompt_sha256"].isin(cached_shas)
    frame["error"] = frame["prompt_sha256"].map(error_by_sha).astype(object)
    frame["text"] = frame["text"].where(frame["text"].notna(), None)
    frame["error"] = frame["error"].where(frame["error"].notna(), None)
    return frame


def generate_profiles(
    samples_by_window: Mapping[str, pd.DataFrame],
    catalog: Catalog,
    generators: Mapping[str, GeneratorAdapter],
    *,
    params: GenerationParams | None = None,
    cache: GenerationCache | None = None,
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
    template: str | Path | jinja2.Template | None = None,
    max_consecutive_failures: int = 3,
) -> pd.DataFrame:
    """Write a taste profile for every (user, window) sample with every generator.

    :param samples_by_window: window label -> two-step sample (``user_id, position, artist,
        item_id, title, plays``), e.g. from :func:`sample_profile_windows`.
    :param catalog: gives genres, countries and release years for the prompt.
    :param generators: label (as reports name the model) -> adapter with ``generate``.
    :param params: sampling parameters (default temperature 0.8), part of every cache key.
    :param cache: where finished generations are stored and looked up; ``None`` to skip.
    :param batch_size: prompts per ``generate`` call; each finished batch is committed.
    :param progress: ``progress(label, done, total)`` after each batch.
    :param template: a profile prompt template (path or loaded) instead of the default.
    :param max_consecutive_failures: after this many failed batches in a row, a generator's
        remaining prompts get error rows without being sent.
    :returns: one row per (generator, window, user) with columns :data:`PROFILE_COLUMNS`;
        ``text`` is ``None`` and ``error`` holds the message where generation failed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if max_consecutive_failures < 1:
        raise ValueError("max_consecutive_failures must be at least 1")
    params = params if params is not None else GenerationParams()
    prompts = profile_prompt_table(samples_by_window, catalog, template=template)
    frames = [
        _generate_one_model(
            label,
            adapter,
            prompts,
            params=params,
            cache=cache,
            batch_size=batch_size,
            max_consecutive_failures=max_consecutive_failures,
            progress=progress,
        )
        for label, adapter in generators.items()
    ]
    if not frames:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    result = pd.concat(frames, ignore_index=True)
    return result[list(PROFILE_COLUMNS)]
