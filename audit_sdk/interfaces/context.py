"""What a detector or mitigator sees: the audit context.

One frozen, picklable object per audited subject (and one more per mitigation): the data, the
subject's and the baselines' outputs with their per-user scores in one shape
(:class:`ModelRun`), the user groups, the shared features, and services (a generation service,
auxiliary models by role) that re-create their live parts lazily after pickling. Settings are
read from the config, never copied into the context.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from audit_sdk.config import AuditConfig
    from audit_sdk.data.tables import Dataset
    from audit_sdk.features.store import UserFeatures
    from audit_sdk.interfaces.adapter import GeneratorAdapter
    from audit_sdk.services import AuditServices, GenerationService, ModelRoles

__all__ = [
    "AuditContext",
    "BootstrapSettings",
    "MitigationInfo",
    "ModelRun",
    "SubjectOutputs",
    "UserGroups",
]


@dataclass(frozen=True)
class SubjectOutputs:
    """Everything one audited model (or baseline) produced.

    ``recommendations``: ``user_id, rank (1-based), item_id, score``.
    ``profiles``: ``user_id, window, model, prompt, prompt_sha256, text`` and generation
    parameters, plus ``rating`` where a human (or a simulated rater) judged the profile.
    ``user_metrics``: per-user measurements that come with the outputs (index ``user_id``),
    e.g. the ``hallucination_rate`` of generated recommendation lists.
    """

    name: str
    adapter: str
    fingerprint: str
    recommendations: pd.DataFrame | None = None
    profiles: pd.DataFrame | None = None
    description: dict[str, Any] = field(default_factory=dict)
    user_metrics: pd.DataFrame | None = None


@dataclass(frozen=True)
class ModelRun:
    """One model's outputs and the per-user scores computed from them, for the subject and
    each baseline alike. ``scores`` is indexed by the audited users; ``metric_columns`` names
    its headline quality metrics (e.g. ``ndcg@10``, ``recall@10``)."""

    outputs: SubjectOutputs
    scores: pd.DataFrame
    metric_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class UserGroups:
    """The audited users (the index of ``table``), their attributes and derived group labels;
    ``columns`` are the group columns detectors audit by."""

    table: pd.DataFrame
    columns: tuple[str, ...]

    @property
    def users(self) -> pd.Index:
        return self.table.index


@dataclass(frozen=True)
class BootstrapSettings:
    n_resamples: int = 1000
    confidence: float = 0.95


@dataclass(frozen=True)
class MitigationInfo:
    """Which mitigator produced this context's subject, and from which subject."""

    mitigator: str
    summary: str
    before: str
    """the unmitigated subject's name"""
    before_fingerprint: str
    details: Mapping[str, Any] = field(default_factory=dict)
    before_context: AuditContext | None = field(default=None, repr=False, compare=False)
    """the unmitigated context, for detectors that pair a user's before and after"""


