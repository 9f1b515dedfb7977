"""Playlist verification of a generating model: grounding, consistency and constraint
adherence of its answers to a prompt suite, broken down by the prompt's genre, era and country.

"Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025 LLM4ECommerce
workshop): prompts from the catalog's metadata (and ``params.prompts``, a user file) are sent
through the audit's generation service (batched, cached) with the paper's template and
sampling (temperature 0.7, top-p 0.9, 128 new tokens); answers are read, deduplicated,
canonicalised and matched to the catalog (:mod:`audit_sdk.verification.playlist_answers`)
and scored (:mod:`audit_sdk.verification.playlist_verification`). Each metric is a mean over
prompts with a BCa bootstrap CI (the prompt is the resampled unit), per prompt genre, and for
hallucination and adherence also per era and per country: are some musics verified worse?

The generator: ``params.generator_role`` (a ``models:`` role with ``generate``), else the
subject's adapter when it generates (TinyRec, an HTTP LLM, a callable). Theme consistency
embeds with ``params.embedding_role``, else the packaged WordLlama.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from audit_sdk.adapters.embedding_adapter import EmbeddingAdapter, EmbeddingParams
from audit_sdk.plugins.detectors.verification_embeddings import metadata_texts
from pydantic import Field

from audit_sdk import Detector, Finding, MetricSpec, PluginParams, hookimpl
from audit_sdk.errors import AuditSDKError
from audit_sdk.finding_builders import interval_row
from audit_sdk.interfaces import AuditContext
from audit_sdk.interfaces._params import PathParam
from audit_sdk.interfaces.adapter import GenerationParams, GeneratorAdapter
from audit_sdk.stats.bootstrap import Interval, mean_ci
from audit_sdk.thresholds import evaluate_threshold
from audit_sdk.verification.catalog_attributes import catalog_attributes
from audit_sdk.verification.playlist_answers import CatalogMatcher
from audit_sdk.verification.playlist_verification import (
    PAPER_TEMPLATE,
    PLAYLIST_METRICS,
    PlaylistPrompt,
    load_prompts,
    prompt_suite,
    render_prompt,
    score_answers,
)

__all__ = ["PlaylistVerificationDetector", "PlaylistVerificationParams"]

REFERENCE = (
    "Verifying LLM-Driven Music Recommendation Systems (Amazon Music, KDD 2025 LLM4ECommerce "
    "workshop), Secs. 3-4: deduplication, artist canonicalisation and catalog availability; "
    "era/genre consistency (eq. 1) and theme cosine plus constraint adherence (eq. 4) per answer"
)
_LOWER = {"hallucination_rate", "duplicate_rate"}
_BY_ALL = ("hallucination_rate", "constraint_adherence")


class PlaylistVerificationParams(PluginParams):
    generator_role: str | None = Field(
        None, description="a models: role with generate (default: the subject's adapter)"
    )
    prompts: Annotated[Path, PathParam()] | None = Field(
        None, description="a user prompt file (YAML or JSON list of {text, constraints})"
    )
    catalog_prompts: bool = Field(True, description="also build prompts from the catalog")
    max_prompts: int = Field(24, ge=1)
    top_values: int = Field(4, ge=1, description="genres, eras, countries prompted for")
    min_items: int = Field(10, ge=1, description="catalog items a catalog prompt must allow")
    n_tracks: int = Field(10, ge=1)
    template: str = Field(PAPER_TEMPLATE, description="with {n} and {request}")
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_new_tokens: int = Field(128, ge=1)
    embedding_role: str | None = Field(
        None, description="models: role that embeds (theme consistency; default: WordLlama)"
    )
    min_prompts: int = Field(3, ge=1, description="a group with fewer prompts is flagged")


def _generator(context: AuditContext, role: str | None) -> GeneratorAdapter | None:
    if role is not None:
        return context.models.get(role)
    adapter = context.adapter
    return adapter if adapter is not None and adapter.supports("generate") else None


class PlaylistVerificationDetector(Detector):
    name = "verification_playlists"
    description = (
        "Grounding, consistency and constraint adherence of a model's playlist answers, by "
        "the prompt's genre, era and country (KDD 2025 LLM4ECommerce)."
    )
    Params = PlaylistVerificationParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = tuple(
        MetricSpec(
            f"playlist:{m}",
            "lower_is_better" if m in _LOWER else "higher_is_better",
            -1.0 if m == "theme_consistency" else 0.0,
            1.0,
            "mean over prompts",
        )
        for m in PLAYLIST_METRICS
    )

    def detect(self, context: AuditContext) -> list[Finding]:
        params: PlaylistVerificationParams = self.params  # type: ignore[assignment]
        generator = _generator(context, params.generator_role)
        if generator is None:
            return [
                self._skipped(
                    f"playlist:{m}",
                    "no generating model: the subject's adapter does not generate and "
                    "params.generator_role is not set",
                )
                for m in PLAYLIST_METRICS
            ]
        attrs = catalog_attributes(context.dataset.catalog.frame)
        attrs.index = attrs.index.astype(str)
        findings: list[Finding] = []
        prompts: list[PlaylistPrompt] = []
        if params.catalog_prompts:
            prompts += prompt_suite(
                attrs,
                top_values=params.top_values,
                min_items=params.min_items,
                max_prompts=params.max_prompts,
            )
        if params.prompts is not None:
            try:
                prompts += load_prompts(params.prompts)
            except AuditSDKError as error:
                findings.append(
                    self._skipped("playlist:user_prompts", f"user prompts not used: {error}")
                )
        if not prompts:
            return findings + [
                self._skipped(f"playlist:{m}", "no prompt: the catalog gives none")
                for m in PLAYLIST_METRICS
            ]
        sampling = GenerationParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=params.max_new_tokens,
            seed=context.seed,
        )
        texts = [render_prompt(p, template=params.template, n=params.n_tracks) for p in prompts]
        results = context.generation.generate(
            generator, texts, params=sampling, label=f"{self.name}:{generator.name}"
        )
        embed = (
            context.models.get(params.embedding_role).embed
            if params.embedding_role
            else EmbeddingAdapter(EmbeddingParams(backend="wordllama")).embed
        )
        order = context.item_popularity.sort_values(ascending=False).index.astype(str)
        catalog_texts = metadata_texts(context.dataset.catalog.frame)
        table = score_answers(
            prompts,
            [r.text for r in results],
            attrs,
            CatalogMatcher(attrs, order),
            embed=embed,
            item_texts=catalog_texts,
        )
        statuses = table["status"].value_counts().to_dict()
        errors = sorted({r.error for r in results if r.error})
        details = {
            "generator": generator.name,
            "n_prompts": len(prompts),
            "statuses": statuses,
            "sampling": {
                "temperature": params.temperature,
                "top_p": params.top_p,
                "max_new_tokens": params.max_new_tokens,
            },
            "prompts": table.head(60).replace({np.nan: None}).to_dict(orient="records"),
        }
        for metric in PLAYLIST_METRICS:
            for group_by in ("genre", "era", "country") if metric in _BY_ALL else ("genre",):
                findings.append(
                    self._finding(context, table, metric, group_by, details, errors, statuses)
                )
        return findings

    def _finding(
        self,
        context: AuditContext,
        table: pd.DataFrame,
        metric: str,
        group_by: str,
        details: dict[str, Any],
        errors: list[str],
        statuses: dict[str, int],
    ) -> Finding:
        params: PlaylistVerificationParams = self.params  # type: ignore[assignment]
        name = f"playlist:{metric}"
        values = table[[metric, group_by]].dropna()
        if values.empty:
            reason = (
                f"no prompt gives {metric.replace('_', ' ')} (prompt outcomes: "
                f"{', '.join(f'{k}: {v}' for k, v in statuses.items())})"
            )
            if errors:
                reason += f"; generation errors: {errors[0]}"
            return Finding(
                detector=self.name,
                metric=name,
                group_by=f"prompt {group_by}",
                status="skipped",
                explanation=reason,
            )
        confidence, n_resamples = context.bootstrap.confidence, context.bootstrap.n_resamples
        rng = context.rng(f"{self.name}:{metric}:{group_by}")
        rows = []
        floor = -1.0 if metric == "theme_consistency" else 0.0
        for group, part in values.groupby(group_by):
            interval = _clipped(
                mean_ci(
                    part[metric].to_numpy(),
                    confidence=confidence,
                    n_resamples=n_resamples,
                    rng=rng,
                ),
                floor,
            )
            rows.append(
                interval_row(str(group), interval, min_n=params.min_prompts, unit="prompts")
            )
        overall = _clipped(
            mean_ci(
                values[metric].to_numpy(), confidence=confidence, n_resamples=n_resamples, rng=rng
            ),
            floor,
        )
        threshold = self.threshold_for(name)
        return Finding(
            detector=self.name,
            metric=name,
            estimate=overall.estimate,
            ci_low=overall.low,
            ci_high=overall.high,
            confidence=confidence,
            ci_method=overall.method,
            n=overall.n,
            groups=rows,
            group_by=f"prompt {group_by}",
            subject=context.subject.name,
            threshold=threshold,
            status=evaluate_threshold(threshold, overall.estimate, overall.low, overall.high),
            explanation=(
                f"{metric.replace('_', ' ')} of {details['generator']}'s playlist answers: "
                f"{overall.estimate:.3g} [{overall.low:.3g}, {overall.high:.3g}] over "
                f"{overall.n} prompts, by the prompt's {group_by}; resampled unit: prompts"
            ),
            warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning]
            + [f"{n} prompts: {s}" for s, n in statuses.items() if s != "scored"],
            chart="bars",
            reference=REFERENCE,
            details=details if group_by == "genre" and metric == "hallucination_rate" else {},
        )

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


def _clipped(interval: Interval, floor: float) -> Interval:
    """The interval within the metric's range [floor, 1] (BCa's float error can step out)."""
    low = min(max(interval.low, floor), interval.estimate)
    high = max(min(interval.high, 1.0), interval.estimate)
    return replace(interval, low=low, high=high)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(PlaylistVerificationDetector)
