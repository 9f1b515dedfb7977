"""The generator adapter interface: one wrapper around the system under audit."""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal

import numpy as np
import pandas as pd

from audit_sdk.errors import MissingCapabilityError
from audit_sdk.interfaces._params import NoParams, ParamsT, PluginParams

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset

__all__ = [
    "Capability",
    "GenerationParams",
    "GeneratorAdapter",
    "TokenScores",
    "Tokenization",
]

Capability = Literal["generate", "score", "tokenize", "embed", "recommend", "replay"]
"""What an adapter can do. ``replay``: it serves outputs a team already logged
(:meth:`GeneratorAdapter.logged_profiles`, and optionally the data they came from,
:meth:`GeneratorAdapter.logged_dataset`); the audit reads them as they are and runs no model."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one generation call; part of every cache key."""

    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 96
    seed: int = 0


@dataclass(frozen=True)
class TokenScores:
    """Per-token log-probabilities of a continuation given a prompt."""

    token_ids: list[int]
    logprobs: list[float]
    # Each token's (start, end) characters in the continuation, when the adapter knows them.
    offsets: list[tuple[int, int]] | None = None

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


@dataclass(frozen=True)
class Tokenization:
    """Token ids of a text and, for each, its (start, end) character offsets."""

    token_ids: list[int]
    offsets: list[tuple[int, int]] = field(default_factory=list)


class GeneratorAdapter(ABC, Generic[ParamsT]):
    """Wraps the recommender or profile generator under audit.

    Subclasses set ``name`` (what configs refer to), declare ``capabilities`` and implement the
    matching methods. Detectors declare what they need; the runner skips a detector, with a
    reason, when the adapter lacks it.

    ``recommend`` serves item lists directly (the reference baselines, or a team's own
    recommender); ``generate`` serves text (profiles, or LLM recommendations that the runner
    maps back to catalog items).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Params: ClassVar[type[PluginParams]] = NoParams

    params: ParamsT

    def __init__(self, params: ParamsT | None = None) -> None:
        self.params = params if params is not None else self.Params()  # type: ignore[assignment]

    # -- identity ---------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A stable identifier of the exact model (weights hash, endpoint + model name, ...)."""
        return f"{self.name}:{self.params.model_dump_json()}"

    def describe(self) -> dict[str, Any]:
        """What a report says about this subject (model name, size, location...)."""
        return {"adapter": self.name, "params": self.params.model_dump(mode="json")}

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    # -- recommend --------------------------------------------------------------------------
    def fit(self, train: Dataset) -> None:
        """Learn from the training split (baselines); models that are already trained ignore it."""

    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        """Top-``k`` items per user: columns ``user_id, rank (1-based), item_id, score``."""
        raise self._missing("recommend")

    # -- text -------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        raise self._missing("generate")

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        raise self._missing("score")

    def tokenize(self, texts: Sequence[str]) -> list[Tokenization]:
        raise self._missing("tokenize")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise self._missing("embed")

    # -- replay -----------------------------------------------------------------------------
    def logged_profiles(self) -> pd.DataFrame:
        """Logged profiles (``audit_sdk.profile_pipeline.PROFILE_COLUMNS`` plus any extra
        columns such as ``rating`` or ``share:<genre>``), one row per user x model x window."""
        raise self._missing("replay")

    def logged_dataset(self) -> Dataset | None:
        """The users, items and interactions the log was made from, when the log is the only
        data an audit is given (no ``dataset:`` section); None when it cannot say."""
        return None

    def close(self) -> None:
        """Release resources (sessions, servers, GPU memory)."""

    def _missing(self, capability: Capability) -> MissingCapabilityError:
        return MissingCapabilityError(
            f"adapter {self.name!r} does not support {capability!r} "
            f"(it declares: {', '.join(sorted(self.capabilities)) or 'nothing'})."
        )
