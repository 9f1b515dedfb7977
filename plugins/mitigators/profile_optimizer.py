"""Profile optimizer (LettinGo, arXiv 2506.18309): explore, score on the downstream task, align
the profile writer with DPO (Rafailov et al., NeurIPS 2023, eq. 7), and re-audit.

1. **Exploration.** For a seeded subset of users (``max_users``), each user's latest
   ``targets`` training events are held out as the task's targets and the ``recent`` events
   before them as recent interactions; ``n_profiles`` profiles per user are sampled at
   ``temperature`` from the writer (and from any ``explore_roles`` models: LettinGo explores
   with several LLMs) from the older history's two-step sample, through the audit's generation
   cache (:func:`audit_sdk.preference.explore_profiles`).
2. **Task-driven evaluation.** A downstream recommender reads each profile (and the recent
   interactions, when ``recent`` > 0) and ranks each target among ``negatives`` unplayed
   items: the bi-encoder of ``downstream_utility`` by default (``fusion``: how profile and
   recent items meet), or any adapter with ``score`` named by ``recommender_role``; hit@k and
   NDCG@k per profile, averaged over its user's targets. Why the defaults differ from the
   paper's one target after four recent items: :mod:`audit_sdk.preference.exploration`.
3. **Preference pairs.** Best vs worst distinct profile per user (``pairs_per_user``) when
   NDCG@k differs by at least ``min_margin``; written as TRL-readable JSONL beside the tuned
   writer.
4. **DPO.** The writer (a local Hugging Face causal LM: TinyRec by default, the subject) is
   trained with the SDK's DPO trainer on CPU (``nll_weight`` adds the NLL of the chosen
   profiles, RPO; ``lora_rank`` for LoRA through peft) and saved as a new model directory: a
   new adapter with its own fingerprint, returned as the mitigation's ``profile_writer``. The
   pipeline then regenerates the profiles and re-runs every detector.
5. **Before/after, paired by user.** On the audit's own profiles (same prompts and sampling
   parameters, so the re-audit finds them in the cache), downstream NDCG@k and recall@k on the
   audit's held-out items, artist and genre recall and hallucination rate, before and after,
   each with a bootstrap CI resampling users, per group (GS quintile, activity, age, country:
   the audit's groups) and the best-minus-worst group gaps; in the mitigation's ``details``
   and its report table.

No user with a pair above the margin, or a writer that cannot be trained here, ends in a
``skipped`` finding with the reason (:class:`~audit_sdk.interfaces.MitigationSkipped`); the
rest of the audit is unaffected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from audit_sdk.plugins.detectors._profile_utility import (
    SentenceEncoder,
    TextEncoder,
    default_encoder_path,
    item_texts,
)
from audit_sdk.plugins.mitigators.profile_optimizer_comparison import before_after
from pydantic import Field

from audit_sdk.cache_paths import cache_dir
from audit_sdk.errors import AuditSDKError
from audit_sdk.hookspecs import hookimpl
from audit_sdk.interfaces import (
    AuditContext,
    GeneratorAdapter,
    MitigationResult,
    MitigationSkipped,
    Mitigator,
    PluginParams,
)
from audit_sdk.interfaces.requirements import Needs, Requirement
from audit_sdk.preference import (
    DPOSettings,
    Fusion,
    LearningRateSchedule,
    UntrainableWriterError,
    draw_task_candidates,
    explore_profiles,
    hold_out_recent,
    make_preference_pairs,
    pairs_sha256,
    score_with_encoder,
    score_with_model,
    train_dpo_writer,
    write_pairs_jsonl,
)
from audit_sdk.report_model import ResultTable

__all__ = ["ProfileOptimizer", "ProfileOptimizerParams"]

PAIRS_NAME = "preference_pairs.jsonl"


class ProfileOptimizerParams(PluginParams):
    writer_role: str | None = Field(
        None, description="models: role of the writer to tune (default: the subject)"
    )
    explore_roles: list[str] = Field(
        default_factory=list, description="more models: roles that write exploration profiles"
    )
    n_profiles: int = Field(10, ge=2, description="profiles per user and writer")
    temperature: float | None = Field(
        None,
        gt=0.0,
        description="exploration temperature (default: the audit's profile temperature, so the "
        "pairs come from the distribution the audit samples, or 1.0 where that is greedy; the "
        "paper uses 1.0)",
    )
    targets: int = Field(5, ge=1, description="latest events held out as the task's targets")
    recent: int = Field(
        0,
        ge=0,
        description="events before the targets the recommender also sees (the paper: 4, with "
        "1 target)",
    )
    fusion: Fusion = Field(
        "scores",
        description="bi-encoder: add the profile's and the recent items' cosines ('scores'), "
        "or read them as one text ('text', which favours short profiles)",
    )
    max_users: int | None = Field(200, ge=2, description="users explored (seeded subset)")
    negatives: int = Field(50, ge=1, description="unplayed candidates beside the target")
    k: int = Field(10, ge=1)
    recommender_role: str | None = Field(
        None, description="models: role with 'score' as the downstream recommender"
    )
    encoder_path: Path | None = Field(None, description="sentence-transformers directory")
    min_margin: float = Field(0.1, ge=0.0, description="least NDCG@k gap of a pair")
    pairs_per_user: int = Field(1, ge=1)
    beta: float = Field(0.1, gt=0.0, description="DPO beta (eq. 7)")
    nll_weight: float = Field(
        0.0, ge=0.0, description="alpha of DPO + NLL on the chosen profiles (RPO); 0: plain DPO"
    )
    learning_rate: float = Field(
        2e-4,
        gt=0.0,
        description="AdamW's rate; near the writer's own training rate for a small model "
        "(the demo TinyRec: 4e-3, examples/profile_optimizer.yaml), far lower for a large LM",
    )
    lr_schedule: LearningRateSchedule = Field(
        "linear", description="'linear' decays the rate to 0 (TRL's default), or 'constant'"
    )
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(8, ge=1)
    lora_rank: int | None = Field(None, ge=1, description="train LoRA adapters (peft) only")
    out_dir: Path | None = Field(
        None, description="where the tuned writer goes (default: the audit-sdk cache)"
    )
    compare: bool = Field(True, description="paired before/after on the audit's profiles")


class _RememberingEncoder:
    """Encodes each distinct text once per mitigation: the exploration's scoring and the
    before/after share most item texts."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self.encoder.embed(missing), strict=True))
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, 0))