@dataclass(frozen=True)
class AuditContext:
    """The state of one audit after loading, splitting, obtaining outputs and scoring users.

    ``user_table`` (one row per audited user, index ``user_id``) joins the users' attributes
    and group labels (``group_columns``) with the subject's per-user scores
    (``metric_columns``, e.g. ``ndcg@10``).
    """

    config: AuditConfig
    dataset: Dataset
    train: Dataset
    test: Dataset
    groups: UserGroups
    subject_run: ModelRun
    baseline_runs: Mapping[str, ModelRun] = field(default_factory=dict)
    samples: pd.DataFrame | None = None
    services: AuditServices | None = None
    mitigation: MitigationInfo | None = None

    # -- the subject and baselines ----------------------------------------------------------
    @property
    def subject(self) -> SubjectOutputs:
        return self.subject_run.outputs

    @property
    def baselines(self) -> Mapping[str, SubjectOutputs]:
        return MappingProxyType({name: run.outputs for name, run in self.baseline_runs.items()})

    @property
    def baseline_user_tables(self) -> Mapping[str, pd.DataFrame]:
        """Per-user scores of each baseline (only those that produced recommendations)."""
        return MappingProxyType(
            {
                name: run.scores
                for name, run in self.baseline_runs.items()
                if run.outputs.recommendations is not None
            }
        )

    @property
    def metric_columns(self) -> list[str]:
        return list(self.subject_run.metric_columns)

    @property
    def group_columns(self) -> list[str]:
        return list(self.groups.columns)

    @property
    def users(self) -> pd.Index:
        return self.groups.users

    @cached_property
    def user_table(self) -> pd.DataFrame:
        scores = self.subject_run.scores
        table = self.groups.table
        extra = [c for c in scores.columns if c not in table.columns]
        return table.join(scores[extra]) if extra else table.copy()

    # -- settings (read from the config, never copied) --------------------------------------
    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def k(self) -> int:
        return self.config.subject.k

    @property
    def min_group_size(self) -> int:
        return self.config.groups.min_group_size

    @property
    def bootstrap(self) -> BootstrapSettings:
        return BootstrapSettings(
            self.config.stats.bootstrap_resamples, self.config.stats.confidence
        )

    def rng(self, salt: str) -> np.random.Generator:
        """A generator seeded by the audit seed and ``salt`` (e.g. the detector's name), so
        each detector's randomness is reproducible and independent of run order."""
        digest = hashlib.sha256(f"{self.seed}:{salt}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    # -- shared features and services -------------------------------------------------------
    @cached_property
    def features(self) -> UserFeatures:
        """Shared user features (genre shares, popularity, activity, plugin features...)."""
        from audit_sdk.features.store import UserFeatures

        extra = self.services.features if self.services is not None else {}
        return UserFeatures(self.train, list(self.users), extra=extra)

    @property
    def item_popularity(self) -> pd.Series:
        """Share of training users who interacted with each catalog item (0 for unseen)."""
        return self.features.item_popularity.reindex(
            self.dataset.catalog.frame.index, fill_value=0.0
        )

    @property
    def adapter(self) -> GeneratorAdapter | None:
        """The subject's live adapter (re-created on first use after pickling), if any."""
        return self.services.subject_adapter() if self.services is not None else None

    @property
    def generation(self) -> GenerationService:
        """Batched, cached, fault-tolerant generation: use it instead of calling adapters."""
        from audit_sdk.services import GenerationService

        if self.services is None:
            return GenerationService(cache_path=None)
        return self.services.generation

    @property
    def models(self) -> ModelRoles:
        """Auxiliary models by role, from the config's ``models:`` section."""
        from audit_sdk.services import ModelRoles

        if self.services is None:
            return ModelRoles({})
        return self.services.models

    # -- building one -----------------------------------------------------------------------
    @classmethod
    def from_tables(
        cls,
        *,
        config: AuditConfig,
        dataset: Dataset,
        user_table: pd.DataFrame,
        group_columns: Sequence[str],
        subject: SubjectOutputs,
        metric_columns: Sequence[str] = (),
        train: Dataset | None = None,
        test: Dataset | None = None,
        baselines: Mapping[str, SubjectOutputs] | None = None,
        samples: pd.DataFrame | None = None,
    ) -> AuditContext:
        """A context from a ready-made user table (tests, notebooks, logged audits): the
        columns in ``metric_columns`` and the subject's ``user_metrics`` are its scores, the
        rest are attributes and groups."""
        scores = user_table[list(metric_columns)]
        if subject.user_metrics is not None:
            scores = scores.join(subject.user_metrics.reindex(user_table.index), how="left")
        attributes = user_table.drop(columns=list(metric_columns))
        empty = pd.DataFrame(index=user_table.index)
        return cls(
            config=config,
            dataset=dataset,
            train=train if train is not None else dataset,
            test=test if test is not None else dataset,
            groups=UserGroups(attributes, tuple(group_columns)),
            subject_run=ModelRun(subject, scores, tuple(metric_columns)),
            baseline_runs={n: ModelRun(o, empty) for n, o in (baselines or {}).items()},
            samples=samples,
        )
