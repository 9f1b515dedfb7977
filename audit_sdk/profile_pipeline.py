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

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from audit_sdk.config import SamplingConfig
from audit_sdk.data.tables import Catalog, Dataset, Interactions
from audit_sdk.errors import MissingCapabilityError
from audit_sdk.generation_cache import GenerationCache
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.interfaces.sampler import ProfileSampler
from audit_sdk.profile_prompts import prompt_sha256, render_profile_prompts
from audit_sdk.sampling import time_window, two_step_sample, window_label
from audit_sdk.services import GenerationService

__all__ = [
    "PROFILE_COLUMNS",
    "ProgressCallback",
    "TwoStepSampler",
    "generate_profiles",
    "profile_prompt_table",
    "sample_profile_windows",
    "window_interactions",
]

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
    return {
        label: two_step_sample(
            interactions,
            dataset.catalog,
            top_artists=top_artists,
            tracks_per_artist=tracks_per_artist,
        )
        for label, interactions in window_interactions(
            dataset, windows=windows, reference=reference
        ).items()
    }


def window_interactions(
    dataset: Dataset,
    *,
    windows: Sequence[int] | None = (30, 90, 180, 365),
    reference: date | datetime | None = None,
) -> dict[str, Interactions]:
    """The interactions of each profile window, keyed by window label (``"30d"``...), as
    :func:`sample_profile_windows` samples them: one ``"all"`` window when ``windows`` is
    ``None`` or the data has no timestamps."""
    if windows is None or not dataset.interactions.has_timestamps:
        return {window_label(None): dataset.interactions}
    return {
        window_label(days): time_window(dataset, days=days, reference=reference).interactions
        for days in sorted(set(windows))
    }


class TwoStepSampler(ProfileSampler):
    """The seed study's sampler (Sguerra et al., RecSys 2025, Sec. 3): per window, each user's
    top ``sampling.top_artists`` artists by plays and each artist's top
    ``sampling.tracks_per_artist`` tracks."""

    name = "two_step"

    def sample(self, train: Dataset, settings: SamplingConfig) -> dict[str, pd.DataFrame]:
        return sample_profile_windows(
            train,
            windows=settings.windows,
            reference=settings.reference_date,
            top_artists=settings.top_artists,
            tracks_per_artist=settings.tracks_per_artist,
        )

    def describe(self) -> dict[str, Any]:
        return {"sampler": self.name}


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


def _generate_one_model(
    label: str,
    adapter: GeneratorAdapter,
    prompts: pd.DataFrame,
    *,
    params: GenerationParams,
    service: GenerationService,
    progress: ProgressCallback | None,
) -> pd.DataFrame:
    if not adapter.supports("generate"):
        raise MissingCapabilityError(
            f"generator {label!r} (adapter {adapter.name!r}) cannot generate text; "
            f"profiles need an adapter with the 'generate' capability."
        )
    unique = prompts.drop_duplicates("prompt_sha256")
    try:
        fingerprint = adapter.fingerprint()
    except Exception:  # the service reports it as every prompt's error
        fingerprint = ""
    results = service.generate(
        adapter,
        unique["prompt"].tolist(),
        params=params,
        label=label,
        progress=(lambda done, total: progress(label, done, total)) if progress else None,
    )
    shas = unique["prompt_sha256"].tolist()
    text_by_sha = {sha: r.text for sha, r in zip(shas, results, strict=True) if r.text is not None}
    error_by_sha = {sha: r.error for sha, r in zip(shas, results, strict=True) if r.error}
    cached_shas = {sha for sha, r in zip(shas, results, strict=True) if r.cached}
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
    service: GenerationService | None = None,
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
    :param service: the audit's generation service (then ``cache``, ``batch_size`` and
        ``max_consecutive_failures`` are the service's own).
    :returns: one row per (generator, window, user) with columns :data:`PROFILE_COLUMNS`;
        ``text`` is ``None`` and ``error`` holds the message where generation failed.
    """
    if service is None:
        service = GenerationService(
            cache=cache, batch_size=batch_size, max_consecutive_failures=max_consecutive_failures
        )
    params = params if params is not None else GenerationParams()
    prompts = profile_prompt_table(samples_by_window, catalog, template=template)
    frames = [
        _generate_one_model(
            label,
            adapter,
            prompts,
            params=params,
            service=service,
            progress=progress,
        )
        for label, adapter in generators.items()
    ]
    if not frames:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    result = pd.concat(frames, ignore_index=True)
    return result[list(PROFILE_COLUMNS)]