def _encoder(context: AuditContext, params: ProfileOptimizerParams) -> TextEncoder:
    if params.encoder_path is not None:
        base: TextEncoder = SentenceEncoder(params.encoder_path)
    elif context.models.has("encoder"):
        base = context.models.get("encoder")
    else:
        base = SentenceEncoder(default_encoder_path())
    return _RememberingEncoder(base)


def _writer(context: AuditContext, params: ProfileOptimizerParams) -> GeneratorAdapter:
    writer = context.models.get(params.writer_role) if params.writer_role else context.adapter
    if writer is None or not writer.supports("generate"):
        raise MitigationSkipped(
            "the profile writer cannot generate text (set params.writer_role to a models: role "
            "with a local causal LM)"
        )
    return writer


def _writer_dir(writer: GeneratorAdapter) -> Path:
    """The writer's transformers directory, or why it cannot be trained here."""
    try:
        location = writer.describe().get("location")
    except AuditSDKError as exc:
        raise MitigationSkipped(
            f"the profile writer {writer.name!r} cannot be loaded: {exc}"
        ) from None
    if not location or not (Path(str(location)) / "config.json").is_file():
        raise MitigationSkipped(
            f"the profile writer {writer.name!r} is not a local Hugging Face causal LM (no "
            "model directory with config.json), so it cannot be trained with DPO here; use the "
            "tinyrec or huggingface adapter, or train on the exported pairs elsewhere"
        )
    return Path(str(location))


def _tuned_adapter(writer: GeneratorAdapter, model_dir: Path) -> GeneratorAdapter:
    """The writer's adapter class on the tuned directory (same other parameters)."""
    params = writer.params.model_dump()
    params["model_dir"] = str(model_dir)
    return type(writer)(type(writer).Params.model_validate(params))


def _task_users(context: AuditContext, params: ProfileOptimizerParams) -> list[str]:
    users = [str(u) for u in context.users]
    if params.max_users is not None and len(users) > params.max_users:
        rng = context.rng("profile_optimizer:users")
        users = sorted(rng.choice(users, size=params.max_users, replace=False).tolist())
    return users


