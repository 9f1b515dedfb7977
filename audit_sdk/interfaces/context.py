"""What a detector or mitigator sees: the audit context."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from audit_sdk.config import AuditConfig
    from audit_sdk.data.tables import Dataset
    from audit_sdk.interfaces.adapter import GeneratorAdapter

__all__ = ["AuditContext", "BootstrapSettings", "SubjectOutputs"]


@dataclass
class SubjectOutputs:
    """Everything one audited model (or baseline) produced.

    ``recommendations``: ``user_id, rank (1-based), item_id, score``.
    ``profiles``: ``user_id, window, model, prompt, prompt_sha256, text`` and generation
    parameters, plus ``rating`` where a human (or a simulated rater) judged the profile.
    """

    name: str
    adapter: str
    fingerprint: str
    recommendations: pd.DataFrame | None = None
    profiles: pd.DataFrame | None = None
    description: dict[str, Any] = field(default_factory=dict)
    user_metrics: pd.DataFrame | None = None
    """Per-user measurements that come with the outputs (index user_id), e.g. the
    ``hallucination_rate`` of generated recommendation lists."""


@dataclass(frozen=True)
class BootstrapSettings:
    n_resamples: int = 1000
    confidence: float = 0.95


@dataclass
class AuditContext:
    """The state of one audit after loading, windowing, splitting and obtaining outputs.

    ``user_table`` has one row per audited user (index ``user_id``): user attributes, derived
    group columns (listed in ``group_columns``) and the subject's per-user quality metrics
    (listed in ``metric_columns``, e.g. ``ndcg@10``).
    """

    config: AuditConfig
    dataset: Dataset
    train: Dataset
    test: Dataset
    user_table: pd.DataFrame
    group_columns: list[str]
    metric_columns: list[str]
    subject: SubjectOutputs
    baselines: dict[str, SubjectOutputs] = field(default_factory=dict)
    baseline_user_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    adapter: GeneratorAdapter | None = None
    samples: pd.DataFrame | None = None
    seed: int = 0
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    min_group_size: int = 30
    k: int = 10

    def rng(self, salt: str) -> np.random.Generator:
        """A generator seeded by the audit seed and ``salt`` (e.g. the detector's name), so
        each detector's randomness is reproducible and independent of run order."""
        digest = hashlib.sha256(f"{self.seed}:{salt}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    @cached_property
    def item_popularity(self) -> pd.Series:
        """Share of training users who interacted with each catalog item (0 for unseen)."""
        frame = self.train.interactions.frame
        n_users = max(frame["user_id"].nunique(), 1)
        counts = frame.groupby("item_id")["user_id"].nunique() / n_users
        return counts.reindex(self.dataset.catalog.frame.index, fill_value=0.0)