class ProfileOptimizer(Mitigator[ProfileOptimizerParams]):
    name = "profile_optimizer"
    description = (
        "Explore profiles, score them on the downstream task, tune the writer with DPO "
        "(LettinGo, arXiv 2506.18309)."
    )
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.PROFILES})
    Params = ProfileOptimizerParams

    def mitigate(self, context: AuditContext) -> MitigationResult:
        params = self.params
        writer = _writer(context, params)
        source = _writer_dir(writer)
        config = context.config
        split = hold_out_recent(
            context.train,
            targets=params.targets,
            recent=params.recent,
            users=_task_users(context, params),
            rng=context.rng("profile_optimizer:order"),
        )
        if not split.users:
            raise MitigationSkipped(
                f"no user has the {params.targets + params.recent + 5} training events the task "
                f"needs ({params.targets} targets, {params.recent} recent, 5 older to write "
                "from); lower targets or recent"
            )
        writers = {"writer": writer}
        writers.update({role: context.models.get(role) for role in params.explore_roles})
        temperature = params.temperature or config.profiles.temperature or 1.0
        explored = explore_profiles(
            split,
            writers,
            service=context.generation,
            n_profiles=params.n_profiles,
            temperature=temperature,
            top_p=1.0,
            max_new_tokens=config.profiles.max_new_tokens,
            seed=context.seed,
            top_artists=config.sampling.top_artists,
            tracks_per_artist=config.sampling.tracks_per_artist,
            template=config.profiles.template,
        )
        catalog = context.dataset.catalog.frame
        texts = item_texts(catalog)
        texts.index = texts.index.astype(str)
        candidates = draw_task_candidates(
            split,
            items=catalog.index,
            played=context.train.interactions.frame[["user_id", "item_id"]],
            rng=context.rng("profile_optimizer:candidates"),
            negatives=params.negatives,
        )
        encoder: TextEncoder | None = None
        if params.recommender_role:
            scorer = context.models.get(params.recommender_role)
            if not scorer.supports("score"):
                raise MitigationSkipped(
                    f"models.{params.recommender_role} cannot score text; the downstream "
                    "recommender needs the 'score' capability (or leave recommender_role unset "
                    "for the bi-encoder)"
                )
            scored = score_with_model(
                explored, split, candidates, item_text=texts, scorer=scorer, k=params.k
            )
            recommender = f"models.{params.recommender_role}"
        else:
            encoder = _encoder(context, params)
            scored = score_with_encoder(
                explored,
                split,
                candidates,
                item_text=texts,
                encoder=encoder,
                k=params.k,
                fusion=params.fusion,
            )
            recommender = "bi-encoder"
        utility = f"ndcg@{params.k}"
        pairs = make_preference_pairs(
            scored,
            utility=utility,
            min_margin=params.min_margin,
            pairs_per_user=params.pairs_per_user,
        )
        exploration = {
            "users": len(split.users),
            "profiles": int(scored[utility].notna().sum()),
            "writers": sorted(writers),
            "temperature": temperature,
            "targets": params.targets,
            "recent": params.recent,
            "recommender": recommender,
            f"mean {utility}": float(scored[utility].mean()),
            f"mean hit@{params.k}": float(scored[f"hit@{params.k}"].mean()),
            "pairs": len(pairs),
            "mean pair margin": float(np.mean([p.margin for p in pairs])) if pairs else None,
        }
        if not pairs:
            raise MitigationSkipped(
                f"no user has two profiles whose {utility} differs by at least "
                f"{params.min_margin} ({exploration['profiles']} profiles of "
                f"{exploration['users']} users scored); lower min_margin or raise n_profiles"
            )
        settings = DPOSettings(
            beta=params.beta,
            learning_rate=params.learning_rate,
            epochs=params.epochs,
            batch_size=params.batch_size,
            seed=context.seed,
            lora_rank=params.lora_rank,
            nll_weight=params.nll_weight,
            lr_schedule=params.lr_schedule,
        )
        digest = pairs_sha256(pairs)
        key = hashlib.sha256(
            json.dumps([writer.fingerprint(), digest, repr(settings)], sort_keys=True).encode()
        ).hexdigest()[:24]
        root = params.out_dir or cache_dir() / "profile_optimizer"
        target = Path(root) / key
        try:
            trained = train_dpo_writer(
                source,
                pairs,
                out_dir=target,
                settings=settings,
                pairs_sha256=digest,
                source_fingerprint=writer.fingerprint(),
            )
        except UntrainableWriterError as exc:
            raise MitigationSkipped(f"the profile writer cannot be trained: {exc}") from None
        pairs_path = write_pairs_jsonl(pairs, target.parent / f"{key}.{PAIRS_NAME}")
        tuned = _tuned_adapter(writer, trained.model_dir)
        details: dict[str, Any] = {
            "exploration": exploration,
            "training": {**trained.record(), "reused": trained.reused},
            "pairs_path": str(pairs_path),
            "model_dir": str(trained.model_dir),
            "writer_fingerprint": writer.fingerprint(),
            "tuned_fingerprint": tuned.fingerprint(),
        }
        if params.compare and context.subject.profiles is not None:
            details["before_after"] = before_after(
                context,
                writer,
                tuned,
                k=params.k,
                encoder=lambda: encoder or _encoder(context, params),
            )
        return MitigationResult(
            profile_writer=tuned,
            summary=(
                f"DPO-tuned the profile writer on {trained.pairs_used} preference pairs from "
                f"{exploration['users']} users x {params.n_profiles} profiles scored by the "
                f"{recommender} ({utility} margin >= {params.min_margin})"
            ),
            details=details,
            tables=_tables(details.get("before_after")),
        )


def _tables(before_after: Any) -> list[ResultTable]:
    """The paired before/after (per metric, overall and per group) for the report."""
    if not isinstance(before_after, dict) or not before_after.get("table"):
        return []
    records: list[dict[str, Any]] = before_after["table"]
    columns = list(records[0])
    return [
        ResultTable(
            title="Profile optimizer: the writer's profiles before and after DPO (paired)",
            columns=columns,
            rows=[[_cell(r.get(c)) for c in columns] for r in records],
            note="difference = after - before per user, with its paired bootstrap CI "
            "[low, high] over users; a group row is the same within that group",
        )
    ]


def _cell(value: Any) -> str | float | int | bool | None:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


@hookimpl
def audit_sdk_register_mitigators(register: Any) -> None:
    register(ProfileOptimizer)
